"""Datasets: read a source, cut the canonical long-tailed subset, write and read its cache.

Sources
- ``cifar10`` / ``cifar100``: torchvision's loaders on the official python files under the
  data root (downloaded there when ``download`` is on; torchvision verifies the md5 sums).
- ``imagefolder``: ``<path>/train/<class>/*`` and ``<path>/test/<class>/*``, classes in
  sorted order, files in name order, 32x32 RGB images.

Long tail (kaidic/LDAM-DRW ``IMBALANCECIFAR``): class i keeps
``int(n_max * (1/rho) ** (i / (C - 1)))`` images, n_max being the smallest per-class
count of the source (5000 for CIFAR-10, 500 for CIFAR-100), chosen per class, in label
order, as the first images of ``RandomState(seed).shuffle(indices of the class)``.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ltbench.io import atomic_path, write_json

FORMATS = ("cifar10", "cifar100", "imagefolder")
IMAGE_SHAPE = (32, 32, 3)


class DataError(ValueError):
    """The data is missing, corrupted, or cannot give the requested long tail."""


@dataclass
class Source:
    """A full (balanced) dataset in memory: uint8 NHWC images and int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]
    checksums: dict[str, str] = field(default_factory=dict)


def long_tail_counts(n_max: int, num_classes: int, ratio: float) -> list[int]:
    """n_i = int(n_max * (1/ratio)^(i/(C-1))) for i = 0..C-1."""
    if ratio < 1:
        raise DataError(f"imbalance ratio must be >= 1, got {ratio}")
    if num_classes < 2:
        raise DataError(f"a long tail needs at least 2 classes, got {num_classes}")
    return [int(n_max * (1.0 / ratio) ** (i / (num_classes - 1.0))) for i in range(num_classes)]


def long_tail_indices(labels: np.ndarray, counts: list[int], seed: int) -> np.ndarray:
    """Indices of the subset: per class in label order, the first ``counts[c]`` of a seeded shuffle."""
    rng = np.random.RandomState(seed)
    chosen = []
    for cls, count in enumerate(counts):
        idx = np.flatnonzero(labels == cls)
        if len(idx) < count:
            raise DataError(f"class {cls} has {len(idx)} training images; the long tail needs {count}")
        rng.shuffle(idx)
        chosen.append(idx[:count])
    return np.concatenate(chosen).astype(np.int64)


def load_source(fmt: str, location: str, download: bool = False) -> Source:
    """Read the full dataset of format ``fmt`` from ``location`` (data root or image-folder path)."""
    if fmt in ("cifar10", "cifar100"):
        return _load_torchvision_cifar(fmt, location, download)
    if fmt == "imagefolder":
        return _load_image_folder(Path(location))
    raise DataError(f"unknown dataset format {fmt!r}; known: {', '.join(FORMATS)}")


def _torchvision_class(fmt: str):
    from torchvision import datasets

    return datasets.CIFAR10 if fmt == "cifar10" else datasets.CIFAR100


def _cifar_checksums(fmt: str, root: Path) -> dict[str, str]:
    """md5 of each official file, checked against torchvision's list; ``DataError`` names a missing or wrong file."""
    cls = _torchvision_class(fmt)
    folder = root / cls.base_folder
    sums = {}
    for name, expected in cls.train_list + cls.test_list + [(cls.meta["filename"], cls.meta["md5"])]:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{fmt}: {path} does not exist (download is off; set data.download: true or fix data.root)")
        sums[name] = hashlib.md5(path.read_bytes()).hexdigest()
        if sums[name] != expected:
            raise DataError(f"{fmt}: checksum mismatch for {path}: md5 {sums[name]}, expected {expected}")
    return sums


