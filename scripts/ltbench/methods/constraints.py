"""Weight constraints applied after optimizer steps."""

from __future__ import annotations

import torch


class MaxNorm:
    """Per-class MaxNorm by projected gradient descent (Alshammari et al., CVPR 2022).

    The radius is fixed from the initial classifier rows w_c (one per class):
    r = min_c |w_c| + thresh * (max_c |w_c| - min_c |w_c|); each row longer than r is
    scaled back onto the ball, w_c <- w_c * min(1, r / |w_c|). The trainer projects after
    every epoch, as ShadeAlsha/LTR-weight-balancing does; the bias is not constrained.
    """

    def __init__(self, weight: torch.Tensor, thresh: float) -> None:
        norms = weight.detach().norm(dim=1)
        self.radius = float(norms.min() + thresh * (norms.max() - norms.min()))

    @torch.no_grad()
    def project(self, weight: torch.Tensor) -> None:
        """Scale rows of ``weight`` (C x d) with norm above the radius onto it, in place."""
        norms = weight.norm(dim=1, keepdim=True)
        weight.mul_(torch.clamp(self.radius / norms.clamp_min(1e-12), max=1.0))
