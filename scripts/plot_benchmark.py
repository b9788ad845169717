"""Snakemake rule ``plot_benchmark``: a benchmark's metrics.json files -> per-class and shot-group figures."""

from ltbench import plots
from ltbench.io import read_json
from ltbench.logs import redirect_to_log


def plot_benchmark(metrics_paths: list[str], per_class_path: str, shots_path: str, benchmark: str,
                   strategies: list[str]) -> None:
    """Per-class accuracy against class size, and many/medium/few-shot bars, each strategy over its seeds."""
    records = [read_json(path) for path in metrics_paths]
    styles = plots.strategy_styles(strategies)
    counts = records[0]["class_counts"]
    per_class = plots.group_by_strategy(records, strategies, "best_per_class_acc")
    plots.save(plots.per_class_figure(per_class, counts, styles, benchmark), per_class_path)
    shots = plots.group_by_strategy(records, strategies, "best_shot_acc")
    plots.save(plots.shot_figure(shots, counts, styles, benchmark), shots_path)
    print(f"{benchmark}: {len(records)} runs of {len(per_class)} strategies plotted")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        plot_benchmark(sm.input.metrics, sm.output.per_class, sm.output.shots, sm.wildcards.benchmark,
                       sm.params.strategies)
