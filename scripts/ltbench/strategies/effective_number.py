"""Class-balanced loss by the effective number of samples (Cui et al., CVPR 2019).

Parameter: ``beta`` in [0, 1), default 0.9999.
"""


def compute_class_weights(class_counts, num_classes, config):
    """w_c = (1 - beta) / (1 - beta^n_c), rescaled so that sum_c w_c = C."""
    beta = float(config.get("beta", 0.9999))
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    weights = (1.0 - beta) / (1.0 - beta**class_counts)
    return weights * num_classes / weights.sum()
