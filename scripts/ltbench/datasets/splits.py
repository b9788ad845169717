"""Seeded per-class sampling, and the train/test split of a source without a test split of its own.

``per_class_sample``: per class in label order, the first ``counts[c]`` indices of
``RandomState(seed).shuffle(indices of the class)``, one generator for all classes (kaidic/LDAM-DRW's
long-tail construction; also how the split draws its test images).

Split (stratified): class c of n_c images gives ``test_per_class`` test images when that is set
(a balanced test set, on which accuracy is the class-balanced accuracy), else
``round(test_fraction * n_c)`` clipped to [1, n_c - 1]; the rest are training images. Both parts
keep the source's order. The split is a function of the labels and the seed only, and the
materialized index records it (the test images' names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ltbench.datasets.sources import DataError, Source

DEFAULT_TEST_FRACTION = 0.2


def per_class_sample(labels: np.ndarray, counts: list[int], seed: int) -> np.ndarray:
    """Indices: per class in label order, the first ``counts[c]`` of a seeded shuffle of its indices.

    Every class must have at least ``counts[c]`` items (callers check, with their own message).
    """
    rng = np.random.RandomState(seed)
    chosen = []
    for cls, count in enumerate(counts):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        chosen.append(idx[:count])
    return np.concatenate(chosen).astype(np.int64)


def held_out_counts(source: Source, test_fraction: float, test_per_class: int | None) -> list[int]:
    """Test images per class of a source to split; ``DataError`` if a class cannot give them and keep one to train."""
    labels = source.train.labels
    counts = []
    for cls, name in enumerate(source.classes):
        members = np.flatnonzero(labels == cls)
        n = len(members)
        if n < 2:
            raise DataError(f"{source.location}: class {name!r} has {n} image(s) ({source.train.names[members[0]]});"
                            " a train/test split needs at least 2 per class")
        if test_per_class is not None and test_per_class >= n:
            raise DataError(f"{source.location}: class {name!r} has {n} images; test_per_class {test_per_class}"
                            " leaves none to train on")
        counts.append(test_per_class if test_per_class is not None else min(max(round(test_fraction * n), 1), n - 1))
    return counts


def ensure_test_split(
    source: Source, seed: int, test_fraction: float | None = None, test_per_class: int | None = None
) -> tuple[Source, dict[str, Any] | None]:
    """``source`` with a test split, and the split's record for the index (None if the source had its own).

    ``test_fraction`` (default 0.2) or ``test_per_class`` apply only to a source without a test
    split; given for one that has its own, they are a ``DataError``.
    """
    if source.test is not None:
        if test_fraction is not None or test_per_class is not None:
            raise DataError(f"{source.location} has its own test split; remove test_fraction / test_per_class"
                            " from its dataset entry")
        return source, None
    fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    test = np.sort(per_class_sample(source.train.labels, held_out_counts(source, fraction, test_per_class), seed))
    train = np.setdiff1d(np.arange(len(source.train)), test)
    split = source.train.take(train), source.train.take(test)
    record = {"seed": seed, "test_fraction": None if test_per_class is not None else fraction,
              "test_per_class": test_per_class, "test": split[1].names}
    return Source(split[0], split[1], source.classes, source.location, source.checksums), record


def validation_split(labels: np.ndarray, subset: np.ndarray, per_class: int, seed: int, from_subset: bool,
                     classes: list[str]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A held-out validation set of up to ``per_class`` source training images per class, and the subset
    that remains; returns (validation indices, subset indices, the record for the index).

    Class c draws first from its spares, the source training images the subset leaves unused, in the
    order of ``RandomState(seed + 1).shuffle`` (a generator of its own: the subset is drawn exactly as
    without validation). A class with fewer spares than ``per_class`` (the head class of a canonical
    long tail keeps all its images, so it has none) gets only its spares, unless ``from_subset``: then
    the shortfall leaves the end of the class's part of the subset (the rest stays a prefix of the
    same shuffle) and the subset is no longer the published one. ``DataError`` if that would leave a
    class without a training image.
    """
    rng = np.random.RandomState(seed + 1)
    used = np.zeros(len(labels), dtype=bool)
    used[subset] = True
    keep, held, taken = [], [], []
    for cls, name in enumerate(classes):
        spares = np.flatnonzero((labels == cls) & ~used)
        rng.shuffle(spares)
        mine = subset[labels[subset] == cls]
        short = max(per_class - len(spares), 0) if from_subset else 0
        if short >= len(mine):
            raise DataError(f"class {name!r}: validation_per_class {per_class} would take all its {len(mine)}"
                            " training images")
        held.append(np.concatenate([spares[:per_class], mine[len(mine) - short:]]))
        keep.append(mine[: len(mine) - short])
        taken.append(short)
    validation = np.concatenate(held).astype(np.int64)
    if not len(validation):
        raise DataError(f"validation_per_class {per_class}: the subset leaves no spare training image in any class;"
                        " set validation_from_subset: true to take them out of the subset")
    record = {"per_class": per_class, "from_subset": from_subset, "seed": seed + 1,
              "counts": [len(h) for h in held], "taken_from_subset": taken}
    return validation, np.concatenate(keep).astype(np.int64), record
