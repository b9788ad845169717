"""Deferred re-weighting (Cao et al., NeurIPS 2019): plain cross-entropy, then effective-number weights
from ``defer_epoch`` (default 160 of 200). Parameter ``beta``, default 0.9999."""

from ltbench.methods import schedules, weights

TYPE = "deferred"
PARAMS = {"beta": 0.9999, "defer_epoch": None}


def compute_class_weights(class_counts, num_classes, config):
    """w_c = effective-number weights (see effective_number.py), in force from the defer epoch."""
    return weights.effective_number(class_counts, float(config["beta"]))


def configure(class_counts, num_classes, config):
    """Uniform weights before ``defer_epoch``."""
    return {"defer_epoch": schedules.defer_epoch(config)}
