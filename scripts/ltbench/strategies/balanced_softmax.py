"""Balanced softmax (Ren et al., NeurIPS 2020): the training loss sees logits shifted by the log prior."""

import torch


def compute_class_weights(class_counts, num_classes, config):
    """w_c = 1 (the correction lives in the logit offsets)."""
    return torch.ones(num_classes)


def compute_logit_offsets(class_counts, num_classes, config):
    """o_c = log(n_c / N), added to the logits in the training loss; test logits are unshifted."""
    return torch.log(class_counts / class_counts.sum())
