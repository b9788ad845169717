"""Which training images an epoch visits, drawn on the training device.

Every sampler maps (labels, generator) to the index tensor of one epoch, already shuffled.
"""

from __future__ import annotations

import torch


class InstanceSampler:
    """Every image once per epoch, in random order (the default)."""

    def epoch(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.randperm(len(labels), device=labels.device, generator=generator)


class ClassPowerSampler:
    """N draws with replacement, class c drawn with probability n_c^q / sum_k n_k^q, uniform within the class.

    q = 0: class-balanced sampling; q = 0.5: square-root sampling; q = 1: instance sampling in expectation.
    """

    def __init__(self, q: float) -> None:
        self.q = q

    def probabilities(self, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Per-image probability n_{y_i}^(q-1) / sum_k n_k^q."""
        counts = torch.bincount(labels, minlength=num_classes).double()
        per_image = counts[labels].pow(self.q - 1.0)
        return per_image / per_image.sum()

    def epoch(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        probs = self.probabilities(labels, int(labels.max()) + 1).float()
        return torch.multinomial(probs, len(labels), replacement=True, generator=generator)


def _by_class(labels: torch.Tensor) -> list[torch.Tensor]:
    """Indices of each class's images."""
    return [torch.nonzero(labels == c).flatten() for c in range(int(labels.max()) + 1)]


class OverSampler:
    """Random oversampling: each class topped up to the largest class size by draws with replacement."""

    def epoch(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        groups = _by_class(labels)
        target = max(len(g) for g in groups)
        parts = []
        for g in groups:
            extra = torch.randint(0, len(g), (target - len(g),), device=labels.device, generator=generator)
            parts += [g, g[extra]]
        out = torch.cat(parts)
        return out[torch.randperm(len(out), device=labels.device, generator=generator)]


class UnderSampler:
    """Random undersampling: each class cut to the smallest class size, a fresh subset every epoch."""

    def epoch(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        groups = _by_class(labels)
        target = min(len(g) for g in groups)
        parts = [g[torch.randperm(len(g), device=labels.device, generator=generator)[:target]] for g in groups]
        out = torch.cat(parts)
        return out[torch.randperm(len(out), device=labels.device, generator=generator)]
