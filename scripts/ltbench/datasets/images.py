"""Images at the models' input size: S x S RGB uint8, whatever the file holds.

Resize-and-crop policy (torchvision's ``Resize(S)`` then ``CenterCrop(S)``, the usual evaluation
transform): an image that is already S x S is kept bit for bit; any other is scaled, keeping its
aspect ratio, until its shorter side is S (bilinear, antialiased when shrinking), and the longer
side is then cropped to S around the centre. Before that, the EXIF orientation of a photo is
applied, and grayscale, palette and RGBA images become RGB (an alpha channel is dropped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SIZE = 32  # the CIFAR size: the default input size of the models
# What PIL raises for a file that is not a readable image (unknown format, truncated, corrupt, too large).
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def fit(image: Image.Image, size: int) -> np.ndarray:
    """``image`` as a ``size`` x ``size`` x 3 uint8 array, by the policy above."""
    image = ImageOps.exif_transpose(image).convert("RGB")
    width, height = image.size
    if (width, height) != (size, size):
        scale = size / min(width, height)
        scaled = (max(size, round(width * scale)), max(size, round(height * scale)))
        image = image.resize(scaled, Image.Resampling.BILINEAR)
        left, top = (scaled[0] - size) // 2, (scaled[1] - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8)


def load(path: Path, size: int) -> np.ndarray:
    """Decode the image file ``path`` and fit it to ``size``; raises one of ``UNREADABLE`` if it cannot."""
    with Image.open(path) as image:
        return fit(image, size)


def fit_arrays(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 N x H x W x 3 images fitted to ``size`` (returned as they are when already that size)."""
    if images.shape[1:3] == (size, size):
        return images
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, image in enumerate(images):
        out[i] = fit(Image.fromarray(image), size)
    return out
