"""Batched on-device augmentation, equivalent in distribution to torchvision's
``RandomCrop(S, padding=4)`` (zero padding, offsets uniform in [0, 2*padding])
followed by ``RandomHorizontalFlip(p=0.5)``, applied to uint8 NCHW batches. The crop keeps
each image's own H x W (S = 32 for CIFAR, a dataset's ``image_size`` otherwise)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_offsets(n: int, padding: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n, 2) int64 offsets (top, left) into the padded image, each uniform in [0, 2*padding]."""
    return torch.randint(0, 2 * padding + 1, (n, 2), generator=generator, device=device)


def crop(images: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-pad ``images`` (N, C, H, W) by ``padding`` and cut the H x W window at ``offsets``."""
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = (offsets[:, 0, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (offsets[:, 1, None] + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    chans = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def flip_mask(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n,) booleans, each True with probability 1/2."""
    return torch.rand(n, generator=generator, device=device) < 0.5


def flip(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the images selected by ``mask`` left-right."""
    return torch.where(mask[:, None, None, None], images.flip(3), images)


def augment(images: torch.Tensor, padding: int, do_flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop with ``padding`` (0 disables it) then, if ``do_flip``, a random horizontal flip."""
    n, device = images.shape[0], images.device
    if padding > 0:
        images = crop(images, crop_offsets(n, padding, generator, device), padding)
    if do_flip:
        images = flip(images, flip_mask(n, generator, device))
    return images


def augment_runs(images: torch.Tensor, padding: int, do_flip: bool, generators: list[torch.Generator]) -> torch.Tensor:
    """``augment`` of R runs' batches (R x B x C x H x W), run r drawing from ``generators[r]`` in ``augment``'s
    order (crop offsets, then flips), so each run's images equal those it would get alone; the crop and
    the flip then run once for all R x B images."""
    runs, n, device = images.shape[0], images.shape[1], images.device
    flat = images.flatten(0, 1)
    if padding > 0:
        flat = crop(flat, torch.cat([crop_offsets(n, padding, g, device) for g in generators]), padding)
    if do_flip:
        flat = flip(flat, torch.cat([flip_mask(n, g, device) for g in generators]))
    return flat.unflatten(0, (runs, n))


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float, scaled to [0, 1] then standardised per channel."""
    return (images.float().div_(255.0) - mean[:, None, None]) / std[:, None, None]
