"""Snakemake rule ``table``: every metrics.json -> results/table.csv and results/table.md."""

from ltbench.io import atomic_path, read_json, write_text
from ltbench.logs import redirect_to_log
from ltbench.table import markdown_report, runs_frame


def make_table(metrics_paths: list[str], csv_path: str, md_path: str, benchmarks: list[str], strategies: list[str]):
    """One CSV row per run; the markdown table in config order."""
    runs = runs_frame(read_json(path) for path in metrics_paths)
    with atomic_path(csv_path) as tmp:
        runs.to_csv(tmp, index=False)
    write_text(md_path, markdown_report(runs, benchmarks, strategies))
    print(f"{len(runs)} runs tabulated")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        make_table(sm.input.metrics, sm.output.csv, sm.output.md, sm.params.benchmarks, sm.params.strategies)
