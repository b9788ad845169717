"""Classification losses shared by strategies. Each is called as ``loss(logits, targets, weight)``
with per-class ``weight`` (a tensor of C positive values). ``CrossEntropy``, ``Focal`` and ``LDAM``
reduce by their ``reduction`` (``REDUCTIONS``): by default like ``nn.CrossEntropyLoss(weight=...)``,
sum_i w_{y_i} l_i / sum_i w_{y_i}, so the weights' scale cancels; a strategy entry's ``reduction:
batch_mean`` divides by the batch size instead (ltbench.strategies). ``SoftmaxBCE`` and ``SigmoidFocal``
reproduce reference code that divides by the batch size (times the classes), so their weights also
scale the gradient: see each."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ltbench.params import REDUCTIONS

# How a weighted loss averages over the batch's B samples (named in ltbench.params, which the dry run reads):
#   weighted_mean: sum_i w_{y_i} l_i / sum_i w_{y_i}  (PyTorch's CrossEntropyLoss(weight=); the default)
#   batch_mean:    sum_i w_{y_i} l_i / B              (Cui et al.'s class-balanced loss code)


def weighted_mean(per_sample: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum_i w_{y_i} l_i / sum_i w_{y_i}."""
    w = weight[targets]
    return (w * per_sample).sum() / w.sum()


def reduce(per_sample: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, reduction: str) -> torch.Tensor:
    """The batch loss of per-sample losses ``l_i`` by ``reduction`` (``REDUCTIONS``)."""
    if reduction == "batch_mean":
        return (weight[targets] * per_sample).sum() / len(targets)
    return weighted_mean(per_sample, targets, weight)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, reduction: str) -> torch.Tensor:
    """Weighted cross-entropy reduced by ``reduction``; the default is ``F.cross_entropy(weight=)`` itself."""
    if reduction == "batch_mean":
        return F.cross_entropy(logits, targets, weight=weight, reduction="sum") / len(targets)
    return F.cross_entropy(logits, targets, weight=weight)


class Reduced:
    """A loss that averages by ``reduction`` (``REDUCTIONS``). The default lives on the class, so that a
    loss at its default describes itself as before (``ltbench.training.provenance.describe`` lists instance attributes)."""

    reduction = "weighted_mean"

    def reduced(self, reduction: str) -> "Reduced":
        """A copy of this loss that averages by ``reduction``."""
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; known: {', '.join(REDUCTIONS)}")
        other = copy.copy(self)
        other.__dict__.pop("reduction", None)
        if reduction != Reduced.reduction:
            other.reduction = reduction
        return other


class CrossEntropy(Reduced):
    """l_i = -log softmax(z_i)_{y_i}."""

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, targets, weight, self.reduction)


def packed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
                         batch_mean: torch.Tensor | None = None) -> torch.Tensor:
    """``CrossEntropy`` of R runs in one call: logits R x B x C, targets R x B, per-run class weights
    R x C -> (R,), run r's loss sum_i w_{r,y_ri} l_ri / sum_i w_{r,y_ri} with l_ri = -log softmax(z_ri)_{y_ri},
    or sum_i w_{r,y_ri} l_ri / B for the runs where the boolean R-vector ``batch_mean`` is true."""
    nll = -F.log_softmax(logits, dim=2).gather(2, targets[..., None]).squeeze(2)
    w = weight.gather(1, targets)
    total = w.sum(1)
    if batch_mean is not None:
        total = torch.where(batch_mean, torch.full_like(total, targets.shape[1]), total)
    return (w * nll).sum(1) / total


class Focal(Reduced):
    """Focal loss (Lin et al. 2017): l_i = -(1 - p_i)^gamma log p_i, p_i = softmax(z_i)_{y_i}."""

    def __init__(self, gamma: float) -> None:
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        per_sample = -((1.0 - log_p.exp()).clamp_min(0.0) ** self.gamma) * log_p
        return reduce(per_sample, targets, weight, self.reduction)


def ldam_margins(class_counts: torch.Tensor, max_margin: float) -> torch.Tensor:
    """m_c = K / n_c^(1/4), with K chosen so that the largest margin is ``max_margin`` (Cao et al. 2019)."""
    raw = class_counts.double().pow(-0.25)
    return (raw * (max_margin / raw.max())).float()


class LDAM(Reduced):
    """LDAM loss on cosine logits: CE(s * (z - m_y e_y)), the target logit lowered by its class margin."""

    def __init__(self, margins: torch.Tensor, scale: float) -> None:
        self.margins, self.scale = margins, scale

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.margins.device != logits.device:  # once: keep the margins on the training device
            self.margins = self.margins.to(logits.device)
        margins = self.margins[targets]
        adjusted = logits - torch.zeros_like(logits).scatter_(1, targets[:, None], margins[:, None].to(logits.dtype))
        return cross_entropy(self.scale * adjusted, targets, weight, self.reduction)


def _weighted_terms(weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """w_{y_i} for every class term of sample i (B x 1, broadcast over the C classes)."""
    return weight[targets][:, None]


class SoftmaxBCE:
    """The class-balanced "softmax" loss of the CB-loss port that LTR-weight-balancing's stage 2 uses:
    p = softmax(z_i); l = (1 / (B C)) sum_i sum_c w_{y_i} BCE(p_c, [c = y_i]), with
    BCE(p, t) = -(t log p + (1 - t) log(1 - p)), each log clamped at -100 as PyTorch's
    ``binary_cross_entropy`` does. Its gradient is far smaller than cross-entropy's (the mean runs
    over B x C terms), which is what lets stage 2's weight decay of 0.1 balance the classifier."""

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        p = logits.float().softmax(dim=1)
        t = torch.zeros_like(p).scatter_(1, targets[:, None], 1.0)
        bce = -(t * p.log().clamp_min(-100.0) + (1 - t) * torch.log1p(-p).clamp_min(-100.0))
        return (_weighted_terms(weight, targets) * bce).mean()


class SigmoidFocal:
    """Cui et al. (2019)'s class-balanced focal loss: a sigmoid focal loss over all C classes,
    l = (1 / B) sum_i sum_c w_{y_i} (1 - p_ic)^gamma BCE(sigmoid(z_ic), [c = y_i]), with p_ic the
    probability of the correct binary answer; the modulator is computed as
    exp(-gamma (t z + log(1 + exp(-z)))) as in their code. Pair it with a head bias of
    -log(C - 1) (their initialisation) so that the first steps are not swamped by negatives."""

    def __init__(self, gamma: float) -> None:
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        z = logits.float()
        t = torch.zeros_like(z).scatter_(1, targets[:, None], 1.0)
        bce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
        modulator = torch.exp(-self.gamma * (t * z + F.softplus(-z)))
        return (_weighted_terms(weight, targets) * modulator * bce).sum() / len(targets)
