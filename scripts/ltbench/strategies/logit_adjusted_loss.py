"""Logit-adjusted loss (Menon et al., ICLR 2021): CE on z + tau * log prior. Parameter ``tau``, default 1
(with tau = 1 this is the balanced-softmax loss)."""

from ltbench.methods import weights

TYPE = "logit adjustment"
PARAMS = {"tau": 1.0}


def compute_logit_offsets(class_counts, num_classes, config):
    """o_c = tau * log(n_c / N), added to the logits in the training loss only."""
    return float(config["tau"]) * weights.log_prior(class_counts)
