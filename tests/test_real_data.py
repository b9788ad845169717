"""The real CIFAR data from ../shared/data: its subsets, and what training on it must show.

Runs with ``LTBENCH_REAL_DATA=1`` where ../shared/data holds the archives (CI sets it: .ci/run), and is
skipped otherwise. CIFAR-100 goes through the unmodified torchvision path (official files, official md5
sums); CIFAR-10 through the image-folder path (lossless PNG class folders). The subsets are checked
image for image against the canonical ones; then a few epochs of ``ce`` and ``balanced_softmax`` on the
real CIFAR-10-LT, through the real rules, must show what holds on real data whatever the seed: a weight
or offset applied the wrong way round, which no tiny-data test can catch, fails it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from conftest import REPO, Workflow, copy_workflow
from ltbench.datasets import data
from ltbench.io import read_json

REAL = os.environ.get("LTBENCH_REAL_DATA") == "1"
SHARED = REPO.parent / "shared" / "data"
CIFAR100 = SHARED / "cifar-100-python.tar.xz"
CIFAR10_PNG = SHARED / "cifar10-png.tar.xz"
CIFAR10_TRAIN_SHA1 = "45380efef04d09b41024e50669b817d3b87c7475"  # from shared/data/README.md
CIFAR10_TEST_SHA1 = "cbfd0c11471c66c699f7d785623c15975db79826"
# the CPU-scale protocol on the workplace's real data, cut to ce and balanced_softmax, seed 0, 4 epochs
REAL_CHECK = ("configs/cpu.yaml", "configs/shared-data.yaml", ".test/real/config.yaml")


def unpack(archive, dest):
    subprocess.run(["tar", "-xJf", str(archive), "-C", str(dest)], check=True)
    return dest


@pytest.mark.skipif(not (REAL and CIFAR100.exists()), reason=f"set LTBENCH_REAL_DATA=1 with {CIFAR100} present")
def test_real_cifar100_subsets(tmp_path):
    root = unpack(CIFAR100, tmp_path)
    lt100 = data.materialize("cifar100", str(root), 100, 0, str(tmp_path / "a/index.json"), str(tmp_path / "a/c.npz"))
    assert lt100["num_train"] == 10847 and lt100["n_max"] == 500 and lt100["num_test"] == 10000
    assert lt100["class_counts"][0] == 500 and lt100["class_counts"][-1] == 5
    assert lt100["checksums"]["source_files_md5"]["train"] == "16019d7e3df5f24257cddd939b257f8d"
    lt50 = data.materialize("cifar100", str(root), 50, 0, str(tmp_path / "b/index.json"), str(tmp_path / "b/c.npz"))
    assert lt50["num_train"] == 12608 and lt50["class_counts"][-1] == 10


@pytest.mark.skipif(not (REAL and CIFAR10_PNG.exists()), reason=f"set LTBENCH_REAL_DATA=1 with {CIFAR10_PNG} present")
def test_real_cifar10_png_subset(tmp_path, monkeypatch):
    root = unpack(CIFAR10_PNG, tmp_path)
    source = data.load_source("imagefolder", str(root))
    assert source.classes[:3] == ["airplane", "automobile", "bird"]
    # file names give each image's position in the official order: reorder and compare fingerprints
    train_x, test_x = source.train.pixels(), source.test.pixels()
    official = {}
    for split, images, expected in (("train", train_x, CIFAR10_TRAIN_SHA1), ("test", test_x, CIFAR10_TEST_SHA1)):
        files = sorted((root / split).glob("*/*.png"), key=lambda p: (p.parent.name, p.name))
        official[split] = np.argsort([int(p.stem) for p in files])  # folder position of each official image
        assert data.pixel_sha1(images[official[split]]) == expected
    counts = data.long_tail_counts(5000, 10, 100)
    assert counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert [round(m, 4) for m in data.channel_stats(train_x)[0]] == [0.4914, 0.4822, 0.4465]
    # materialized, the folders give exactly the canonical subset: LDAM-DRW's cut of the official order
    canonical = official["train"][data.long_tail_indices(source.train.labels[official["train"]], counts, 0)]
    # materialize from the images decoded above (decoding 60,000 PNGs twice would double the test's time)
    decoded = data.Source(replace(source.train, read=lambda i: train_x[i]), replace(source.test, read=lambda i: test_x[i]),
                          source.classes, source.location, source.checksums)
    monkeypatch.setattr(data, "load_source", lambda *args, **kwargs: decoded)
    index = data.materialize("imagefolder", str(root), 100, 0, str(tmp_path / "i.json"), str(tmp_path / "c.npz"))
    assert index["indices"] == canonical.tolist() and index["num_train"] == 12406 and index["n_max"] == 5000
    assert index["class_counts"] == counts and index["split"] is None and index["image_size"] == 32
    cache = data.load_cache(str(tmp_path / "c.npz"))
    assert data.pixel_sha1(cache["train_x"]) == data.pixel_sha1(train_x[canonical])
    assert data.pixel_sha1(cache["test_x"][official["test"]]) == CIFAR10_TEST_SHA1


@pytest.mark.skipif(not (REAL and CIFAR10_PNG.exists()), reason=f"set LTBENCH_REAL_DATA=1 with {CIFAR10_PNG} present")
def test_real_cifar10lt_balanced_softmax_lifts_the_tail_through_the_rules(tmp_path):
    """4 epochs of ResNet-8 (the CPU-scale protocol) on the real CIFAR-10-LT, ratio 100, about 2 minutes on
    2 cores. At the final epoch ``ce`` has learnt the head (many-shot accuracy far above the 10% of
    chance) and ignores the two medium-shot classes (83 and 50 images against 5,000), while
    ``balanced_softmax`` (log-prior offsets in the training loss) lifts them far above ``ce``'s. Measured
    for seeds 0, 1, 2 (commit 9a358cd, the 2-core machine): ``ce`` many-shot 38.1, 36.7, 36.0% and
    medium-shot 0.0% each; ``balanced_softmax`` medium-shot 33.2, 32.3, 36.5% and many-shot 39.5, 40.9,
    41.6%. The bounds below leave a margin of more than 10 points to every one of them, so that any seed
    passes. An offset of the wrong sign favours the head even more than ``ce`` does and cannot lift them."""
    copy_workflow(tmp_path)
    (tmp_path / "data/cifar10-png").mkdir(parents=True)
    unpack(CIFAR10_PNG, tmp_path / "data/cifar10-png")  # where configs/shared-data.yaml looks
    wf = Workflow(tmp_path, dict(os.environ), REAL_CHECK)
    runs = {s: f"results/runs/resnet8-cifar10lt/{s}/seed0" for s in ("ce", "balanced_softmax")}
    wf.snakemake("--cores", "2", *(f"{run}/metrics.json" for run in runs.values()), timeout=900)
    final = {s: read_json(tmp_path / run / "metrics.json") for s, run in runs.items()}
    for metrics in final.values():
        assert metrics["epochs"] == 4 and metrics["test_images"] == 10000 and sum(metrics["class_counts"]) == 12406
        assert metrics["shot_classes"] == {"many": 8, "medium": 2, "few": 0}
    ce, bs = (final[s]["last_shot_acc"] for s in ("ce", "balanced_softmax"))
    assert ce["many"] > 25.0 and bs["many"] > 25.0, f"too little of the head learnt: ce {ce}, balanced_softmax {bs}"
    assert bs["medium"] > ce["medium"] + 15.0, f"balanced_softmax does not lift the tail above ce: {bs} vs {ce}"
