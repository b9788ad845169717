"""Snakemake rule ``plot_dataset``: a materialized subset's index.json -> its class-size histogram."""

from ltbench.reporting import plots
from ltbench.config import format_ratio
from ltbench.io import read_json
from ltbench.logs import redirect_to_log


def plot_dataset(index_path: str, histogram_path: str, data_id: str) -> None:
    """Training images per class of the training subset (long-tailed, or the data's own distribution)."""
    index = read_json(index_path)
    counts = index["class_counts"]
    ratio, configured = max(counts) / min(counts), index["imbalance_ratio"]  # configured: a number or "natural"
    note = "" if ratio == configured else f" (configured {format_ratio(configured)})"
    title = f"{data_id}: {sum(counts):,} training images in {len(counts)} classes, imbalance ratio {ratio:g}{note}"
    plots.save(plots.class_histogram_figure(counts, index["classes"], title), histogram_path)
    print(title)


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        plot_dataset(sm.input.index, sm.output.histogram, f"{sm.wildcards.dataset}-lt{sm.wildcards.ratio}")
