"""Bad configuration stops Snakemake before any job, with a message naming the problem, writing nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import REPO, copy_workflow


def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def with_change(change):
    config = default_config()
    change(config)
    return config


CASES = {
    "unknown-key": (lambda c: c["recipe"].update(lrr=0.1), "'lrr' was unexpected"),
    "wrong-type": (lambda c: c["recipe"].update(epochs="ten"), "'ten' is not of type 'integer'"),
    "ratio-below-one": (
        lambda c: c["benchmarks"]["resnet32-cifar10lt"].update(imbalance_ratio=0.5), "0.5 is less than the minimum of 1"
    ),
    "unknown-arch": (lambda c: c["benchmarks"]["resnet32-cifar10lt"].update(arch="resnet18"), "'resnet18' is not one of"),
    "unknown-arch-in-a-grid": (
        lambda c: c["benchmarks"]["resnet32-cifar10lt"].update(arch=["resnet8", "resnet18"]), "'resnet18' is not one of"
    ),
    "ratio-below-one-in-a-grid": (
        lambda c: c["benchmarks"]["resnet32-cifar10lt"].update(imbalance_ratio=[10, 0.5]), "0.5 is less than the minimum of 1"
    ),
    "unknown-dataset": (
        lambda c: c["benchmarks"]["resnet32-cifar10lt"].update(dataset="imagenet"),
        "benchmark 'resnet32-cifar10lt' uses dataset 'imagenet', which is not under 'datasets'",
    ),
    "strategy-without-file": (
        lambda c: c["strategies"].update(focal_typo={}),
        "strategy 'focal_typo' needs the file focal_typo.py in scripts/ltbench/strategies/, which does not exist",
    ),
    "imagefolder-without-path": (
        lambda c: c["datasets"].update(mine={"format": "imagefolder"}), "'path' is a required property"
    ),
    "ratio-neither-number-nor-natural": (
        lambda c: c["benchmarks"]["resnet32-cifar10lt"].update(imbalance_ratio="natral"), "'natral' does not match"
    ),
    "manifest-without-path": (lambda c: c["datasets"].update(mine={"format": "manifest"}), "'path' is a required"),
    "two-split-sizes": (
        lambda c: c["datasets"]["cifar10"].update(test_fraction=0.1, test_per_class=5),
        "dataset 'cifar10' sets both test_fraction and test_per_class",
    ),
    "bad-device": (lambda c: c["train"].update(device="tpu"), "'tpu' is not one of"),
    "nan-lr": (lambda c: c["recipe"].update(lr=float("nan")), "config.recipe.lr is nan; every number"),
    "infinite-param": (lambda c: c["strategies"]["focal"].update(gamma=float("inf")),
                       "config.strategies.focal.gamma is inf"),
    "misspelt-param": (lambda c: c["strategies"]["focal"].update(gama=2.0),
                       "strategy 'focal' (focal.py): unknown parameter gama; it knows: beta, form, gamma"),
    "warmup-longer-than-training": (lambda c: c["recipe"].update(warmup_epochs=201),
                                    "recipe: warmup_epochs is 201, which does not lie between 0 and the 200 epochs"),
    "strategy-warmup-longer-than-training": (
        lambda c: c["strategies"].update(iw={"module": "inverse_freq", "recipe": {"warmup_epochs": 300}}),
        "strategy 'iw': recipe: warmup_epochs is 300, which does not lie between 0 and the 200 epochs"),
    "unknown-reduction": (lambda c: c["strategies"]["inverse_freq"].update(reduction="sum"),
                          "strategy 'inverse_freq' (inverse_freq.py): reduction must be one of weighted_mean,"
                          " batch_mean, got 'sum'"),
    "stage2-without-stage1": (lambda c: c["strategies"]["weight_balancing"].pop("stage1"),
                                    "is a stage-2 strategy; set 'stage1:' to the trained strategy it builds on"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_config_is_rejected_before_any_job(tmp_path, case):
    change, message = CASES[case]
    copy_workflow(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(with_change(change)))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--dry-run"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_plain_command_rejects_unknown_names(tmp_path):
    for args, message in (
        (["--benchmark", "nope", "--strategy", "ce"], "unknown benchmark 'nope'; config.yaml defines: resnet32-cifar10lt"),
        (["--benchmark", "resnet32-cifar10lt", "--strategy", "nope"], "unknown strategy 'nope'; config.yaml defines: ce"),
    ):
        proc = subprocess.run(
            [sys.executable, str(REPO / "scripts/train.py"), "--config", str(REPO / "config.yaml"), *args, "--seed", "0"],
            cwd=tmp_path, capture_output=True, text=True,
        )
        assert proc.returncode != 0 and message in proc.stderr
        assert not (tmp_path / "results").exists()
