"""The speed benchmark entry point runs both trainers on CPU and reports comparable numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from conftest import REPO, tiny_config
from datagen import write_image_folder
from ltbench import data


def test_speed_benchmark_on_tiny_data(tmp_path):
    write_image_folder(tmp_path / "folder", num_classes=5, train_per_class=6, test_per_class=2)
    data.materialize("imagefolder", str(tmp_path / "folder"), 3, 0, str(tmp_path / "results/data/folder-lt3/index.json"),
                     str(tmp_path / "results/data/folder-lt3/cache.npz"))
    config = tiny_config()
    config["benchmarks"] = {"resnet32-folder": {"arch": "resnet32", "dataset": "folder", "imbalance_ratio": 3}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/benchmark/speed.py"), "--benchmark", "resnet32-folder", "--epochs", "2",
         "--strategies", "ce,effective_number", "--out", "speed.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "speed.json").read_text())
    assert [row["trainer"] for row in result["speed"]] == ["pipeline", "reference"]
    assert all(row["steady_epoch_s"] > 0 and row["tflops"] > 0 for row in result["speed"])
    assert {(r["trainer"], r["strategy"]) for r in result["accuracy"]} == {
        (t, s) for t in ("pipeline", "reference") for s in ("ce", "effective_number")}
    assert abs(result["forward_gflop_per_image"] - 0.1377) < 0.001  # ResNet-32, 5 classes
    assert "| trainer | first_epoch_s | steady_epoch_s |" in proc.stdout
