"""Prior-mixture weights (ours, docs/novel-strategy.md): the loss sees classes in the proportions
q = (1 - alpha) pi + alpha / C, a mixture of the training prior pi and the uniform distribution
(``alpha`` default 0.25)."""

TYPE = "static reweighting"
PARAMS = {"alpha": 0.25}


def compute_class_weights(class_counts, num_classes, config):
    """w_c = q_c / pi_c = (1 - alpha) + alpha n̄ / n_c, n̄ = N / C: alpha 0 gives ce, alpha 1 gives inverse_freq."""
    alpha = float(config["alpha"])
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return (1 - alpha) + alpha * class_counts.mean() / class_counts
