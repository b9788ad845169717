"""Snakemake rule ``plot_run``: one run's history and predictions -> learning curves and confusion matrix."""

import numpy as np

from ltbench.reporting import plots
from ltbench.io import read_json
from ltbench.logs import redirect_to_log


def plot_run(history_path: str, predictions_path: str, index_path: str, curves_path: str, confusion_path: str) -> None:
    """Draw test accuracy / training loss / learning rate per epoch, and the best epoch's confusion matrix.
    One run's figure is drawn in one style whatever the other strategies are, so adding or reordering
    strategies leaves it as it is."""
    history, index = read_json(history_path), read_json(index_path)
    with np.load(predictions_path) as npz:
        labels, pred = npz["labels"], npz["best_pred"]
    strategy, best, counts = history["strategy"]["name"], history["best_epoch"], index["class_counts"]
    tag = f"{history['benchmark']['name']} / {strategy} / seed {history['seed']}"
    style = plots.strategy_styles([strategy])[strategy]
    curves_title = tag + (f"\n({history['epochs_note']})" if "epochs_note" in history else "")
    curves = plots.learning_curves_figure(history["epochs"], best, history["best_test_acc"], curves_title, style,
                                          len(counts), plots.defer_epoch(history))
    plots.save(curves, curves_path)
    title = f"{tag}\nconfusion matrix at the best epoch ({best}), rows normalized"
    plots.save(plots.confusion_figure(labels, pred, counts, index["classes"], title), confusion_path)
    print(f"{tag}: {len(history['epochs'])} epochs, {len(labels)} test images plotted")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        plot_run(sm.input.history, sm.input.predictions, sm.input.index, sm.output.curves, sm.output.confusion)
