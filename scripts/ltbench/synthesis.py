"""Minority-sample synthesis by distribution matching, in feature space (our reading of
Li et al., TMLR 2025; docs/methods.md says what is ours and why).

Every training step (from the start epoch on):
1. the batch's features (detached) enter a per-class FIFO bank of the last ``bank_size``;
2. M = batch-size synthetic labels are drawn with probability proportional to the class's
   deficit n_max - n_c, so real plus synthetic labels are balanced in expectation;
3. each synthetic feature starts as mu_c + tau * (f_h - mu_{y_h}): the class's bank mean plus
   the scaled deviation of a random batch sample h of a larger class from its own class mean
   (head classes lend their within-class variation);
4. ``steps`` times, an entropic optimal-transport plan P between the class's synthetic set S
   and its bank R (cost |s - r|^2 over its mean, entropy ``epsilon``, Sinkhorn with at most
   ``sinkhorn_iters`` iterations, uniform marginals) is computed, and each s_i takes a gradient
   step of size ``step`` on sum_ij P_ij |s_i - r_j|^2 (per-sample normalised):
   s_i <- s_i - step * 2 * (s_i - sum_j P_ij r_j / sum_j P_ij);
5. the loss is lambda1 * (real loss) + lambda2 * CE(classifier(S), labels); S is detached, so
   the synthetic term trains the classifier only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def sinkhorn(cost: torch.Tensor, mask_rows: torch.Tensor, mask_cols: torch.Tensor, epsilon: float,
             iters: int, tol: float = 1e-6) -> torch.Tensor:
    """Entropic OT plans for a batch of problems (G x n x m costs) with uniform marginals over the
    unmasked rows and columns; log-domain Sinkhorn, stopping early once the row marginals are
    within ``tol``. Masked entries get zero mass."""
    neg_inf = torch.finfo(cost.dtype).min
    n = mask_rows.sum(1, keepdim=True).clamp_min(1)
    m = mask_cols.sum(1, keepdim=True).clamp_min(1)
    log_a = torch.where(mask_rows, -torch.log(n), torch.full_like(mask_rows, neg_inf, dtype=cost.dtype))
    log_b = torch.where(mask_cols, -torch.log(m), torch.full_like(mask_cols, neg_inf, dtype=cost.dtype))
    valid = mask_rows[:, :, None] & mask_cols[:, None, :]
    kernel = torch.where(valid, -cost / epsilon, torch.full_like(cost, neg_inf))
    f = torch.zeros_like(log_a)
    g = torch.zeros_like(log_b)
    for i in range(iters):
        f = log_a - torch.logsumexp(kernel + g[:, None, :], dim=2)
        f = torch.where(mask_rows, f, torch.zeros_like(f))
        g = log_b - torch.logsumexp(kernel + f[:, :, None], dim=1)
        g = torch.where(mask_cols, g, torch.zeros_like(g))
        if i % 10 == 9:
            rows = torch.logsumexp(kernel + f[:, :, None] + g[:, None, :], dim=2).exp()
            if ((rows - log_a.exp()).abs() * mask_rows).max() < tol:
                break
    return torch.where(valid, (kernel + f[:, :, None] + g[:, None, :]).exp(), torch.zeros_like(cost))


class MinoritySynthesizer:
    """Feature banks, synthesis and the combined loss (see the module docstring)."""

    def __init__(self, class_counts: torch.Tensor, start_epoch: int, bank_size: int = 64, tau: float = 0.9,
                 steps: int = 5, step: float = 0.1, epsilon: float = 0.1, sinkhorn_iters: int = 200,
                 lambda1: float = 0.5, lambda2: float = 0.5) -> None:
        self.counts = class_counts.float()
        self.params = dict(start_epoch=start_epoch, bank_size=bank_size, tau=tau, steps=steps, step=step,
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
        onehot = F.one_hot(targets, num_classes)
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

    def synthesize(self, features: torch.Tensor, targets: torch.Tensor, generator: torch.Generator):
        """Synthetic features and labels for one batch (steps 2-4 of the module docstring)."""
        counts = self.counts.to(features.device)
        deficit = (counts.max() - counts) * (self.filled > 0)
        if deficit.sum() <= 0:
            return None, None
        labels = torch.multinomial(deficit, len(targets), replacement=True, generator=generator)
        donors_allowed = (counts[targets][None, :] > counts[labels][:, None]).float()
        donors_allowed[donors_allowed.sum(1) == 0] = 1.0
        donors = torch.multinomial(donors_allowed, 1, generator=generator).squeeze(1)
        mu = self.means()
        synthetic = mu[labels] + self.tau * (features[donors].detach().float() - mu[targets[donors]])
        return self.match(synthetic, labels), labels

    def match(self, synthetic: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``steps`` OT gradient steps pulling each class's synthetic set towards its bank."""
        classes, group = torch.unique(labels, return_inverse=True)
        sizes = torch.bincount(group)
        order = torch.argsort(group, stable=True)
        slot = torch.arange(len(labels), device=labels.device) - (torch.cumsum(sizes, 0) - sizes)[group[order]]
        padded = torch.zeros(len(classes), int(sizes.max()), synthetic.shape[1], device=synthetic.device)
        rows = torch.zeros(len(classes), padded.shape[1], dtype=torch.bool, device=synthetic.device)
        padded[group[order], slot] = synthetic[order]
        rows[group[order], slot] = True
        bank = self.bank[classes]
        cols = torch.arange(self.bank_size, device=bank.device)[None, :] < self.filled[classes][:, None]
        for _ in range(self.steps):
            cost = torch.cdist(padded, bank).square()
            scale = (cost * (rows[:, :, None] & cols[:, None, :])).sum((1, 2), keepdim=True) / (
                rows.sum(1) * cols.sum(1)).clamp_min(1)[:, None, None]
            plan = sinkhorn(cost / scale.clamp_min(1e-12), rows, cols, self.epsilon, self.sinkhorn_iters)
            target = plan @ bank / plan.sum(2, keepdim=True).clamp_min(1e-12)
            padded = padded - self.step * 2.0 * (padded - target) * rows[:, :, None]
        out = torch.empty_like(synthetic)
        out[order] = padded[group[order], slot]
        return out

    def __call__(self, epoch: int, features: torch.Tensor, targets: torch.Tensor, classifier, real_loss: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
        """The training loss of one batch: the real loss alone before ``start_epoch``, else step 5."""
        self.observe(features, targets)
        if epoch < self.start_epoch:
            return real_loss
        synthetic, labels = self.synthesize(features, targets, generator)
        if synthetic is None:
            return real_loss
        fake_loss = F.cross_entropy(classifier(synthetic.to(features.dtype)).float(), labels)
        return self.lambda1 * real_loss + self.lambda2 * fake_loss

