"""Post-hoc logit adjustment (Menon et al., ICLR 2021): no retraining; the test logits of a base run
(config key ``base``, e.g. ce) are corrected by the training prior. Parameter ``tau``, default 1."""

from ltbench.methods import weights

TYPE = "logit adjustment"
PARAMS = {"tau": 1.0}
BUILDS_ON = "base"


def adjust_logits(logits, class_counts, num_classes, config):
    """z'_c = z_c - tau * log(n_c / N)."""
    return logits - float(config["tau"]) * weights.log_prior(class_counts).to(logits.dtype)
