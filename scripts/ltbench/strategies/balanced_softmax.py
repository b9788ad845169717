"""Balanced softmax (Ren et al., NeurIPS 2020): the training loss sees logits shifted by the log prior."""

from ltbench.methods import weights

TYPE = "logit adjustment"
PARAMS = {}


def compute_logit_offsets(class_counts, num_classes, config):
    """o_c = log(n_c / N), added to the logits in the training loss; test logits are unshifted. Weights are 1."""
    return weights.log_prior(class_counts)
