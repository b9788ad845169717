"""Snakemake rule ``table``: every metrics.json -> results/table.csv, table.md and table.tex."""

from pathlib import Path
from typing import Any

from ltbench.io import atomic_path, read_json, write_text
from ltbench.logs import redirect_to_log
from ltbench.evaluation.metrics import verified
from ltbench.reporting.table import epoch_images, runs_frame, tables
from ltbench.reporting.table_text import latex_table, markdown_report


def make_table(metrics_paths: list[str], csv_path: str, md_path: str, tex_path: str, benchmarks: list[str],
               strategies: list[str], reference: str, ratio_grids: dict[str, list[str]] | None = None) -> None:
    """One tidy CSV row per run; the markdown and LaTeX tables in config order, differences to ``reference``,
    and in the markdown a ratio section per entry of ``ratio_grids`` ({grid: its benchmarks})."""
    runs = runs_frame(run_record(path) for path in metrics_paths)
    with atomic_path(csv_path) as tmp:
        runs.to_csv(tmp, index=False)
    t = tables(runs, benchmarks, strategies, reference, ratio_grids or {})
    write_text(md_path, markdown_report(t))
    write_text(tex_path, latex_table(t))
    if t.differences.empty:
        print(f"reference strategy {reference!r} has no runs: no difference column")
    print(f"{len(runs)} runs tabulated")


def run_record(metrics_path: str) -> dict[str, Any]:
    """A run's verified metrics with ``epoch_images`` from the history.json beside them (every run folder,
    under results/ and docs/results/, holds both)."""
    return {**verified(read_json(metrics_path), metrics_path),
            "epoch_images": epoch_images(read_json(Path(metrics_path).with_name("history.json")))}


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        make_table(sm.input.metrics, sm.output.csv, sm.output.md, sm.output.tex, sm.params.benchmarks,
                   sm.params.strategies, sm.params.reference, sm.params.ratio_grids)
