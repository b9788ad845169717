"""Focal loss (Lin et al. 2017) with focusing parameter ``gamma``; with ``beta`` set, class-balanced by
effective-number weights (Cui et al. 2019). Two forms (``form``):

- ``softmax`` (default): l_i = -(1 - p_i)^gamma log p_i on the softmax probability of the target,
  reduced as a weighted mean, sum_i w_{y_i} l_i / sum_i w_{y_i} (as our other weighted losses);
- ``sigmoid``: Cui et al.'s own class-balanced focal loss, a sigmoid focal loss over all classes
  summed and divided by the batch size, with the head's bias initialised to -log(C - 1) as in
  their code (ltbench.methods.losses.SigmoidFocal).
"""

import math

import torch

from ltbench.methods import weights
from ltbench.methods.losses import Focal, SigmoidFocal

TYPE = "loss"
PARAMS = {"gamma": 1.0, "beta": None, "form": ("softmax", "sigmoid")}


def compute_class_weights(class_counts, num_classes, config):
    """Effective-number weights if ``beta`` is set, else 1."""
    if config["beta"] is not None:
        return weights.effective_number(class_counts, float(config["beta"]))
    return torch.ones(num_classes)


def configure(class_counts, num_classes, config):
    """The focal loss of the configured form and gamma (and the sigmoid form's head bias)."""
    gamma = float(config["gamma"])
    if config["form"] == "sigmoid":
        return {"loss": SigmoidFocal(gamma), "head_bias": -math.log(num_classes - 1)}
    return {"loss": Focal(gamma)}
