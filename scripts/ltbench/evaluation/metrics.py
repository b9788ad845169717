"""Turn one run's outputs (history, predictions, dataset index) into its metrics record."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltbench.evaluation import calibration, priors
from ltbench.config import Strategy
from ltbench.evaluation.shots import FEW_BELOW, GROUPS, MANY_ABOVE, shot_group  # noqa: F401 (the metrics API)

# The scalar metrics of one epoch's predictions (``epoch_metrics``), then one accuracy per test prior.
EPOCH_METRICS = ("balanced_acc", "ece", "nll", "confidence", "worst_class_acc", "worst_class", "head_tail_gap")
PRIOR_METRICS = tuple(f"acc_{priors.prior_name(d, r)}" for d in priors.DIRECTIONS for r in priors.RATIOS)


@dataclass(frozen=True)
class Reported:
    """How the results table reports a metric at the best epoch: ``better`` +1 where higher is better, -1 where
    lower is, 0 neither (a confidence is read beside the accuracy, a gap by its distance from zero); its markdown
    ``label``; its ``latex`` label (None: the markdown table only, so that the LaTeX one prints); and the
    ``extra_digits`` it is shown with beyond the percentages' two."""

    better: int
    label: str
    latex: str | None = None
    extra_digits: int = 0


PRIOR_LATEX = {"forward": "Fwd", "backward": "Bwd"}
# The second table's metrics (calibration and robustness), in column order: adding a metric to the table is
# computing it in ``epoch_metrics`` and one entry here.
REPORTED = {
    "ece": Reported(-1, "ECE (%)", "ECE"),
    "nll": Reported(-1, "NLL", "NLL", extra_digits=1),  # nats near 1
    "confidence": Reported(0, "confidence (%)"),
    "worst_class_acc": Reported(1, "worst class (%)", "Worst"),
    "head_tail_gap": Reported(0, "gap", "Gap"),
    **{f"acc_{priors.prior_name(d, r)}": Reported(1, f"{d} {r}", f"{PRIOR_LATEX[d]} {r}" if r == 50 else None)
       for d in priors.DIRECTIONS for r in priors.RATIOS},
}


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """acc_c = 100 * #(pred == label == c) / #(label == c)."""
    total = np.bincount(labels, minlength=num_classes)
    correct = np.bincount(labels[pred == labels], minlength=num_classes)
    return 100.0 * correct / np.maximum(total, 1)


