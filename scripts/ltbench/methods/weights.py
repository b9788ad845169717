"""Class-weight formulas shared by strategies. ``counts`` is a float64 tensor of n_c."""

from __future__ import annotations

import torch


def inverse_frequency(counts: torch.Tensor) -> torch.Tensor:
    """w_c = N / (C * n_c)."""
    return counts.sum() / (len(counts) * counts)


def sqrt_inverse(counts: torch.Tensor) -> torch.Tensor:
    """w_c = 1 / sqrt(n_c)."""
    return counts.rsqrt()


def effective_number(counts: torch.Tensor, beta: float) -> torch.Tensor:
    """Cui et al. (2019): w_c = (1 - beta) / (1 - beta^n_c), rescaled so that sum_c w_c = C; beta in [0, 1)."""
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    weights = (1.0 - beta) / (1.0 - beta**counts)
    return weights * len(counts) / weights.sum()


def log_prior(counts: torch.Tensor) -> torch.Tensor:
    """log(n_c / N): the log of the training label distribution."""
    return torch.log(counts / counts.sum())