def _load_torchvision_cifar(fmt: str, root: str, download: bool) -> Source:
    """Load CIFAR through torchvision (which downloads and md5-checks the official files)."""
    cls = _torchvision_class(fmt)
    root_path = Path(root)
    checksums = None if download else _cifar_checksums(fmt, root_path)  # clear errors before torchvision's
    try:
        train = cls(str(root_path), train=True, download=download)
        test = cls(str(root_path), train=False, download=download)
    except Exception as exc:  # torchvision raises RuntimeError / URLError
        raise DataError(f"{fmt}: torchvision could not load or download the data under {root}: {exc}") from exc
    checksums = checksums or _cifar_checksums(fmt, root_path)
    return Source(
        train.data, np.asarray(train.targets, np.int64), test.data, np.asarray(test.targets, np.int64),
        list(train.classes), checksums,
    )


def _read_split(folder: Path, classes: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``folder/<class>/*`` as uint8 NHWC images; the class list must match ``classes`` if given."""
    from PIL import Image

    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if classes is not None and found != classes:
        raise DataError(f"{folder} has classes {found}, expected the training classes {classes}")
    files, labels = [], []
    for label, name in enumerate(found):
        members = sorted(p for p in (folder / name).iterdir() if p.is_file())
        if not members:
            raise DataError(f"image folder class {folder / name} is empty")
        files += members
        labels += [label] * len(members)
    if not files:
        raise DataError(f"image folder {folder} has no class folders")

    def read(path: Path) -> np.ndarray:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"))
        if arr.shape != IMAGE_SHAPE:
            raise DataError(f"{path} is {arr.shape[1]}x{arr.shape[0]}; images must be 32x32")
        return arr

    with ThreadPoolExecutor(max_workers=8) as pool:
        images = np.stack(list(pool.map(read, files, chunksize=256)))
    return images, np.asarray(labels, np.int64), found


def _load_image_folder(path: Path) -> Source:
    """Load ``path/train`` and ``path/test`` image-folder trees."""
    train_x, train_y, classes = _read_split(path / "train", None)
    test_x, test_y, _ = _read_split(path / "test", classes)
    return Source(train_x, train_y, test_x, test_y, classes)


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


def materialize(
    fmt: str, location: str, ratio: float, seed: int, index_path: str, cache_path: str, download: bool = False
) -> dict[str, Any]:
    """Write the long-tail index (JSON) and the uint8 tensor cache (.npz); return the index.

    Normalisation statistics come from the full source training set.
    """
    source = load_source(fmt, location, download)
    num_classes = len(source.classes)
    per_class = np.bincount(source.train_y, minlength=num_classes)
    n_max = int(per_class.min())
    counts = long_tail_counts(n_max, num_classes, ratio)
    if min(counts) < 1:
        raise DataError(
            f"imbalance ratio {ratio} leaves class {counts.index(min(counts))} with no images"
            f" (n_max = {n_max}); this data allows a ratio of at most {n_max}"
        )
    indices = long_tail_indices(source.train_y, counts, seed)
    train_x, train_y = source.train_x[indices], source.train_y[indices]
    mean, std = channel_stats(source.train_x)
    index = {
        "format": fmt,
        "location": str(location),
        "imbalance_ratio": ratio,
        "subset_seed": seed,
        "n_max": n_max,
        "num_classes": num_classes,
        "classes": source.classes,
        "class_counts": counts,
        "num_train": int(len(indices)),
        "num_test": int(len(source.test_y)),
        "mean": mean,
        "std": std,
        "checksums": {
            "source_files_md5": source.checksums,
            "source_train_pixels_sha1": pixel_sha1(source.train_x),
            "source_test_pixels_sha1": pixel_sha1(source.test_x),
            "subset_train_pixels_sha1": pixel_sha1(train_x),
        },
        "indices": indices.tolist(),
    }
    with atomic_path(cache_path, suffix=".npz") as tmp:
        np.savez(tmp, train_x=train_x, train_y=train_y, test_x=source.test_x, test_y=source.test_y)
    write_json(index_path, index)
    return index


def load_cache(cache_path: str) -> dict[str, np.ndarray]:
    """The cached arrays: ``train_x``, ``train_y``, ``test_x``, ``test_y`` (uint8 NHWC / int64)."""
    with np.load(cache_path) as cache:
        return {key: cache[key] for key in ("train_x", "train_y", "test_x", "test_y")}