def tested_classes(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Whether each class has test images (a class without any has no accuracy)."""
    return np.bincount(labels, minlength=num_classes) > 0


def class_mean(per_class_acc: np.ndarray, members: np.ndarray) -> float | None:
    """mean_{c in members} acc_c over the selected classes (a boolean mask); None if it selects none."""
    return float(np.mean(per_class_acc[members])) if members.any() else None


def shot_accuracy(per_class_acc: np.ndarray, tested: np.ndarray, class_counts: list[int]) -> dict[str, float | None]:
    """Per shot group: the mean accuracy of its classes with test images (``class_mean``), so that each class
    counts once whatever its test images; on a balanced test set the accuracy over the group's images."""
    groups = np.array([shot_group(c) for c in class_counts])
    return {name: class_mean(per_class_acc, tested & (groups == name)) for name in GROUPS}


def worst_class(per_class_acc: np.ndarray, tested: np.ndarray) -> int:
    """argmin_c acc_c over the classes with test images (the first such class on a tie)."""
    return int(np.flatnonzero(tested)[np.argmin(per_class_acc[tested])])


def gap_groups(shot_classes: dict[str, int]) -> tuple[str, str] | None:
    """The head and tail groups of the head-to-tail gap: the first and the last of ``GROUPS`` that hold
    classes (many and few; many and medium where no class is few-shot, as CIFAR-10-LT at ratio 100);
    None where only one group holds classes."""
    present = [g for g in GROUPS if shot_classes[g]]
    return (present[0], present[-1]) if len(present) > 1 else None


def head_tail_gap(shot_acc: dict[str, float | None], groups: tuple[str, str] | None) -> float | None:
    """acc_head - acc_tail of the ``gap_groups`` (points); None without two groups."""
    if groups is None or shot_acc[groups[0]] is None or shot_acc[groups[1]] is None:
        return None
    return shot_acc[groups[0]] - shot_acc[groups[1]]


def calibration_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """ECE, NLL, mean confidence and the reliability diagram (``ltbench.evaluation.calibration``); all None where a
    logit is not finite (a diverged run has no probabilities to calibrate)."""
    finite = bool(np.isfinite(logits).all())
    return {
        "ece": calibration.expected_calibration_error(logits, labels) if finite else None,
        "nll": calibration.negative_log_likelihood(logits, labels) if finite else None,
        "confidence": calibration.mean_confidence(logits) if finite else None,
        "reliability": calibration.reliability(logits, labels) if finite else None,
    }


def epoch_metrics(logits: np.ndarray, labels: np.ndarray, class_counts: list[int], classes: list[str]
                  ) -> dict[str, Any]:
    """One epoch's metrics from its test logits (``ltbench.evaluation.calibration`` says which logits): per-class and
    shot-group accuracy, the class-balanced accuracy (mean over classes with test images), calibration (ECE,
    NLL, mean confidence, the reliability diagram: ``calibration_metrics``), the worst class and its accuracy, the head-to-tail gap,
    and the accuracy under each long-tailed test prior (``ltbench.evaluation.priors``)."""
    num_classes = len(class_counts)
    per_class = per_class_accuracy(logits.argmax(axis=1), labels, num_classes)
    tested = tested_classes(labels, num_classes)
    shot_acc = shot_accuracy(per_class, tested, class_counts)
    worst = worst_class(per_class, tested)
    return {
        "per_class_acc": per_class.round(4).tolist(),
        "shot_acc": shot_acc,
        "balanced_acc": class_mean(per_class, tested),
        **calibration_metrics(logits, labels),
        "worst_class_acc": float(per_class[worst]),
        "worst_class": classes[worst] if classes else str(worst),
        "head_tail_gap": head_tail_gap(shot_acc, gap_groups(shot_classes(class_counts))),
        **{f"acc_{name}": acc for name, acc in priors.prior_accuracies(per_class, class_counts).items()},
    }


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
    correct = np.asarray(history["epochs"][chosen["epoch"] - 1]["per_class_correct"], dtype=float)
    per_class = 100.0 * correct / np.maximum(np.bincount(labels, minlength=len(class_counts)), 1)
    return {**chosen, "shot_acc": shot_accuracy(per_class, tested_classes(labels, len(class_counts)), class_counts)}


def balanced_test_set(labels: np.ndarray, num_classes: int) -> bool:
    """Whether every class has as many test images as every other."""
    return len(set(np.bincount(labels, minlength=num_classes).tolist())) == 1


def extract(history: dict[str, Any], predictions: dict[str, np.ndarray], index: dict[str, Any]) -> dict[str, Any]:
    """The metrics record of one run: benchmark and strategy, best/final accuracy (with the correct
    count over the test images), whether the test set is balanced, shot groups and their class counts,
    the head and tail groups of the gap, and per epoch (best, last) its ``epoch_metrics`` (as
    ``best_<metric>``, ``last_<metric>``); weights, provenance. ``builds_on`` names the run's stage-1 or
    base strategy (``stage`` says which)."""
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
        "test_balanced": balanced_test_set(labels, num_classes),
        "shot_classes": shot_classes(counts),
        "gap_groups": gap_groups(shot_classes(counts)),
        "best_test_acc": history["best_test_acc"],
        "best_epoch": history["best_epoch"],
        "final_test_acc": history["final_test_acc"],
        "epochs": len(history["epochs"]),
    }
    for which in ("best", "last"):
        record[f"{which}_correct"] = int((predictions[f"{which}_pred"] == labels).sum())
        scores = epoch_metrics(predictions[f"{which}_logits"], labels, counts, index.get("classes"))
        record.update({f"{which}_{name}": value for name, value in scores.items()})
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
