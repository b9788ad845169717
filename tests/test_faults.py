"""Fault tolerance: a training job killed with SIGKILL resumes from its checkpoint and ends
exactly where an uninterrupted run ends; a killed workflow leaves no partial result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import make_workflow, tiny_config


def single_run_config() -> dict:
    """One VGG run on the tiny image folder, 6 epochs (about a second each on one thread), checkpoint every epoch."""
    config = tiny_config()
    config["benchmarks"] = {"vgg16bn-folder": config["benchmarks"]["vgg16bn-folder"]}
    config["strategies"] = {"ce": {}}
    config["recipe"]["epochs"] = 6
    return config


RUN = "results/runs/vgg16bn-folder/ce/seed0"
TABLE = "results/table.md"  # the target: training, metrics and table, no figures
LOG = "results/logs/train/vgg16bn-folder/ce/seed0.log"


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    wf = make_workflow(tmp_path_factory.mktemp("reference"), single_run_config())
    wf.snakemake("--cores", "1", TABLE)
    return wf


def test_sigkill_then_rerun_resumes_and_matches_the_uninterrupted_run(tmp_path, reference):
    wf = make_workflow(tmp_path, single_run_config())
    proc = subprocess.Popen(
        wf.argv("--cores", "1", TABLE), cwd=wf.root, env=wf.env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        log = wf.root / LOG
        wait_for(lambda: log.exists() and "epoch 3/6" in log.read_text(), 120, "epoch 3 in the training log")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole workflow dies at once, as on a lost node
        proc.wait(timeout=30)
    assert not (wf.root / RUN / "history.json").exists()
    assert not (wf.root / RUN / "predictions.npz").exists()
    assert (wf.root / "results/checkpoints/vgg16bn-folder/ce/seed0.pt").is_file()

    wf.snakemake("--unlock")
    wf.snakemake("--cores", "1", TABLE)  # the profile's rerun-incomplete reruns the killed job
    assert "resuming from results/checkpoints/vgg16bn-folder/ce/seed0.pt after epoch" in (wf.root / LOG).read_text()
    assert not (wf.root / "results/checkpoints/vgg16bn-folder/ce/seed0.pt").exists()

    got = json.loads((wf.root / RUN / "history.json").read_text())
    want = json.loads((reference.root / RUN / "history.json").read_text())
    for key in ("train_loss", "test_acc", "per_class_correct", "lr"):
        assert [e[key] for e in got["epochs"]] == [e[key] for e in want["epochs"]], key
    got_metrics = json.loads((wf.root / RUN / "metrics.json").read_text())
    want_metrics = json.loads((reference.root / RUN / "metrics.json").read_text())
    for key in ("best_test_acc", "best_epoch", "final_test_acc", "best_per_class_acc", "last_per_class_acc"):
        assert got_metrics[key] == want_metrics[key], key


def test_failed_job_leaves_no_output_and_reruns(tmp_path):
    """A strategy that fails: the job stops before training, nothing is written, the table is not made."""
    config = single_run_config()
    config["strategies"] = {"broken": {"module": "effective_number", "beta": 2.0}}
    wf = make_workflow(tmp_path, config)
    proc = wf.snakemake("--cores", "1", TABLE, check=False)
    assert proc.returncode != 0
    log = (wf.root / "results/logs/train/vgg16bn-folder/broken/seed0.log").read_text()
    assert "strategy 'broken' failed while computing class weights: ValueError: beta must be in [0, 1), got 2.0" in log
    assert not (wf.root / "results/runs/vgg16bn-folder/broken/seed0").exists() or not any(
        (wf.root / "results/runs/vgg16bn-folder/broken/seed0").iterdir())
    assert not (wf.root / "results/table.csv").exists()
