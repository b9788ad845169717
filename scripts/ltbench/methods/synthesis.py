"""Minority-sample synthesis by distribution matching, in feature space (our reading of
Li et al., TMLR 2025; docs/methods.md says what is ours and why).

Every training step (from the defer epoch on):
1. the batch's features (detached) enter a per-class FIFO bank of the last ``bank_size``;
2. M = batch-size synthetic labels are drawn with probability proportional to the class's
   deficit n_max - n_c, so real plus synthetic labels are balanced in expectation;
3. each synthetic feature starts as mu_c + tau * (f_h - mu_{y_h}): the class's bank mean plus
   the scaled deviation of a random batch sample h of a larger class from its own class mean
   (head classes lend their within-class variation);
4. ``steps`` times, an entropic optimal-transport plan P between the class's synthetic set S
   and its bank R (cost |s - r|^2 over its mean, entropy ``epsilon``, Sinkhorn with exactly
   ``sinkhorn_iters`` iterations, uniform marginals) is computed, and each s_i takes a gradient
   step of size ``step`` on sum_ij P_ij |s_i - r_j|^2 (per-sample normalised):
   s_i <- s_i - step * 2 * (s_i - sum_j P_ij r_j / sum_j P_ij);
5. the loss is lambda1 * (real loss) + lambda2 * CE(classifier(S), labels); S is detached, so
   the synthetic term trains the classifier only.

Nothing here makes the host wait for the device: shapes are fixed by the batch and the banks,
and decisions on device values (is there a deficit at all?) are ``torch.where`` selections.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F

NEG = torch.finfo(torch.float32).min  # log of (practically) zero mass


def segment_logsumexp(x: torch.Tensor, groups: torch.Tensor, num_groups: int) -> torch.Tensor:
    """out[g, k] = log sum_{i: groups[i] = g} exp(x[i, k]) for x (M x K); very negative where group g has no rows."""
    top = torch.full((num_groups, x.shape[1]), NEG, dtype=x.dtype, device=x.device)
    top = top.scatter_reduce(0, groups[:, None].expand_as(x), x, "amax", include_self=True)
    total = torch.zeros_like(top).index_add_(0, groups, (x - top[groups]).exp())
    return top + total.clamp_min(torch.finfo(x.dtype).tiny).log()


def sinkhorn_step(kernel: torch.Tensor, f: torch.Tensor, g: torch.Tensor, groups: torch.Tensor, valid: torch.Tensor,
                  log_a: torch.Tensor, log_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One log-domain Sinkhorn iteration: f = log a - LSE_k(kernel + g[groups]), then per problem
    g = log b - LSE_{rows of the problem}(kernel + f) on its valid columns (0 elsewhere)."""
    f = log_a - torch.logsumexp(kernel + g[groups], dim=1)
    g = torch.where(valid, log_b - segment_logsumexp(kernel + f[:, None], groups, valid.shape[0]), 0.0)
    return f, g


_compiled: dict[str, Any] = {}


def step_for(device: torch.device):
    """``sinkhorn_step`` as it runs on ``device``: compiled on CUDA (fixed shapes; its ~20 small
    operators per iteration fused into a few kernels, where eagerly 5 x 200 iterations a training step
    are launch-bound), eager elsewhere (CPU runs stay bit for bit). Falls back to eager, once and
    with a warning, if compiling fails."""
    if device.type != "cuda" or _compiled.get("failed"):
        return sinkhorn_step
    if "step" not in _compiled:
        _compiled["step"] = torch.compile(sinkhorn_step, dynamic=False)
    return _compiled["step"]


def sinkhorn(cost: torch.Tensor, groups: torch.Tensor, valid: torch.Tensor, epsilon: float, iters: int,
             step=None) -> torch.Tensor:
    """Entropic OT plans of G problems at once. Row i (of M) belongs to problem ``groups[i]``; ``cost``
    (M x K) is its cost to the K columns of its problem, of which ``valid`` (G x K) marks the real
    ones. Each problem has uniform marginals over its rows and over its valid columns. Log-domain
    Sinkhorn for exactly ``iters`` iterations of ``step`` (default: ``step_for`` the device): an early
    stop would make the host read a convergence test, a synchronisation. Returns the plans (M x K),
    zero on invalid columns."""
    num_groups = valid.shape[0]
    ones = torch.ones(len(groups), dtype=cost.dtype, device=cost.device)
    rows = torch.zeros(num_groups, dtype=cost.dtype, device=cost.device).index_add_(0, groups, ones)
    log_a = -rows.clamp_min(1).log()[groups]  # M
    log_b = -valid.sum(1, keepdim=True).clamp_min(1).to(cost.dtype).log()  # G x 1
    mask = valid[groups]
    kernel = torch.where(mask, -cost / epsilon, NEG)
    f = torch.zeros_like(log_a)
    g = torch.zeros(valid.shape, dtype=cost.dtype, device=cost.device)
    step = step or step_for(cost.device)
    for i in range(iters):
        try:
            f, g = step(kernel, f, g, groups, valid, log_a, log_b)
        except Exception as exc:  # a compiler failure on the first call: train on, eagerly
            if i or step is sinkhorn_step:
                raise
            warnings.warn(f"minority synthesis: compiling the Sinkhorn step failed ({type(exc).__name__}: {exc});"
                          " it runs eagerly")
            _compiled["failed"] = True
            step = sinkhorn_step
            f, g = step(kernel, f, g, groups, valid, log_a, log_b)
    return torch.where(mask, (kernel + f[:, None] + g[groups]).exp(), 0.0)


