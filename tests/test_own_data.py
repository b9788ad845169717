"""A practitioner's own data: natural imbalance, any image size, a split of one folder, a manifest,
bad inputs stopped before training with the file named, and docs/own-data.md's folder-to-table example."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import REPO, TINY_RECIPE, Workflow, copy_workflow
from datagen import write_class_folders
from ltbench import config as cfg
from ltbench.datasets import data, images
from ltbench.evaluation import metrics
from ltbench.datasets.data import DataError


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def materialize(root, location, ratio="natural", **options) -> dict:
    """Materialize ``location`` (an image folder unless ``fmt`` is given) into ``root/out``."""
    fmt = options.pop("fmt", "imagefolder")
    out = root / "out"
    return data.materialize(fmt, str(location), ratio, 0, str(out / "index.json"), str(out / "cache.npz"), **options)


def cache(root) -> dict[str, np.ndarray]:
    return data.load_cache(str(root / "out/cache.npz"))


def test_natural_imbalance_is_the_data_as_it_is(tmp_path):
    write_class_folders(tmp_path / "train", [30, 12, 5], rng())
    write_class_folders(tmp_path / "test", [3, 3, 3], rng(1))
    index = materialize(tmp_path, tmp_path)
    assert index["imbalance_ratio"] == "natural" and index["class_counts"] == [30, 12, 5]
    assert index["actual_imbalance_ratio"] == 6.0 and index["n_max"] == 30
    assert index["indices"] == list(range(47)) and index["num_test"] == 9 and index["split"] is None
    arrays = cache(tmp_path)
    assert arrays["train_x"].shape == (47, 32, 32, 3) and np.bincount(arrays["train_y"]).tolist() == [30, 12, 5]
    # shot groups come from these counts: 30 medium, 12 and 5 few, no many-shot class
    assert [metrics.shot_group(c) for c in index["class_counts"]] == ["medium", "few", "few"]
    labels = arrays["test_y"]  # every test image predicted right
    shots = metrics.shot_accuracy(metrics.per_class_accuracy(labels, labels, 3), metrics.tested_classes(labels, 3),
                                  index["class_counts"])
    assert shots == {"many": None, "medium": 100.0, "few": 100.0}
    # the canonical cut of the same data still starts from its smallest class
    assert materialize(tmp_path, tmp_path, 5)["class_counts"] == [5, 2, 1]


def test_grayscale_28x28_becomes_rgb_at_the_configured_size(tmp_path):
    write_class_folders(tmp_path / "train", [4, 3], rng(), shape=(28, 28), mode="L")
    write_class_folders(tmp_path / "test", [2, 2], rng(1), shape=(28, 28), mode="L")
    index = materialize(tmp_path, tmp_path)
    x = cache(tmp_path)["train_x"]
    assert index["image_size"] == 32 and x.shape == (7, 32, 32, 3) and x.dtype == np.uint8
    assert (x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all()  # gray: R = G = B


def test_rgba_64x64_is_resized_to_image_size(tmp_path):
    write_class_folders(tmp_path / "train", [3, 3], rng(), shape=(64, 64), mode="RGBA")
    write_class_folders(tmp_path / "test", [1, 1], rng(1), shape=(64, 64), mode="RGBA")
    index = materialize(tmp_path, tmp_path, image_size=48)
    arrays = cache(tmp_path)
    assert index["image_size"] == 48
    assert arrays["train_x"].shape == (6, 48, 48, 3) and arrays["test_x"].shape == (2, 48, 48, 3)
    expected = images.load(tmp_path / "train/c1/00000.png", 48)
    assert np.array_equal(arrays["train_x"][3], expected)


def test_resize_and_crop_policy():
    """Shorter side to S, centre crop; an image already S x S is kept bit for bit; alpha is dropped."""
    square = rng().integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(images.fit(Image.fromarray(square), 32), square)
    wide = np.zeros((64, 96, 3), np.uint8)  # 96 wide: the scaled 48 x 32 loses 8 columns on each side
    wide[:, :12] = wide[:, 84:] = (255, 0, 0)
    wide[:, 12:84] = (0, 0, 255)
    out = images.fit(Image.fromarray(wide), 32)
    assert out.shape == (32, 32, 3) and (out[..., 2] == 255).all() and (out[..., 0] == 0).all()
    tall = np.full((80, 40, 4), (10, 200, 30, 0), np.uint8)  # fully transparent RGBA
    assert (images.fit(Image.fromarray(tall, "RGBA"), 16) == (10, 200, 30)).all()


def test_one_folder_gets_a_seeded_stratified_split(tmp_path):
    write_class_folders(tmp_path / "mine", [10, 6, 3], rng())
    index = materialize(tmp_path, tmp_path / "mine")
    split = index["split"]
    assert split["seed"] == 0 and split["test_fraction"] == 0.2 and split["test_per_class"] is None
    assert [sum(name.startswith(f"c{c}/") for name in split["test"]) for c in range(3)] == [2, 1, 1]
    assert index["class_counts"] == [8, 5, 2] and index["num_test"] == 4
    arrays = cache(tmp_path)
    first = images.load(tmp_path / "mine" / split["test"][0], 32)
    assert np.array_equal(arrays["test_x"][0], first)
    assert not any((arrays["train_x"] == first).all(axis=(1, 2, 3)))  # a test image is not trained on
    assert materialize(tmp_path, tmp_path / "mine")["split"] == split  # reproducible
    balanced = materialize(tmp_path, tmp_path / "mine", test_per_class=2)
    assert balanced["class_counts"] == [8, 4, 1] and np.bincount(cache(tmp_path)["test_y"]).tolist() == [2, 2, 2]
    assert balanced["split"]["test_per_class"] == 2 and balanced["split"]["test_fraction"] is None


def write_manifest(root, rows: list[str], header: str = "path,label,split") -> None:
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")


def test_manifest(tmp_path):
    write_class_folders(tmp_path / "img", [5, 3], rng())
    train = [f"img/c0/0000{i}.png,dog,train" for i in range(4)] + [f"img/c1/0000{i}.png,cat,train" for i in range(2)]
    write_manifest(tmp_path, train + ["img/c0/00004.png,dog,test", "img/c1/00002.png,cat,test"])
    index = materialize(tmp_path, tmp_path / "labels.csv", fmt="manifest")
    assert index["classes"] == ["cat", "dog"] and index["class_counts"] == [2, 4] and index["num_test"] == 2
    assert set(index["checksums"]["source_files_md5"]) == {"labels.csv"}
    assert np.array_equal(cache(tmp_path)["test_x"][0], images.load(tmp_path / "img/c0/00004.png", 32))
    write_manifest(tmp_path, [row.rsplit(",", 1)[0] for row in train], header="path,label")  # no split column
    index = materialize(tmp_path, tmp_path / "labels.csv", fmt="manifest", test_per_class=1)
    assert index["class_counts"] == [1, 3] and index["num_test"] == 2
    assert sorted(name.split("/")[1] for name in index["split"]["test"]) == ["c0", "c1"]


def _broken(tmp_path):
    write_class_folders(tmp_path / "mine", [4, 4], rng())
    (tmp_path / "mine/c1/broken.png").write_bytes(b"not an image")
    return {"location": tmp_path / "mine"}, r"mine/c1/broken\.png: not a readable image"


def _truncated(tmp_path):
    write_class_folders(tmp_path / "mine", [4, 4], rng(), shape=(40, 40))
    good = (tmp_path / "mine/c0/00001.png").read_bytes()
    (tmp_path / "mine/c0/00001.png").write_bytes(good[: len(good) // 2])
    return {"location": tmp_path / "mine"}, r"mine/c0/00001\.png: not a readable image .*truncated"


def _no_training_image(tmp_path):
    write_class_folders(tmp_path / "img", [3, 3], rng())
    write_manifest(tmp_path, ["img/c0/00000.png,a,train", "img/c0/00001.png,a,test", "img/c1/00000.png,b,test"])
    return ({"location": tmp_path / "labels.csv", "fmt": "manifest"},
            r"labels\.csv, line 4: test image img/c1/00000\.png has label 'b', which no training image has")


def _unknown_test_class(tmp_path):
    write_class_folders(tmp_path / "train", [3, 3], rng())
    write_class_folders(tmp_path / "test", [1, 1, 1], rng(1))
    return {"location": tmp_path}, r"test/c2: test class 'c2' has no training images"


def _no_test_image(tmp_path):
    write_class_folders(tmp_path / "train", [3, 3], rng())
    write_class_folders(tmp_path / "test", [1], rng(1))
    return {"location": tmp_path}, r"class 'c1' has no test image"


def _missing_file(tmp_path):
    write_class_folders(tmp_path / "img", [2, 2], rng())
    write_manifest(tmp_path, ["img/c0/00000.png,a", "img/c0/00001.png,a", "img/c1/nope.png,b"], header="path,label")
    return ({"location": tmp_path / "labels.csv", "fmt": "manifest"},
            r"labels\.csv, line 4: .*img/c1/nope\.png does not exist")


def _class_too_small_to_split(tmp_path):
    write_class_folders(tmp_path / "mine", [4, 1], rng())
    return {"location": tmp_path / "mine"}, r"class 'c1' has 1 image\(s\) \(c1/00000\.png\); a train/test split needs"


def _split_of_a_split_source(tmp_path):
    write_class_folders(tmp_path / "train", [3, 3], rng())
    write_class_folders(tmp_path / "test", [1, 1], rng(1))
    return {"location": tmp_path, "test_fraction": 0.3}, r"has its own test split; remove test_fraction"


def _too_large(tmp_path):
    """11 training + 2 test images of 64x64 (159,744 bytes) against a 0.1 MB limit: the message says what to
    do; the broken file proves that the check runs before any image is decoded."""
    write_class_folders(tmp_path / "train", [6, 4], rng(), shape=(64, 64))
    write_class_folders(tmp_path / "test", [1, 1], rng(1), shape=(64, 64))
    (tmp_path / "train/c1/broken.png").write_bytes(b"")
    return ({"location": tmp_path, "image_size": 64, "cache_limit_gb": 1e-4},
            r"13 images of 64x64 make a 0\.00 GB training cache.* limit is 0\.00 GB \(data\.cache_limit_gb\)\."
            r" Set a smaller image_size in this dataset's entry \(at most 50 fits\)")


BAD = {f.__name__[1:]: f for f in (_broken, _truncated, _no_training_image, _unknown_test_class, _no_test_image,
                                    _missing_file, _class_too_small_to_split, _split_of_a_split_source, _too_large)}


@pytest.mark.parametrize("case", BAD)
def test_bad_data_is_named_before_training_and_nothing_is_written(tmp_path, case):
    options, message = BAD[case](tmp_path)
    with pytest.raises(DataError, match=message):
        materialize(tmp_path, **options)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_natural_ratio_in_config_and_paths():
    assert cfg.parse_ratio("natural") == "natural" and cfg.parse_ratio(50) == 50.0 and cfg.parse_ratio("12.5") == 12.5
    with pytest.raises(cfg.ConfigError, match="'natral' is neither a number nor 'natural'"):
        cfg.parse_ratio("natral")
    config = {"datasets": {"mine": {"format": "imagefolder", "path": "x"}},
              "benchmarks": {"b": {"arch": "resnet32", "dataset": "mine", "imbalance_ratio": "natural"}}}
    assert cfg.benchmark(config, "b").data_id == "mine-ltnatural"
    config["datasets"]["mine"].update(test_fraction=0.1, test_per_class=3)
    with pytest.raises(cfg.ConfigError, match="dataset 'mine' sets both test_fraction and test_per_class"):
        cfg.benchmark(config, "b")


def readme_config(folder) -> dict:
    """The "Bring your own data" page's datasets and benchmarks, pointed at ``folder``."""
    page = (REPO / "docs/own-data.md").read_text()
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", page, re.S).group(1))
    for entry in example["datasets"].values():
        entry["path"] = str(folder)
    return example


