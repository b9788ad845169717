"""The speed measurement entry points (measure.py, conv_probe.py) run on CPU and report comparable numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
import yaml

from conftest import REPO, tiny_config
from datagen import write_image_folder
from ltbench.datasets import data
from ltbench.training.devices import resolve_precision


def test_speed_measurement_on_tiny_data(tmp_path):
    write_image_folder(tmp_path / "folder", num_classes=5, train_per_class=6, test_per_class=2)
    data.materialize("imagefolder", str(tmp_path / "folder"), 3, 0, str(tmp_path / "results/data/folder-lt3/index.json"),
                     str(tmp_path / "results/data/folder-lt3/cache.npz"))
    config = tiny_config()
    config["benchmarks"] = {"resnet32-folder": {"arch": "resnet32", "dataset": "folder", "imbalance_ratio": 3}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/speed/measure.py"), "--benchmark", "resnet32-folder", "--epochs", "2",
         "--strategies", "ce,effective_number", "--seeds", "0,1",
         "--trainers", "reference,pipeline:compile=bogus,pipeline,pipeline:pack=2,pipeline:precision=fp32",
         "--out", "speed.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "LTBENCH_COMMIT": "abc123"},
    )
    # the trainer that fails is recorded and the others still measured
    assert proc.returncode == 1 and "1 trainer(s) failed: pipeline:compile=bogus" in proc.stderr, proc.stderr
    result = json.loads((tmp_path / "speed.json").read_text())
    assert "unknown compile mode 'bogus'" in result["errors"]["pipeline:compile=bogus"]
    assert result["commit"] == "abc123"
    trainers = ["reference", "pipeline", "pipeline:pack=2", "pipeline:precision=fp32"]
    assert [row["trainer"] for row in result["speed"]] == trainers
    assert [row["runs_per_process"] for row in result["speed"]] == [1, 1, 2, 1]
    auto = resolve_precision("auto", torch.device("cpu"))  # the tiny config's precision: bf16 where the CPU has it
    assert [row["precision"] for row in result["speed"]] == ["fp32", auto, auto, "fp32"]
    assert all(row["steady_epoch_s"] > 0 and row["tflops"] > 0 and row["process_wall_s"] > 0 for row in result["speed"])
    assert result["speed"][0]["speedup_per_run"] == 1.0
    assert {(r["trainer"], r["strategy"], r["seeds"]) for r in result["accuracy"]} == {
        (t, s, 2) for t in trainers for s in ("ce", "effective_number")}
    assert abs(result["forward_gflop_per_image"] - 0.1377) < 0.001  # ResNet-32, 5 classes
    assert "| trainer | runs_per_process | precision | first_epoch_s | steady_epoch_s |" in proc.stdout


def test_conv_probe_times_packed_and_plain_steps(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/speed/conv_probe.py"), "--runs", "1,3", "--batch", "4", "--steps", "1",
         "--warmup", "1", "--out", str(tmp_path / "probe.json")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "LTBENCH_COMMIT": "abc123"},
    )
    assert proc.returncode == 0, proc.stderr
    probe = json.loads((tmp_path / "probe.json").read_text())
    assert probe["commit"] == "abc123" and probe["device"] == "cpu"
    assert {(r["runs"], r["layout"], r["how"]) for r in probe["rows"]} == {
        (1, layout, "packed") for layout in ("channels_last", "contiguous")} | {
        (3, layout, how) for layout in ("channels_last", "contiguous") for how in ("packed", "plain")}
    assert all(r["step_ms"] > 0 and r["step_ms_per_run"] == r["step_ms"] / r["runs"] for r in probe["rows"])


def test_conv_probe_times_compiled_steps_and_evaluation_batches(tmp_path):
    """What a loan may switch on, measured in its probe: a compiled packed step (here TorchDynamo's eager backend:
    inductor takes minutes on 2 CPU cores) and the evaluation at several batch sizes; and the profile of a packed
    step."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/speed/conv_probe.py"), "--runs", "2", "--batch", "4", "--steps", "1",
         "--warmup", "1", "--how", "packed", "--layouts", "channels_last", "--compile", "default",
         "--compile-backend", "eager", "--eval-batches", "8,32", "--eval-images", "32", "--profile", "2",
         "--profile-out", str(tmp_path / "profile.txt"), "--out", str(tmp_path / "probe.json")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "probe.json").read_text())["rows"]
    assert [(r["how"], r["compile"], r.get("eval_batch")) for r in rows] == [
        ("packed", "off", None), ("packed", "default", None), ("eval", "off", 8), ("eval", "off", 32)]
    assert all(r["step_ms"] > 0 and r["warmup_s"] > 0 for r in rows)
    table = (tmp_path / "profile.txt").read_text()  # the packed step's operators, by time
    assert "aten::convolution" in table and "CPU total" in table
