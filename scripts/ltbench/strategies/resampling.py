"""Class-level power resampling (Kang et al., ICLR 2020): each epoch draws N images with replacement,
class c with probability n_c^q / sum_k n_k^q. Parameter ``q``: 0 class-balanced (default), 0.5 square-root."""

from ltbench.methods.samplers import ClassPowerSampler

TYPE = "resampling"
PARAMS = {"q": 0.0}


def configure(class_counts, num_classes, config):
    """Sampler only; the loss is plain cross-entropy."""
    return {"sampler": ClassPowerSampler(float(config["q"]))}
