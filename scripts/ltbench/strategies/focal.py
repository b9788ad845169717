"""Focal loss (Lin et al. 2017), ``gamma`` default 1.0; with ``beta`` given, class-balanced focal loss
(Cui et al. 2019: effective-number weights)."""

import torch

from ltbench import weights
from ltbench.losses import Focal

TYPE = "loss"
PARAMS = {"gamma": 1.0, "beta": None}


def compute_class_weights(class_counts, num_classes, config):
    """Effective-number weights if ``beta`` is set, else 1."""
    if config["beta"] is not None:
        return weights.effective_number(class_counts, float(config["beta"]))
    return torch.ones(num_classes)


def configure(class_counts, num_classes, config):
    """Focal loss with the configured gamma."""
    return {"loss": Focal(float(config["gamma"]))}
