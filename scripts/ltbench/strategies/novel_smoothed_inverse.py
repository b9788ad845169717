"""Smoothed inverse frequency (ours, docs/novel-strategy.md): inverse frequency with ``smoothing`` (default 0.25)
mean class sizes added to every count, which caps the weight of the rarest classes. It is the ratio of the
logit-adjusted to the plain cross-entropy gradient for a sample fitted with margin -ln(smoothing) against a
class of mean size."""

TYPE = "static reweighting"
PARAMS = {"smoothing": 0.25}


def compute_class_weights(class_counts, num_classes, config):
    """w_c = n̄ / (n_c + smoothing * n̄), n̄ = N / C: smoothing 0 gives inverse_freq, smoothing -> inf gives ce."""
    smoothing = float(config["smoothing"])
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    mean = class_counts.mean()
    return mean / (class_counts + smoothing * mean)
