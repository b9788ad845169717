"""Snakemake rule ``plot_benchmark``: a benchmark's metrics.json and history.json files -> per-class,
shot-group, overlaid learning-curve, test-prior and reliability, and paired-difference figures."""

from ltbench.reporting import plots
from ltbench.io import read_json
from ltbench.logs import redirect_to_log


def plot_benchmark(metrics_paths: list[str], history_paths: list[str], outputs: dict[str, str], benchmark: str,
                   strategies: list[str], reference: str) -> None:
    """Per-class accuracy against class size (with the difference to ``reference``), many/medium/few-shot
    bars, all strategies' learning curves, and accuracy across test priors beside the reliability diagrams,
    each strategy over its seeds, and every strategy's paired difference to ``reference``. ``outputs`` maps
    ``per_class``, ``shots``, ``curves``, ``robustness`` and ``differences`` to their PNG paths."""
    records = [read_json(path) for path in metrics_paths]
    styles = plots.strategy_styles(strategies)
    counts = records[0]["class_counts"]
    per_class = plots.group_by_strategy(records, strategies, "best_per_class_acc")
    plots.save(plots.per_class_figure(per_class, counts, styles, benchmark, reference), outputs["per_class"])
    shots = plots.group_by_strategy(records, strategies, "best_shot_acc")
    plots.save(plots.shot_figure(shots, counts, styles, benchmark), outputs["shots"])
    runs = plots.group_by_strategy(records, strategies)
    plots.save(plots.robustness_figure(runs, counts, styles, benchmark), outputs["robustness"])
    plots.save(plots.difference_figure(runs, reference, styles, benchmark), outputs["differences"])
    curves, defer_epochs, left_out = plots.training_curves((read_json(p) for p in history_paths), strategies)
    figure = plots.benchmark_curves_figure(curves, defer_epochs, styles, len(counts), benchmark, left_out)
    plots.save(figure, outputs["curves"])
    print(f"{benchmark}: {len(records)} runs of {len(per_class)} strategies plotted")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        outputs = dict(sm.output.items())
        plot_benchmark(sm.input.metrics, sm.input.histories, outputs, sm.wildcards.benchmark, sm.params.strategies,
                       sm.params.reference)
