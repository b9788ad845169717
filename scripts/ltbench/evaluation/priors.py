"""Accuracy under other test distributions: the balanced test set reweighted per class to a long-tailed
test prior, forward (the training set's order: its largest class the most frequent) or backward
(reversed), as in SADE's test-agnostic protocol (Zhang et al., NeurIPS 2022). Exact: computed from the
per-class accuracies, without resampling the test images."""

from __future__ import annotations

from typing import Sequence

import numpy as np

RATIOS = (10, 50)  # SADE's imbalance ratios of the test priors reported in the table
DIRECTIONS = ("forward", "backward")
# The figure's test priors from backward to forward, as signed ratios: -rho backward, 1 uniform, +rho forward.
SWEEP = (-50, -25, -10, -5, -2, 1, 2, 5, 10, 25, 50)


def prior_name(direction: str, ratio: float) -> str:
    """'forward50', 'backward10': a test prior's name in metrics.json and table.csv."""
    return f"{direction}{ratio:g}"


def long_tailed_prior(class_counts: Sequence[int], ratio: float, direction: str = "forward") -> np.ndarray:
    """pi_c = rho^(-r_c / (C-1)) / sum_k rho^(-r_k / (C-1)), with r_c the class's rank by training images
    (0 = largest; ties in class order) forward, and C-1-r_c backward: the most frequent test class is
    ``ratio`` times the least frequent one. ``ratio`` 1 (or one class) is the uniform prior."""
    num_classes = len(class_counts)
    rank = np.empty(num_classes)
    rank[np.argsort(-np.asarray(class_counts), kind="stable")] = np.arange(num_classes)
    if direction == "backward":
        rank = num_classes - 1 - rank
    weight = float(ratio) ** (-rank / max(num_classes - 1, 1))
    return weight / weight.sum()


def prior_accuracy(per_class_acc: Sequence[float], prior: np.ndarray) -> float:
    """acc_pi = sum_c pi_c acc_c: the expected accuracy on test images drawn with class prior pi (the
    uniform prior gives the class-balanced accuracy, the mean of the per-class accuracies)."""
    return float(np.dot(prior, np.asarray(per_class_acc, dtype=float)))


def signed_prior(class_counts: Sequence[int], signed_ratio: float) -> np.ndarray:
    """A ``SWEEP`` point's prior: backward with ratio -s for s < 0, forward with ratio s otherwise."""
    direction = "backward" if signed_ratio < 0 else "forward"
    return long_tailed_prior(class_counts, abs(signed_ratio), direction)


def prior_accuracies(per_class_acc: Sequence[float], class_counts: Sequence[int]) -> dict[str, float]:
    """``prior_accuracy`` under every prior of ``DIRECTIONS`` x ``RATIOS``, by ``prior_name``."""
    return {prior_name(d, r): prior_accuracy(per_class_acc, long_tailed_prior(class_counts, r, d))
            for d in DIRECTIONS for r in RATIOS}
