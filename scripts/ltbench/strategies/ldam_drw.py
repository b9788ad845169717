"""LDAM loss with deferred re-weighting (Cao et al., NeurIPS 2019).

Cosine classifier; the target's cosine is lowered by m_c = K / n_c^(1/4) (largest margin ``max_margin``,
default 0.5) before scaling by ``scale`` (default 30); effective-number weights (``beta``, default 0.9999)
switch on at ``defer_epoch`` (default 160 of 200). The model predicts softmax(``scale`` x cosine), so the
test logits are the cosines times ``scale`` (calibration at the scale the loss trained).
"""

from ltbench.methods import schedules, weights
from ltbench.methods.losses import LDAM, ldam_margins

TYPE = "margin"
PARAMS = {"max_margin": 0.5, "scale": 30.0, "beta": 0.9999, "defer_epoch": None}


def compute_class_weights(class_counts, num_classes, config):
    """Effective-number weights, in force from the defer epoch."""
    return weights.effective_number(class_counts, float(config["beta"]))


def configure(class_counts, num_classes, config):
    """LDAM loss on a cosine head (test logits at the loss's scale), deferred weights."""
    margins = ldam_margins(class_counts, float(config["max_margin"]))
    return {
        "loss": LDAM(margins, float(config["scale"])),
        "head": "cosine",
        "logit_scale": float(config["scale"]),
        "defer_epoch": schedules.defer_epoch(config),
    }
