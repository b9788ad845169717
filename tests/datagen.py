"""Tiny datasets in the real on-disk formats, written by the tests."""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
from pathlib import Path

import numpy as np


def class_images(
    rng: np.random.Generator, label: int, count: int, shape: tuple[int, int] = (32, 32)
) -> np.ndarray:
    """``count`` RGB uint8 images of ``shape`` (height, width) whose mean colour depends on ``label``
    (so they are learnable)."""
    base = np.array([(label * 53) % 256, (label * 97) % 256, (label * 151) % 256], np.int16)
    noise = rng.integers(-40, 41, size=(count, *shape, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def make_split(rng: np.random.Generator, per_class: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A balanced split with labels interleaved (as in the official files)."""
    labels = np.tile(np.arange(num_classes), per_class)
    images = np.concatenate([class_images(rng, lab, 1) for lab in labels])
    return images, labels


def _dump(path: Path, obj: dict) -> str:
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar_python(root: Path, fmt: str, train_per_class: int, test_per_class: int, seed: int = 0) -> dict[str, str]:
    """Write tiny CIFAR-10/100 in the official python format under ``root``; return {file name: md5}."""
    rng = np.random.default_rng(seed)
    num_classes = 10 if fmt == "cifar10" else 100
    train_x, train_y = make_split(rng, train_per_class, num_classes)
    test_x, test_y = make_split(rng, test_per_class, num_classes)

    def batch(x, y):
        key = "labels" if fmt == "cifar10" else "fine_labels"
        return {"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1), key: y.tolist()}

    names = [f"class{i:02d}" for i in range(num_classes)]
    if fmt == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        md5 = {}
        for i, part in enumerate(np.array_split(np.arange(len(train_y)), 5)):
            md5[f"data_batch_{i + 1}"] = _dump(folder / f"data_batch_{i + 1}", batch(train_x[part], train_y[part]))
        md5["test_batch"] = _dump(folder / "test_batch", batch(test_x, test_y))
        md5["batches.meta"] = _dump(folder / "batches.meta", {"label_names": names})
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        md5 = {
            "train": _dump(folder / "train", batch(train_x, train_y)),
            "test": _dump(folder / "test", batch(test_x, test_y)),
            "meta": _dump(folder / "meta", {"fine_label_names": names}),
        }
    return md5


def write_class_folders(
    folder: Path, counts: list[int], rng: np.random.Generator, shape: tuple[int, int] = (32, 32), mode: str = "RGB"
) -> None:
    """Write ``folder/c<label>/<n>.png``: ``counts[label]`` images of ``shape`` saved in PIL ``mode`` (L, RGBA...)."""
    from PIL import Image

    for label, count in enumerate(counts):
        (folder / f"c{label}").mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(class_images(rng, label, count, shape)):
            Image.fromarray(img).convert(mode).save(folder / f"c{label}" / f"{i:05d}.png")


def write_image_folder(root: Path, num_classes: int, train_per_class: int, test_per_class: int, seed: int = 0) -> None:
    """Write ``root/{train,test}/<class>/<n>.png`` with ``num_classes`` classes."""
    rng = np.random.default_rng(seed)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        write_class_folders(root / split, [per_class] * num_classes, rng)


def write_tiny(root: Path) -> dict[str, str]:
    """The data of the tiny workflow (.test/tiny/config.yaml) under ``root``: CIFAR-10 in the official python
    format (3 training and 1 test image per class) and an image folder ``folder/`` (5 classes, 6 training
    and 2 test images each); returns {CIFAR file name: md5}, which is also written to ``root/md5.json``."""
    md5 = write_cifar_python(root, "cifar10", train_per_class=3, test_per_class=1)
    write_image_folder(root / "folder", num_classes=5, train_per_class=6, test_per_class=2)
    (root / "md5.json").write_text(json.dumps(md5))
    return md5


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".test/data")
    write_tiny(target)
    print(f"tiny data written to {target}/; torchvision checks the official md5 sums, so run the workflow with"
          f" the tests' override:\nPYTHONPATH={Path('tests/md5_bypass').resolve()}"
          f" LTBENCH_TEST_CIFAR_MD5={(target / 'md5.json').resolve()}"
          " snakemake --configfile .test/tiny/config.yaml --cores 2")
