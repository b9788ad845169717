"""Long-tail subset construction, the three sources, the cache, and bad data."""

from __future__ import annotations

import numpy as np
import pytest

from cifar_md5 import patch
from datagen import write_cifar_python, write_image_folder
from ltbench.datasets import data
from ltbench.datasets.data import DataError


def test_counts_match_the_literature():
    cifar10 = data.long_tail_counts(5000, 10, 100)
    assert cifar10 == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(cifar10) == 12406
    assert sum(data.long_tail_counts(500, 100, 100)) == 10847
    assert sum(data.long_tail_counts(500, 100, 50)) == 12608
    assert data.long_tail_counts(500, 100, 1) == [500] * 100


def test_indices_follow_ldam_drw_construction():
    """Same indices as LDAM-DRW's IMBALANCECIFAR: np.random.seed(0), then per class shuffle and take."""
    labels = np.random.default_rng(3).integers(0, 5, 400)
    counts = [40, 20, 10, 5, 2]
    np.random.seed(0)
    expected = []
    for cls, count in enumerate(counts):
        idx = np.where(labels == cls)[0]
        np.random.shuffle(idx)
        expected.extend(idx[:count])
    got = data.long_tail_indices(labels, counts, seed=0)
    assert got.tolist() == [int(i) for i in expected]
    assert np.bincount(labels[got]).tolist() == counts
    assert data.long_tail_indices(labels, counts, seed=1).tolist() != got.tolist()


def test_ratio_below_one_and_class_too_small():
    with pytest.raises(DataError, match="imbalance ratio must be >= 1"):
        data.long_tail_counts(500, 10, 0.5)
    with pytest.raises(DataError, match="class 1 has 3 training images; the long tail needs 5"):
        data.long_tail_indices(np.array([0] * 10 + [1] * 3), [10, 5], seed=0)


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    """Tiny official-format CIFAR-10 and CIFAR-100 whose md5 sums torchvision is told to accept."""
    import torchvision.datasets.cifar as tv_cifar

    md5 = write_cifar_python(tmp_path, "cifar10", 6, 2) | write_cifar_python(tmp_path, "cifar100", 4, 1)
    for cls in (tv_cifar.CIFAR10, tv_cifar.CIFAR100):
        for attr in ("train_list", "test_list", "meta"):
            if attr in vars(cls):
                monkeypatch.setattr(cls, attr, getattr(cls, attr))  # restored after the test
    patch(tv_cifar, md5)
    return tmp_path


@pytest.mark.parametrize("fmt, classes, train, test", [("cifar10", 10, 60, 20), ("cifar100", 100, 400, 100)])
def test_official_format_through_torchvision(cifar_root, fmt, classes, train, test):
    source = data.load_source(fmt, str(cifar_root))
    train_x = source.train.pixels()
    assert train_x.shape == (train, 32, 32, 3) and train_x.dtype == np.uint8
    assert source.test.pixels().shape == (test, 32, 32, 3)
    assert np.bincount(source.train.labels).tolist() == [train // classes] * classes
    assert len(source.classes) == classes
    expected_files = {"cifar10": {"test_batch", "batches.meta", "data_batch_5"}, "cifar100": {"train", "test", "meta"}}
    assert set(source.checksums) >= expected_files[fmt]


def test_materialize_writes_index_and_cache(cifar_root, tmp_path):
    index_path, cache_path = tmp_path / "out/index.json", tmp_path / "out/cache.npz"
    index = data.materialize("cifar10", str(cifar_root), 3, 0, str(index_path), str(cache_path))
    assert index["class_counts"] == data.long_tail_counts(6, 10, 3)
    assert index["num_train"] == sum(index["class_counts"]) == len(index["indices"])
    cache = data.load_cache(str(cache_path))
    assert cache["train_x"].shape == (index["num_train"], 32, 32, 3)
    assert np.bincount(cache["train_y"]).tolist() == index["class_counts"]
    assert index["checksums"]["subset_train_pixels_sha1"] == data.pixel_sha1(cache["train_x"])
    assert set(index["checksums"]["source_files_md5"]) == {f"data_batch_{i}" for i in range(1, 6)} | {
        "test_batch", "batches.meta"}
    assert all(0 < m < 1 for m in index["mean"]) and all(0 < s < 1 for s in index["std"])
    assert sorted(p.name for p in index_path.parent.iterdir()) == ["cache.npz", "index.json"]


def test_missing_data_with_download_off(tmp_path):
    with pytest.raises(DataError, match=r"cifar10: .*data_batch_1 does not exist \(download is off"):
        data.load_source("cifar10", str(tmp_path), download=False)


def test_checksum_mismatch_is_reported(tmp_path):
    write_cifar_python(tmp_path, "cifar100", 1, 1)  # real torchvision md5 list: generated files cannot match
    with pytest.raises(DataError, match=r"cifar100: checksum mismatch for .*cifar-100-python/train"):
        data.load_source("cifar100", str(tmp_path), download=False)


def test_image_folder(tmp_path):
    write_image_folder(tmp_path, num_classes=3, train_per_class=4, test_per_class=2)
    source = data.load_source("imagefolder", str(tmp_path))
    assert source.classes == ["c0", "c1", "c2"]
    assert source.train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert source.train.names[:2] == ["train/c0/00000.png", "train/c0/00001.png"]
    assert source.test.pixels().shape == (6, 32, 32, 3)


def test_image_folder_errors(tmp_path):
    write_image_folder(tmp_path, num_classes=3, train_per_class=2, test_per_class=1)
    (tmp_path / "train/c3").mkdir()
    with pytest.raises(DataError, match=r"class .*train/c3 is empty"):
        data.load_source("imagefolder", str(tmp_path))
    (tmp_path / "train/c3").rmdir()
    (tmp_path / "test/c2").rename(tmp_path / "test/other")
    with pytest.raises(DataError, match=r"test/other: test class 'other' has no training images"):
        data.load_source("imagefolder", str(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        data.load_source("imagefolder", str(tmp_path / "nowhere"))


def test_ratio_larger_than_the_data_allows(tmp_path):
    write_image_folder(tmp_path, num_classes=3, train_per_class=4, test_per_class=1)
    with pytest.raises(DataError, match="ratio 10.0 leaves class 2 with no images .* at most 4"):
        data.materialize("imagefolder", str(tmp_path), 10.0, 0, str(tmp_path / "i.json"), str(tmp_path / "c.npz"))
    assert not (tmp_path / "i.json").exists() and not (tmp_path / "c.npz").exists()