class MinoritySynthesizer:
    """Feature banks, synthesis and the combined loss (see the module docstring)."""

    def __init__(self, class_counts: torch.Tensor, defer_epoch: int, *, bank_size: int, tau: float, steps: int,
                 step: float, epsilon: float, sinkhorn_iters: int, lambda1: float, lambda2: float) -> None:
        """The settings are ``minority_synthesis``'s parameters (defaults: its ``PARAMS``)."""
        self.counts = class_counts.float()
        self.params = dict(defer_epoch=defer_epoch, bank_size=bank_size, tau=tau, steps=steps, step=step,
                           epsilon=epsilon, sinkhorn_iters=sinkhorn_iters, lambda1=lambda1, lambda2=lambda2)
        for name, value in self.params.items():
            setattr(self, name, value)
        self.bank = self.filled = self.ptr = None

    def describe(self) -> str:
        """The configuration, for run descriptions (not the banks)."""
        return f"MinoritySynthesizer({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    def state_dict(self) -> dict[str, Any]:
        """The banks, for checkpoints."""
        return {"bank": self.bank, "filled": self.filled, "ptr": self.ptr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the banks saved by ``state_dict``."""
        self.bank, self.filled, self.ptr = state["bank"], state["filled"], state["ptr"]

    def observe(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        """Push detached features into their classes' FIFO banks."""
        num_classes, device = len(self.counts), features.device
        if self.bank is None:
            self.bank = torch.zeros(num_classes, self.bank_size, features.shape[1], device=device)
            self.filled = torch.zeros(num_classes, dtype=torch.long, device=device)
            self.ptr = torch.zeros(num_classes, dtype=torch.long, device=device)
        onehot = (targets[:, None] == torch.arange(num_classes, device=device)).long()
        rank = (onehot.cumsum(0) - 1).gather(1, targets[:, None]).squeeze(1)  # position within its class
        slot = (self.ptr[targets] + rank) % self.bank_size
        self.bank[targets, slot] = features.detach().float()
        per_class = onehot.sum(0)
        self.ptr = (self.ptr + per_class) % self.bank_size
        self.filled = torch.clamp(self.filled + per_class, max=self.bank_size)

    def means(self) -> torch.Tensor:
        """mu_c: mean of each class's filled bank slots (zeros where empty)."""
        mask = torch.arange(self.bank_size, device=self.bank.device)[None, :] < self.filled[:, None]
        return (self.bank * mask[:, :, None]).sum(1) / self.filled.clamp_min(1)[:, None]

    def deficit(self, device: torch.device) -> torch.Tensor:
        """n_max - n_c for classes with a non-empty bank, 0 elsewhere (the counts move to ``device`` once)."""
        if self.counts.device != device:
            self.counts = self.counts.to(device)
        return (self.counts.max() - self.counts) * (self.filled > 0)

    def synthesize(self, features: torch.Tensor, targets: torch.Tensor, generator: torch.Generator):
        """Synthetic features and labels for one batch (steps 2-4 of the module docstring). Without any
        deficit the labels are drawn uniformly (the caller then ignores them): no branch on device values."""
        deficit = self.deficit(features.device)
        weights = torch.where(deficit.sum() > 0, deficit, torch.ones_like(deficit))
        labels = torch.multinomial(weights, len(targets), replacement=True, generator=generator)
        donors_allowed = (self.counts[targets][None, :] > self.counts[labels][:, None]).float()
        donors_allowed = torch.where(donors_allowed.sum(1, keepdim=True) > 0, donors_allowed, 1.0)
        donors = torch.multinomial(donors_allowed, 1, generator=generator).squeeze(1)
        mu = self.means()
        synthetic = mu[labels] + self.tau * (features[donors].detach().float() - mu[targets[donors]])
        return self.match(synthetic, labels), labels

    def match(self, synthetic: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``steps`` OT gradient steps pulling each class's synthetic set towards its bank; each
        class's costs are divided by their mean over its (synthetic, filled slot) pairs."""
        num_classes = len(self.counts)
        bank = self.bank[labels]  # M x bank_size x d: each sample's own class bank
        valid = torch.arange(self.bank_size, device=bank.device)[None, :] < self.filled[:, None]
        rows = torch.zeros(num_classes, device=bank.device).index_add_(0, labels, torch.ones_like(labels, dtype=bank.dtype))
        pairs = (rows * valid.sum(1)).clamp_min(1)
        for _ in range(self.steps):
            cost = (synthetic[:, None, :] - bank).square().sum(2)
            total = torch.zeros(num_classes, device=bank.device).index_add_(0, labels, (cost * valid[labels]).sum(1))
            scale = (total / pairs).clamp_min(1e-12)[labels]
            plan = sinkhorn(cost / scale[:, None], labels, valid, self.epsilon, self.sinkhorn_iters)
            target = (plan[:, :, None] * bank).sum(1) / plan.sum(1, keepdim=True).clamp_min(1e-12)
            synthetic = synthetic - self.step * 2.0 * (synthetic - target)
        return synthetic

    def __call__(self, epoch: int, features: torch.Tensor, targets: torch.Tensor, classifier, real_loss: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
        """The training loss of one batch: the real loss alone before ``defer_epoch``, else step 5."""
        self.observe(features, targets)
        if epoch < self.defer_epoch:
            return real_loss
        synthetic, labels = self.synthesize(features, targets, generator)
        fake_loss = F.cross_entropy(classifier(synthetic.to(features.dtype)).float(), labels)
        active = self.deficit(features.device).sum() > 0  # some class with a bank lacks images
        return torch.where(active, self.lambda1 * real_loss + self.lambda2 * fake_loss, real_loss)

