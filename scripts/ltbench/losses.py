"""Classification losses shared by strategies. Each is called as ``loss(logits, targets, weight)``
with per-class ``weight`` (a tensor of C positive values) and reduces like
``nn.CrossEntropyLoss(weight=...)``: sum_i w_{y_i} l_i / sum_i w_{y_i}."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_mean(per_sample: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum_i w_{y_i} l_i / sum_i w_{y_i}."""
    w = weight[targets]
    return (w * per_sample).sum() / w.sum()


class CrossEntropy:
    """l_i = -log softmax(z_i)_{y_i}."""

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, weight=weight)


class Focal:
    """Focal loss (Lin et al. 2017): l_i = -(1 - p_i)^gamma log p_i, p_i = softmax(z_i)_{y_i}."""

    def __init__(self, gamma: float) -> None:
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        per_sample = -((1.0 - log_p.exp()).clamp_min(0.0) ** self.gamma) * log_p
        return weighted_mean(per_sample, targets, weight)


def ldam_margins(class_counts: torch.Tensor, max_margin: float) -> torch.Tensor:
    """m_c = K / n_c^(1/4), with K chosen so that the largest margin is ``max_margin`` (Cao et al. 2019)."""
    raw = class_counts.double().pow(-0.25)
    return (raw * (max_margin / raw.max())).float()


class LDAM:
    """LDAM loss on cosine logits: CE(s * (z - m_y e_y)), the target logit lowered by its class margin."""

    def __init__(self, margins: torch.Tensor, scale: float) -> None:
        self.margins, self.scale = margins, scale

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.margins.device != logits.device:  # once: keep the margins on the training device
            self.margins = self.margins.to(logits.device)
        margins = self.margins[targets]
        adjusted = logits - torch.zeros_like(logits).scatter_(1, targets[:, None], margins[:, None].to(logits.dtype))
        return F.cross_entropy(self.scale * adjusted, targets, weight=weight)
