"""Calibration of one run's test predictions, from the logits it saved (predictions.npz).

The scored logits are those the model predicts with at test time: the network's output without the
offsets or margins some strategies add during training only, times the strategy's ``logit_scale`` (a
cosine head's loss scale: LDAM predicts softmax(30 x cosine)), and, for a post-hoc strategy, its
adjusted logits. Probabilities are their softmax, the prediction its argmax (top-1)."""

from __future__ import annotations

import numpy as np

BINS = 15  # equal-width confidence bins of the expected calibration error


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p_ic = z_ic - log sum_k exp z_ik, in float64 (stable: the row maximum subtracted first)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def confidence(logits: np.ndarray) -> np.ndarray:
    """Each image's top-1 confidence: max_c p_ic."""
    return np.exp(log_softmax(logits).max(axis=1))


def reliability(logits: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, list]:
    """The reliability diagram: per equal-width confidence bin B_m = ((m-1)/M, m/M], m = 1..M, its image
    count |B_m|, accuracy acc(B_m) (% of its images whose top-1 prediction is right) and mean confidence
    conf(B_m) (%); None for an empty bin's accuracy and confidence."""
    conf = confidence(logits)
    right = np.asarray(logits).argmax(axis=1) == labels
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    hits = np.bincount(which, weights=right, minlength=bins)
    total = np.bincount(which, weights=conf, minlength=bins)
    return {"count": count.tolist(),
            "accuracy": [100.0 * h / n if n else None for h, n in zip(hits, count)],
            "confidence": [100.0 * t / n if n else None for t, n in zip(total, count)]}


def expected_calibration_error(logits: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """ECE (%) = sum_m |B_m| / N * |acc(B_m) - conf(B_m)| over the ``reliability`` bins (top-1 confidence,
    ``bins`` equal-width bins, N test images)."""
    diagram = reliability(logits, labels, bins)
    n = sum(diagram["count"])
    return sum(c / n * abs(a - f) for c, a, f in zip(diagram["count"], diagram["accuracy"], diagram["confidence"]) if c)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray) -> float:
    """NLL (nats) = -1/N sum_i log p_{i, y_i}: the mean cross-entropy of the test images."""
    return float(-log_softmax(logits)[np.arange(len(labels)), labels].mean())


def mean_confidence(logits: np.ndarray) -> float:
    """Mean top-1 confidence (%) = 100/N sum_i max_c p_ic; beside the accuracy, over- (above) or
    under-confidence (below)."""
    return 100.0 * float(confidence(logits).mean())
