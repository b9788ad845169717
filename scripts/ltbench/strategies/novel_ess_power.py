"""Variance-budgeted power weights (ours, docs/novel-strategy.md): the strongest inverse-frequency power whose
expected per-batch effective sample size stays above a fraction ``kappa`` (default 0.5) of the batch."""

import torch

TYPE = "static reweighting"
PARAMS = {"kappa": 0.5}


def compute_class_weights(class_counts, num_classes, config):
    """w_c = (n̄ / n_c)^p with n̄ = N / C and p the largest value in [0, 1] with ESS(p) >= kappa, where
    ESS(p) = (sum_c n_c^(1-p))^2 / (N sum_c n_c^(1-2p)) = (E_pi w)^2 / E_pi w^2, decreasing in p.
    kappa = 1 gives ce; kappa <= ESS(1) = C^2 / (N sum_c 1/n_c) gives inverse_freq."""
    kappa = float(config["kappa"])
    if not 0.0 < kappa <= 1.0:
        raise ValueError(f"kappa must be in (0, 1], got {kappa}")
    log_n, total = class_counts.log(), class_counts.sum()

    def ess(p):
        log_ess = 2 * torch.logsumexp((1 - p) * log_n, 0) - torch.logsumexp((1 - 2 * p) * log_n, 0) - total.log()
        return log_ess.exp()

    low, high = 0.0, 1.0
    if ess(high) >= kappa:
        low = high
    for _ in range(60):  # bisection; ``low`` always meets the budget
        mid = (low + high) / 2
        low, high = (mid, high) if ess(mid) >= kappa else (low, mid)
    return (class_counts.mean() / class_counts) ** low
