"""Minority-sample synthesis via distribution matching (Li et al., TMLR 2025), as read in
docs/methods.md: from ``defer_epoch`` (default 160 of 200) each step adds synthetic minority
features matched to their class by entropic optimal transport (Sinkhorn, ``epsilon`` 0.1, at most
``sinkhorn_iters`` 200; ``steps`` 5 updates of size ``step`` 0.1), loss ``lambda1`` 0.5 * real +
``lambda2`` 0.5 * synthetic; ``tau`` 0.9 scales the borrowed head-class variation; the real loss
takes effective-number weights with ``beta`` 0.999 from the defer epoch."""

from ltbench.methods import schedules, weights
from ltbench.methods.synthesis import MinoritySynthesizer

TYPE = "synthesis"
PARAMS = {
    "beta": 0.999, "tau": 0.9, "lambda1": 0.5, "lambda2": 0.5, "epsilon": 0.1, "sinkhorn_iters": 200, "steps": 5,
    "step": 0.1, "bank_size": 64, "defer_epoch": None,
}


def compute_class_weights(class_counts, num_classes, config):
    """Effective-number weights (beta), in force from the defer epoch."""
    return weights.effective_number(class_counts, float(config["beta"]))


def configure(class_counts, num_classes, config):
    """The synthesizer, starting at the defer epoch."""
    defer = schedules.defer_epoch(config)
    names = ("bank_size", "tau", "steps", "step", "epsilon", "sinkhorn_iters", "lambda1", "lambda2")
    options = {name: config[name] for name in names}
    return {"feature_hook": MinoritySynthesizer(class_counts, defer, **options), "defer_epoch": defer}
