"""A held-out validation set for model selection without the test set."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from datagen import write_image_folder
from ltbench.datasets import data
from ltbench.datasets.splits import validation_split
from ltbench.training.train import run
from ltbench.training.outputs import validation_selection
from test_train import spec

LABELS = np.repeat(np.arange(3), 10)  # 10 source images per class


def test_validation_comes_from_spares_and_leaves_the_subset_as_published():
    subset = data.long_tail_indices(LABELS, [10, 5, 2], seed=0)
    held, kept, record = validation_split(LABELS, subset, per_class=3, seed=0, from_subset=False, classes=list("abc"))
    assert np.array_equal(kept, subset)  # the published subset, untouched
    assert not set(held) & set(subset)
    assert record["counts"] == [0, 3, 3] and record["taken_from_subset"] == [0, 0, 0]  # the head has no spares


def test_from_subset_gives_every_class_validation_images():
    subset = data.long_tail_indices(LABELS, [10, 5, 2], seed=0)
    held, kept, record = validation_split(LABELS, subset, per_class=3, seed=0, from_subset=True, classes=list("abc"))
    assert record["counts"] == [3, 3, 3] and record["taken_from_subset"] == [3, 0, 0]
    head = subset[LABELS[subset] == 0]
    assert np.array_equal(kept[LABELS[kept] == 0], head[:7])  # the rest is a prefix of the same shuffle
    assert not set(held) & set(kept)
    with pytest.raises(data.DataError, match="class 'a': validation_per_class 10 would take all its 10"):
        validation_split(LABELS, subset, per_class=10, seed=0, from_subset=True, classes=list("abc"))


def test_selection_takes_the_best_validation_epoch_first_of_ties():
    epochs = [{"val_acc": 10.0, "test_acc": 50.0}, {"val_acc": 30.0, "test_acc": 20.0},
              {"val_acc": 30.0, "test_acc": 90.0}]
    assert validation_selection(epochs) == {"epoch": 2, "val_acc": 30.0, "test_acc": 20.0}
    assert validation_selection([{"test_acc": 1.0}]) is None


def test_training_records_validation_accuracy_and_the_selected_epoch(tmp_path):
    write_image_folder(tmp_path / "src", num_classes=4, train_per_class=10, test_per_class=3)
    out = tmp_path / "subset"
    index = data.materialize("imagefolder", str(tmp_path / "src"), 5, 0, str(out / "index.json"),
                             str(out / "cache.npz"), validation_per_class=2)
    assert index["class_counts"] == [10, 5, 3, 2]  # as without validation
    assert index["validation"]["counts"] == [0, 2, 2, 2]
    history = run(replace(spec(out, tmp_path / "run", epochs=3), checkpoint_every=0))
    assert all(0 <= e["val_acc"] <= 100 for e in history["epochs"])
    chosen = history["val_selected"]
    assert chosen["test_acc"] == history["epochs"][chosen["epoch"] - 1]["test_acc"]
