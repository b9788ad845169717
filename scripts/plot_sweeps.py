"""Snakemake rules ``plot_ratio_sweep`` and ``plot_param_sweep``: the metrics.json records of a grid's runs
-> its sweep figure (``ltbench.reporting.sweeps``)."""

from ltbench.reporting import plots, sweeps
from ltbench.io import read_json
from ltbench.logs import redirect_to_log


def plot_ratio_sweep(metrics_paths: list[str], output: str, grid: str, strategies: list[str]) -> None:
    """Accuracy (all, many, medium, few) across the imbalance ratios of benchmark grid ``grid``."""
    records = [read_json(path) for path in metrics_paths]
    plots.save(sweeps.ratio_figure(records, strategies, grid), output)
    print(f"{grid}: {len(records)} runs plotted across {len({r['imbalance_ratio'] for r in records})} ratios")


def plot_param_sweep(metrics_paths: list[str], output: str, grid: str, origins: dict, benchmarks: list[str],
                     reference: str | None) -> None:
    """All-class accuracy against the swept parameter of strategy grid ``grid``, per benchmark, with the
    reference strategy as a line."""
    records = [read_json(path) for path in metrics_paths]
    plots.save(sweeps.param_figure(records, origins, benchmarks, reference, grid), output)
    print(f"{grid}: {len(records)} runs plotted")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        if sm.rule == "plot_ratio_sweep":
            plot_ratio_sweep(sm.input.metrics, sm.output.figure, sm.wildcards.grid, sm.params.strategies)
        else:
            plot_param_sweep(sm.input.metrics, sm.output.figure, sm.wildcards.grid, sm.params.origins,
                             sm.params.benchmarks, sm.params.reference)
