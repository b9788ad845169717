"""Random undersampling: every class cut to the tail class's size, a fresh subset each epoch (a baseline)."""

from ltbench.methods.samplers import UnderSampler

TYPE = "resampling"
PARAMS = {}


def configure(class_counts, num_classes, config):
    """Epochs of C * n_min images."""
    return {"sampler": UnderSampler()}
