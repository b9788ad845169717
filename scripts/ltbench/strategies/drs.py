"""Deferred re-sampling (Cao et al., NeurIPS 2019): instance sampling, then class-level resampling
(probability n_c^q, ``q`` default 0: class-balanced) from ``defer_epoch`` (default 160 of 200)."""

from ltbench.methods import schedules
from ltbench.methods.samplers import ClassPowerSampler

TYPE = "deferred"
PARAMS = {"q": 0.0, "defer_epoch": None}


def configure(class_counts, num_classes, config):
    """Class-power sampler from the defer epoch on."""
    return {
        "sampler": ClassPowerSampler(float(config["q"])),
        "defer_epoch": schedules.defer_epoch(config),
    }
