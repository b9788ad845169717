"""Random oversampling: every class topped up to the head class's size each epoch (a baseline)."""

from ltbench.methods.samplers import OverSampler

TYPE = "resampling"
PARAMS = {}


def configure(class_counts, num_classes, config):
    """Epochs of C * n_max images: each class's images plus draws with replacement."""
    return {"sampler": OverSampler()}
