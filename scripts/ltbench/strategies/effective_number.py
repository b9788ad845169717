"""Class-balanced loss by the effective number of samples (Cui et al., CVPR 2019).

Parameter: ``beta`` in [0, 1), default 0.9999.
"""

from ltbench.methods import weights

TYPE = "static reweighting"
PARAMS = {"beta": 0.9999}


def compute_class_weights(class_counts, num_classes, config):
    """w_c = (1 - beta) / (1 - beta^n_c), rescaled so that sum_c w_c = C."""
    return weights.effective_number(class_counts, float(config["beta"]))
