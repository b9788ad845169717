"""Inverse class frequency."""


def compute_class_weights(class_counts, num_classes, config):
    """w_c = N / (C * n_c), with N the number of training images and n_c the class's count."""
    return config["total_samples"] / (num_classes * class_counts)
