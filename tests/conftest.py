"""Shared fixtures: the library on sys.path, and a tiny copy of the workflow to run end to end."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS / "md5_bypass"))

from datagen import write_cifar_python, write_image_folder  # noqa: E402

WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "profiles", "envs", "report", "config.yaml")

TINY_RECIPE = {
    "epochs": 2, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
    "crop_padding": 4, "flip": True, "eval_batch_size": 16,
}


def tiny_config() -> dict:
    """Two benchmarks (official CIFAR-10 files, an image folder); two trained strategies, a post-hoc one and a
    stage 2; one seed, two epochs, CPU."""
    return {
        "data": {"root": "data", "download": False, "subset_seed": 0},
        "datasets": {"tiny10": {"format": "cifar10"}, "folder": {"format": "imagefolder", "path": "folder",
                                                                        "validation_per_class": 1}},
        "benchmarks": {
            "resnet32-tiny10": {"arch": "resnet32", "dataset": "tiny10", "imbalance_ratio": 3},
            "vgg16bn-folder": {"arch": "vgg16bn", "dataset": "folder", "imbalance_ratio": 3},
        },
        "strategies": {
            "ce": {},
            "effective_number": {"beta": 0.99},
            "la_posthoc": {"module": "logit_adjustment_posthoc", "base": "ce"},
            "weight_balancing": {"stage1": "ce", "classifier_epochs": 1},
        },
        "seeds": [0],
        "recipe": dict(TINY_RECIPE),
        "train": {"device": "cpu", "threads": 1, "checkpoint_every": 1, "runtime": 10, "mem_mb": 1000},
    }


class Workflow:
    """A copy of the workflow in a temporary folder, with helpers to run Snakemake there."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env

    def snakemake(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``snakemake ARGS`` in the copy, at most ``timeout`` seconds; output captured as text."""
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "snakemake", *args], cwd=self.root, env=self.env,
                capture_output=True, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired as err:
            raise AssertionError(f"snakemake {' '.join(args)} took over {timeout} s:\n{err.stdout}\n{err.stderr}")
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def planned_jobs(self, *targets: str) -> set[tuple[str, str]]:
        """(rule, wildcards) of every job a dry run (of ``targets``, else the default target) would execute."""
        out = self.snakemake("--dry-run", *targets).stdout
        jobs, rule = set(), None
        for line in out.splitlines():
            if m := re.match(r"^(?:local)?rule (\w+):", line):
                if rule is not None:
                    jobs.add((rule, ""))
                rule = m.group(1)
            elif rule is not None and (m := re.match(r"^\s+wildcards: (.*)$", line)):
                jobs.add((rule, m.group(1)))
                rule = None
        if rule is not None:
            jobs.add((rule, ""))
        return jobs


def copy_workflow(dest: Path) -> None:
    """Copy the files a run needs (not results, caches or the venv)."""
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)


def make_workflow(root: Path, config: dict) -> Workflow:
    """A workflow copy with tiny data in both formats and ``config`` as its config.yaml."""
    copy_workflow(root)
    md5 = write_cifar_python(root / "data", "cifar10", train_per_class=3, test_per_class=1)
    write_image_folder(root / "folder", num_classes=5, train_per_class=6, test_per_class=2)
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(TESTS / "md5_bypass")
    env["LTBENCH_TEST_CIFAR_MD5"] = json.dumps(md5)
    return Workflow(root, env)


@pytest.fixture(scope="session")
def subset(tmp_path_factory):
    """A materialized 4-class long-tailed image-folder subset (counts 10, 5, 3, 2; 12 test images)."""
    root = tmp_path_factory.mktemp("subset")
    write_image_folder(root, num_classes=4, train_per_class=10, test_per_class=3)
    from ltbench import data

    data.materialize("imagefolder", str(root), 5, 0, str(root / "index.json"), str(root / "cache.npz"))
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Workflow:
    """The tiny workflow, run once to completion (shared by the end-to-end and rerun tests)."""
    wf = make_workflow(tmp_path_factory.mktemp("tiny"), tiny_config())
    wf.snakemake("--cores", "2")
    return wf
