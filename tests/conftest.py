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

from datagen import write_image_folder, write_tiny  # noqa: E402

WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "profiles", "envs", "report", "config.yaml", "configs", ".test")
TINY = ".test/tiny/config.yaml"  # merged into config.yaml, as `snakemake --configfile` does
TINY_RECIPE = yaml.safe_load((REPO / TINY).read_text())["recipe"]


def tiny_config() -> dict:
    """``.test/tiny/config.yaml``: two benchmarks (official CIFAR-10 files, an image folder); two trained
    strategies, a post-hoc one and a stage 2; one seed, two epochs, CPU."""
    return yaml.safe_load((REPO / TINY).read_text())


class Workflow:
    """A copy of the workflow in a temporary folder, with helpers to run Snakemake there."""

    def __init__(self, root: Path, env: dict[str, str], configfiles: tuple[str, ...] = ()) -> None:
        self.root, self.env, self.configfiles = root, env, configfiles

    @property
    def config_path(self) -> Path:
        """The config file the tests edit: the last of ``configfiles``, else config.yaml."""
        return self.root / (self.configfiles[-1] if self.configfiles else "config.yaml")

    def argv(self, *args: str) -> list[str]:
        """The command line of ``snakemake ARGS`` with this workflow's config files (if any besides config.yaml)."""
        extra = ["--configfile", *self.configfiles] if self.configfiles else []
        return [sys.executable, "-m", "snakemake", *args, *extra]

    def snakemake(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``snakemake ARGS [--configfile CONFIGFILES]`` in the copy, at most ``timeout`` seconds; output
        captured as text."""
        try:
            proc = subprocess.run(
                self.argv(*args), cwd=self.root, env=self.env,
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
    """Copy the files a run needs (not results, caches, generated data or the venv)."""
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "data"))
        else:
            shutil.copy2(src, dest / name)


def make_workflow(root: Path, config: dict | None = None, configfiles: tuple[str, ...] = (TINY,)) -> Workflow:
    """A workflow copy with the tiny data (``datagen.write_tiny``) run with ``configfiles``; ``config``, if
    given, replaces the last of them, with the matrix set to its own benchmarks and strategies."""
    copy_workflow(root)
    md5 = write_tiny(root / ".test/data")
    wf = Workflow(root, {**os.environ, "PYTHONPATH": str(TESTS / "md5_bypass"),
                         "LTBENCH_TEST_CIFAR_MD5": json.dumps(md5)}, configfiles)
    if config is not None:
        config = {**config, "matrix": {"benchmarks": list(config["benchmarks"]),
                                       "strategies": list(config["strategies"])}}
        wf.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return wf


@pytest.fixture(scope="session")
def subset(tmp_path_factory):
    """A materialized 4-class long-tailed image-folder subset (counts 10, 5, 3, 2; 12 test images)."""
    root = tmp_path_factory.mktemp("subset")
    write_image_folder(root, num_classes=4, train_per_class=10, test_per_class=3)
    from ltbench.datasets import data

    data.materialize("imagefolder", str(root), 5, 0, str(root / "index.json"), str(root / "cache.npz"))
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Workflow:
    """The tiny workflow, run once to completion (shared by the end-to-end and rerun tests)."""
    wf = make_workflow(tmp_path_factory.mktemp("tiny"))
    wf.snakemake("--cores", "2")
    return wf
