"""Datasets: read a source, cut its training subset, check it fits, write and read its cache.

Sources (formats, layouts, decoding: ``ltbench.datasets.sources``) are brought to the dataset's
``image_size``; one without a test split gets a seeded stratified split (``ltbench.datasets.splits``).

Training subset, by the benchmark's imbalance ratio rho:
- a number (canonical long tail, kaidic/LDAM-DRW ``IMBALANCECIFAR``): class i keeps
  ``int(n_max * (1/rho) ** (i / (C - 1)))`` images, n_max being the smallest per-class count
  of the source (5000 for CIFAR-10, 500 for CIFAR-100), chosen per class, in label order, as
  the first images of ``RandomState(seed).shuffle(indices of the class)``;
- ``natural``: every training image, the counts (and the ratio max/min) being what the data has.

Validation (optional, ``validation_per_class`` k): up to k held-out source training images per class
for model selection without the test set, first from the images the subset leaves unused; with
``validation_from_subset`` a class short of spares gives the rest from its subset images, which
changes the subset (``ltbench.datasets.splits.validation_split``). Off by default: the canonical subsets
stay exactly the published ones.

The cache (training subset and test set, uint8 N x S x S x 3) is loaded whole onto the
training device, so materialization stops before decoding anything when its size,
N * S * S * 3 bytes, exceeds a limit (by default half the memory of the GPU seen at
materialization, or of the host without one).
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ltbench.config import NATURAL
from ltbench.datasets.images import IMAGE_SIZE
from ltbench.io import atomic_path, file_sha256, write_json
from ltbench.datasets.sources import FORMATS, DataError, Source, load_source  # noqa: F401 (the data API)
from ltbench.datasets.splits import ensure_test_split, per_class_sample, validation_split

GB = 1e9


def long_tail_counts(n_max: int, num_classes: int, ratio: float) -> list[int]:
    """n_i = int(n_max * (1/ratio)^(i/(C-1))) for i = 0..C-1."""
    if ratio < 1:
        raise DataError(f"imbalance ratio must be >= 1, got {ratio}")
    if num_classes < 2:
        raise DataError(f"a long tail needs at least 2 classes, got {num_classes}")
    return [int(n_max * (1.0 / ratio) ** (i / (num_classes - 1.0))) for i in range(num_classes)]


def long_tail_indices(labels: np.ndarray, counts: list[int], seed: int) -> np.ndarray:
    """Indices of the subset: per class in label order, the first ``counts[c]`` of a seeded shuffle."""
    for cls, count in enumerate(counts):
        if (have := int(np.sum(labels == cls))) < count:
            raise DataError(f"class {cls} has {have} training images; the long tail needs {count}")
    return per_class_sample(labels, counts, seed)


def pixel_sha1(images: np.ndarray) -> str:
    """sha1 of uint8 NHWC pixels in order (the fingerprint shared/data's README quotes)."""
    return hashlib.sha1(np.ascontiguousarray(images, dtype=np.uint8).tobytes()).hexdigest()


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (population) of uint8 NHWC images scaled to [0, 1], in chunks."""
    total = np.zeros(images.shape[-1])
    squares = np.zeros(images.shape[-1])
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
        total += part.sum(0)
        squares += (part * part).sum(0)
    count = images.size // images.shape[-1]
    mean = total / count
    return mean.tolist(), np.sqrt(squares / count - mean * mean).tolist()


def training_subset(labels: np.ndarray, num_classes: int, ratio: float | str, seed: int) -> tuple[np.ndarray, int]:
    """Indices of the training subset for imbalance ratio ``ratio`` (a number, or ``natural``), and n_max."""
    per_class = np.bincount(labels, minlength=num_classes)
    if ratio == NATURAL:
        return np.arange(len(labels), dtype=np.int64), int(per_class.max())
    n_max = int(per_class.min())
    counts = long_tail_counts(n_max, num_classes, ratio)
    if min(counts) < 1:
        raise DataError(
            f"imbalance ratio {ratio} leaves class {counts.index(min(counts))} with no images"
            f" (n_max = {n_max}); this data allows a ratio of at most {n_max}"
        )
    return long_tail_indices(labels, counts, seed), n_max


def check_classes(source: Source) -> None:
    """``DataError`` unless there are 2 classes or more, each with training and test images."""
    if len(source.classes) < 2:
        raise DataError(f"{source.location}: {len(source.classes)} class(es); a classifier needs at least 2")
    for split, items in (("training", source.train), ("test", source.test)):
        present = np.bincount(items.labels, minlength=len(source.classes))
        for name, count in zip(source.classes, present):
            if count == 0:
                raise DataError(f"{source.location}: class {name!r} has no {split} image")


def device_memory() -> int:
    """Bytes of memory of the first visible GPU, or of the host when there is none."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_cache_size(num_images: int, image_size: int, limit_gb: float | None, location: str) -> None:
    """``DataError`` if ``num_images`` uint8 S x S x 3 images exceed ``limit_gb`` (None: half of ``device_memory``)."""
    need = num_images * image_size * image_size * 3
    if limit_gb is not None:
        limit, origin = limit_gb * GB, "data.cache_limit_gb"
    else:
        limit, origin = device_memory() / 2, "half of this machine's GPU or host memory; data.cache_limit_gb sets it"
    if need <= limit:
        return
    fits = math.isqrt(int(limit) // (3 * num_images))
    raise DataError(
        f"{location}: {num_images:,} images of {image_size}x{image_size} make a {need / GB:.2f} GB training cache,"
        f" which training holds whole in device memory; the limit is {limit / GB:.2f} GB ({origin})."
        f" Set a smaller image_size in this dataset's entry (at most {fits} fits), or use fewer images."
    )


def materialize(
    fmt: str, location: str, ratio: float | str, seed: int, index_path: str, cache_path: str, download: bool = False,
    *, image_size: int = IMAGE_SIZE, test_fraction: float | None = None, test_per_class: int | None = None,
    cache_limit_gb: float | None = None, validation_per_class: int = 0, validation_from_subset: bool = False,
) -> dict[str, Any]:
    """Write the subset's index (JSON) and uint8 cache (.npz), both or neither; return the index.

    Every check (layout, classes, split, ratio, cache size) runs before any image is decoded.
    Normalisation statistics come from the full source training set.
    """
    source, split = ensure_test_split(load_source(fmt, location, download, image_size), seed, test_fraction,
                                      test_per_class)
    check_classes(source)
    indices, n_max = training_subset(source.train.labels, len(source.classes), ratio, seed)
    validation, held = np.zeros(0, dtype=np.int64), None
    if validation_per_class:
        validation, indices, held = validation_split(source.train.labels, indices, validation_per_class, seed,
                                                     validation_from_subset, source.classes)
    check_cache_size(len(indices) + len(validation) + len(source.test), image_size, cache_limit_gb, str(location))
    source_x, test_x = source.train.pixels(), source.test.pixels()
    train_x = source_x if ratio == NATURAL and held is None else source_x[indices]
    train_y, test_y = source.train.labels[indices], source.test.labels
    arrays = {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}
    if held is not None:
        arrays.update(val_x=source_x[validation], val_y=source.train.labels[validation])
    counts = np.bincount(train_y, minlength=len(source.classes)).tolist()
    mean, std = channel_stats(source_x)
    index = {
        "format": fmt,
        "location": str(location),
        "imbalance_ratio": ratio,
        "actual_imbalance_ratio": max(counts) / min(counts),
        "subset_seed": seed,
        "image_size": image_size,
        "n_max": n_max,
        "num_classes": len(source.classes),
        "classes": source.classes,
        "class_counts": counts,
        "num_train": int(len(indices)),
        "num_test": int(len(test_y)),
        "mean": mean,
        "std": std,
        "checksums": {
            "source_files_md5": source.checksums,
            "source_train_pixels_sha1": pixel_sha1(source_x),
            "source_test_pixels_sha1": pixel_sha1(test_x),
            "subset_train_pixels_sha1": pixel_sha1(train_x),
        },
        "split": split,
        "validation": None if held is None else {**held, "indices": validation.tolist()},
        "indices": indices.tolist(),
    }
    with atomic_path(cache_path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
        index["checksums"]["cache_sha256"] = file_sha256(tmp)
    write_json(index_path, index)
    return index


def load_cache(cache_path: str, index: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The cached arrays: ``train_x``, ``train_y``, ``test_x``, ``test_y`` (uint8 NHWC / int64), and
    ``val_x``, ``val_y`` when the subset holds out a validation set.

    With the subset's ``index``, the file is first checked against the checksum recorded when it was
    written; a truncated, changed or unreadable cache is a ``DataError`` naming the file and the fix.
    """
    fix = (f"delete {Path(cache_path).parent} and run the workflow again (or python scripts/materialize.py"
           " for the dataset and ratio) to rebuild it")
    expected = (index or {}).get("checksums", {}).get("cache_sha256")
    if expected and file_sha256(cache_path) != expected:
        raise DataError(f"{cache_path} does not match the checksum its index recorded (truncated or changed"
                        f" since it was written): {fix}")
    try:
        with np.load(cache_path) as cache:
            return {key: cache[key] for key in ("train_x", "train_y", "test_x", "test_y", "val_x", "val_y")
                    if key in cache.files or not key.startswith("val_")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{cache_path} cannot be read ({type(exc).__name__}: {exc}): {fix}") from None
