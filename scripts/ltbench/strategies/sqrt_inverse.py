"""Square-root inverse frequency."""

from ltbench.methods import weights

TYPE = "static reweighting"
PARAMS = {}


def compute_class_weights(class_counts, num_classes, config):
    """w_c = 1 / sqrt(n_c)."""
    return weights.sqrt_inverse(class_counts)
