"""Inverse class frequency."""

from ltbench.methods import weights

TYPE = "static reweighting"
PARAMS = {}


def compute_class_weights(class_counts, num_classes, config):
    """w_c = N / (C * n_c), with N the number of training images and n_c the class's count."""
    return weights.inverse_frequency(class_counts)
