"""Turn one run's outputs (history, predictions, dataset index) into its metrics record."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from ltbench.config import Strategy
from ltbench.shots import FEW_BELOW, GROUPS, MANY_ABOVE, group_accuracy, shot_group  # noqa: F401 (the metrics API)


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """acc_c = 100 * #(pred == label == c) / #(label == c)."""
    total = np.bincount(labels, minlength=num_classes)
    correct = np.bincount(labels[pred == labels], minlength=num_classes)
    return 100.0 * correct / np.maximum(total, 1)


def shot_accuracy(pred: np.ndarray, labels: np.ndarray, class_counts: list[int]) -> dict[str, float | None]:
    """Accuracy over the test images of each shot group's classes (None for an empty group)."""
    num_classes = len(class_counts)
    correct = np.bincount(labels[pred == labels], minlength=num_classes)
    return group_accuracy(correct, np.bincount(labels, minlength=num_classes), class_counts)


def shot_classes(class_counts: list[int]) -> dict[str, int]:
    """How many classes each shot group holds."""
    groups = [shot_group(c) for c in class_counts]
    return {name: groups.count(name) for name in GROUPS}


def validation_selected(history: dict[str, Any], labels: np.ndarray, class_counts: list[int]) -> dict[str, Any] | None:
    """At the epoch with the best validation accuracy (``history["val_selected"]``): its number, its validation
    and test accuracy, and its shot-group test accuracy (from that epoch's per-class correct counts); None
    when the run had no validation set."""
    chosen = history.get("val_selected")
    if not chosen:
        return None
    correct = history["epochs"][chosen["epoch"] - 1]["per_class_correct"]
    tested = np.bincount(labels, minlength=len(class_counts))
    return {**chosen, "shot_acc": group_accuracy(correct, tested, class_counts)}


def extract(history: dict[str, Any], predictions: dict[str, np.ndarray], index: dict[str, Any]) -> dict[str, Any]:
    """The metrics record of one run: benchmark and strategy, best/final accuracy (with the correct
    count over the test images), shot groups and their class counts, per-class accuracy, weights,
    provenance. ``builds_on`` names the run's stage-1 or base strategy (``stage`` says which)."""
    labels = predictions["labels"]
    counts = index["class_counts"]
    num_classes = len(counts)
    bench, strat = history["benchmark"], history["strategy"]
    spec = Strategy(strat["name"], strat["module"], strat["params"])
    record = {
        "benchmark": bench["name"],
        "arch": bench["arch"],
        "dataset": bench["dataset"],
        "imbalance_ratio": bench["imbalance_ratio"],
        "strategy": strat["name"],
        "type": strat["type"],
        "stage": spec.stage,
        "builds_on": spec.upstream,
        "seed": history["seed"],
        "num_classes": num_classes,
        "test_images": len(labels),
        "shot_classes": shot_classes(counts),
        "best_test_acc": history["best_test_acc"],
        "best_epoch": history["best_epoch"],
        "final_test_acc": history["final_test_acc"],
        "epochs": len(history["epochs"]),
    }
    for which in ("best", "last"):
        pred = predictions[f"{which}_pred"]
        record[f"{which}_correct"] = int((pred == labels).sum())
        record[f"{which}_shot_acc"] = shot_accuracy(pred, labels, counts)
        record[f"{which}_per_class_acc"] = per_class_accuracy(pred, labels, num_classes).round(4).tolist()
    record["val_selected"] = validation_selected(history, labels, counts)
    record.update({
        "class_counts": counts,
        "class_weights": history["class_weights"],
        "logit_offsets": history["logit_offsets"],
        "strategy_params": history["strategy"]["params"],
        "provenance": history["provenance"],
    })
    return record


def record_checksum(record: dict[str, Any]) -> str:
    """sha256 of the record's JSON (sorted keys) without its ``checksum`` field."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def seal(record: dict[str, Any], made_from: dict[str, str]) -> dict[str, Any]:
    """The record with ``made_from`` (sha256 of each file it was computed from) and its own ``checksum``."""
    sealed = {**record, "made_from": made_from}
    return {**sealed, "checksum": record_checksum(sealed)}


def verified(record: dict[str, Any], path: str) -> dict[str, Any]:
    """``record`` (read from ``path``) if its checksum matches its content, else a ``ValueError`` naming the
    file: a metrics record edited by hand or damaged must not reach the table."""
    if record.get("checksum") != record_checksum(record):
        raise ValueError(f"{path} does not match its checksum: it was changed after it was made from the run's"
                         " history and predictions; delete it and rerun the workflow to remake it")
    return record
