"""Snakemake rule ``metrics``: one run's history + predictions + dataset index -> metrics.json."""

import numpy as np

from ltbench.io import read_json, write_json
from ltbench.logs import redirect_to_log
from ltbench.metrics import extract


def extract_metrics(history_path: str, predictions_path: str, index_path: str, metrics_path: str) -> None:
    """Read the run's outputs and write its metrics record."""
    with np.load(predictions_path) as npz:
        predictions = {key: npz[key] for key in npz.files}
    record = extract(read_json(history_path), predictions, read_json(index_path))
    write_json(metrics_path, record)
    print(f"{record['benchmark']}/{record['strategy']}/seed{record['seed']}: best {record['best_test_acc']:.2f}")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        extract_metrics(sm.input.history, sm.input.predictions, sm.input.index, sm.output.metrics)
