"""The metrics record of one run: what the table reads besides the accuracies."""

from __future__ import annotations

import numpy as np
import pytest

from ltbench.metrics import extract, shot_classes


def test_shot_classes_counts_each_group():
    assert shot_classes([500, 101, 100, 20, 19, 5]) == {"many": 2, "medium": 2, "few": 2}


@pytest.mark.parametrize("params, stage, builds_on", [
    ({}, "train", None), ({"base": "ce", "tau": 1.0}, "posthoc", "ce"), ({"stage1": "wb_stage1"}, "stage2", "wb_stage1"),
])
def test_extract_records_benchmark_stage_and_test_counts(params, stage, builds_on):
    labels = np.array([0, 0, 1, 1, 2, 2])
    history = {
        "benchmark": {"name": "resnet32-tiny", "arch": "resnet32", "dataset": "tiny", "imbalance_ratio": 3.0},
        "strategy": {"name": "s", "module": "m", "params": params, "type": "loss"},
        "seed": 1, "best_test_acc": 50.0, "best_epoch": 2, "final_test_acc": 100 / 3, "epochs": [{}, {}],
        "class_weights": [1.0, 1.0, 1.0], "logit_offsets": None, "provenance": {},
    }
    predictions = {"labels": labels, "best_pred": np.array([0, 0, 1, 0, 0, 0]),
                   "last_pred": np.array([0, 1, 1, 0, 0, 1])}
    record = extract(history, predictions, {"class_counts": [150, 50, 10]})
    assert (record["arch"], record["dataset"], record["imbalance_ratio"]) == ("resnet32", "tiny", 3.0)
    assert (record["stage"], record["builds_on"]) == (stage, builds_on)
    assert [record[k] for k in ("num_classes", "test_images", "best_correct", "last_correct")] == [3, 6, 3, 2]
    assert record["shot_classes"] == {"many": 1, "medium": 1, "few": 1}
    assert record["best_shot_acc"] == {"many": 100.0, "medium": 50.0, "few": 0.0}