def test_readme_folder_to_table(tmp_path):
    """docs/own-data.md's example on a one-folder, naturally imbalanced, 40x40 grayscale dataset: Snakemake from the
    folder to the table (one strategy, one seed, one epoch on the CPU)."""
    write_class_folders(tmp_path / "mine", [12, 6, 3], rng(), shape=(40, 40), mode="L")
    copy_workflow(tmp_path)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config.pop("matrix", None)
    config.update(readme_config(tmp_path / "mine"), strategies={"ce": {}}, seeds=[0])
    config.update(recipe={**TINY_RECIPE, "epochs": 1},
                  train={"device": "cpu", "threads": 1, "checkpoint_every": 0, "runtime": 10, "mem_mb": 1000})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    Workflow(tmp_path, dict(os.environ)).snakemake("--cores", "2", "results/table.md")
    index = json.loads((tmp_path / "results/data/mine-ltnatural/index.json").read_text())
    assert index["class_counts"] == [10, 5, 2] and index["image_size"] == 64 and index["num_test"] == 4
    runs = pd.read_csv(tmp_path / "results/table.csv")
    assert runs["benchmark"].tolist() == ["resnet32-mine"] and runs["strategy"].tolist() == ["ce"]
    assert "resnet32-mine" in (tmp_path / "results/table.md").read_text()
