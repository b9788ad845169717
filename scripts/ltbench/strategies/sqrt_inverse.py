"""Square-root inverse frequency."""


def compute_class_weights(class_counts, num_classes, config):
    """w_c = 1 / sqrt(n_c)."""
    return class_counts.rsqrt()
