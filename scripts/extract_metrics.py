"""Snakemake rule ``metrics``: one run's history + predictions + dataset index -> metrics.json."""

from pathlib import Path

import numpy as np

from ltbench.io import file_sha256, read_json, write_json
from ltbench.logs import redirect_to_log
from ltbench.evaluation.metrics import extract, seal


def extract_metrics(history_path: str, predictions_path: str, index_path: str, metrics_path: str) -> None:
    """Read the run's outputs and write its metrics record."""
    with np.load(predictions_path) as npz:
        predictions = {key: npz[key] for key in npz.files}
    record = extract(read_json(history_path), predictions, read_json(index_path))
    made_from = {Path(p).name: file_sha256(p) for p in (history_path, predictions_path, index_path)}
    write_json(metrics_path, seal(record, made_from))
    print(f"{record['benchmark']}/{record['strategy']}/seed{record['seed']}: best {record['best_test_acc']:.2f}")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        extract_metrics(sm.input.history, sm.input.predictions, sm.input.index, sm.output.metrics)
