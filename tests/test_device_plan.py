"""The device plan runs on a CPU: a loan's call (scripts/speed/loan.py) trains its units side by side
and archives the runs' own files within the limits of what a call brings back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from conftest import REPO, tiny_config
from datagen import write_image_folder
from ltbench.datasets import data


def test_a_unit_too_large_for_one_archive_goes_back_run_by_run(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "scripts/speed"))
    import pack_runs

    monkeypatch.chdir(tmp_path)
    unit = tmp_path / "results/runs/b/s"
    for seed, size in ((0, 300_000), (1, 300_000), (2, 900_000)):  # incompressible bytes
        (unit / f"seed{seed}").mkdir(parents=True)
        (unit / f"seed{seed}/history.json").write_text("{}")
        (unit / f"seed{seed}/predictions.npz").write_bytes(os.urandom(size))
    (unit / "seed3").mkdir()  # unfinished: no files, not packed
    assert pack_runs.main(["--benchmark", "b", "--strategy", "s", "--out-dir", "one", "--limit-mib", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["runs-b-s.tar.gz"]
    # 0.5 MiB: the unit splits into one archive per run, and the run that alone is too large is named
    assert pack_runs.main(["--benchmark", "b", "--strategy", "s", "--out-dir", "split", "--limit-mib", "0.5"]) == 1
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == ["runs-b-s-seed0.tar.gz", "runs-b-s-seed1.tar.gz"]
    with tarfile.open(tmp_path / "split/runs-b-s-seed1.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["results/runs/b/s/seed1/history.json", "results/runs/b/s/seed1/predictions.npz"]


def tiny_loan_tree(tmp_path, seeds=(0, 1)):
    """A copy of scripts/ with a carried tiny subset (results/data/carried.tar.xz) and a config of two
    ResNet-8 benchmarks on it, as a lent machine would have them."""
    shutil.copytree(REPO / "scripts", tmp_path / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    write_image_folder(tmp_path / "folder", num_classes=4, train_per_class=10, test_per_class=3)
    subset = tmp_path / "results/data/folder-lt5"
    data.materialize("imagefolder", str(tmp_path / "folder"), 5, 0, str(subset / "index.json"),
                     str(subset / "cache.npz"))
    with tarfile.open(tmp_path / "results/data/carried.tar.xz", "w:xz") as tar:
        tar.add(subset, arcname="folder-lt5")
    shutil.rmtree(subset)
    config = tiny_config()
    config["seeds"] = list(seeds)
    config["strategies"].update({"inverse_freq": {}, "balanced_softmax": {}, "oversampling": {}})
    config["datasets"] = {"folder": {"format": "imagefolder", "path": "folder"}}
    config["benchmarks"] = {name: {"arch": "resnet8", "dataset": "folder", "imbalance_ratio": 5}
                            for name in ("resnet8-folder", "resnet8-again")}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))


def test_a_loan_trains_units_side_by_side_and_brings_back_their_runs(tmp_path):
    tiny_loan_tree(tmp_path)
    strategies = "ce,inverse_freq,balanced_softmax,oversampling"  # oversampling: a group of its own
    cmd = [sys.executable, "scripts/speed/loan.py", "--config", "tiny.yaml", "--out", "out", "--epochs", "2",
           "--unit", f"resnet8-folder={strategies}", "--unit", f"resnet8-again={strategies}",
           "--probe-batch", "4", "--threads", "1", "--poll", "0.5", "--max-files", "2"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LTBENCH_COMMIT": "c0ffee"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unpacked results/data/carried.tar.xz: folder-lt5" in proc.stdout
    assert proc.stdout.count("probe resnet8 x8") == 1  # once per architecture
    summary = json.loads(proc.stdout.split("loan: ", 1)[1].splitlines()[0])
    assert [u["status"] for u in summary["units"]] == ["done", "done"]
    assert summary["units"][0]["layout"] in ("channels_last", "contiguous")
    # each unit's eight runs fit one archive; the call's two files are taken, so loan.json stays home
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "runs-resnet8-again-part1.tar.gz", "runs-resnet8-folder-part1.tar.gz"]
    with tarfile.open(tmp_path / "out/runs-resnet8-folder-part1.tar.gz") as tar:
        names = sorted(tar.getnames())
        history = json.load(tar.extractfile("results/runs/resnet8-folder/balanced_softmax/seed1/history.json"))
    assert names == sorted(f"results/runs/resnet8-folder/{s}/seed{k}/{f}" for s in strategies.split(",")
                           for k in (0, 1) for f in ("history.json", "predictions.npz"))
    assert history["provenance"]["commit"] == "c0ffee" and history["recipe"]["epochs"] == 2
    assert history["provenance"]["trained_with"] == [f"{s}/seed{k}" for s in ("ce", "inverse_freq", "balanced_softmax")
                                                     for k in (0, 1)]
    assert history["provenance"]["memory_format"] == summary["units"][1]["layout"]
    sys.path.insert(0, str(REPO / "scripts/speed"))
    from loan import progress  # the pace reads the trainer's own lines: both groups, each epoch with its time

    groups, begun, epochs, done, times = progress(tmp_path / "results/speed/train-resnet8-folder.log")
    assert (groups, begun, epochs, done, len(times)) == (2, 2, 2, 2, 2) and min(times) > 0


def epoch_lines(epochs: int, seconds: list[float], first: int = 1, runs: tuple[str, ...] = ("ce", "bs")) -> str:
    """Training-log lines as ``ltbench.training.train`` prints them: a line per run for epochs first, first + 1, ..."""
    line = ("[b/{}/seed0] epoch {}/{} loss 2.3 test acc 10.00 (best 10.00) lr 0.1000; epoch in {:.2f} s,"
            " 100 train img/s, eta 1:00:00\n")
    return "".join(line.format(run, first + i, epochs, s) for i, s in enumerate(seconds) for run in runs)


def test_the_pace_of_a_training_comes_from_the_times_of_its_epochs(tmp_path):
    sys.path.insert(0, str(REPO / "scripts/speed"))
    from loan import Pace

    log, pace = tmp_path / "train.log", Pace(need=3)
    assert pace.remaining(log) is None  # no log yet
    log.write_text(epoch_lines(200, [9.0]))
    assert pace.remaining(log) is None  # the first epoch carries the warm-up
    log.write_text(epoch_lines(200, [9.0, 3.0]))
    assert pace.remaining(log) is None  # the first look: the mark
    log.write_text(log.read_text() + epoch_lines(200, [2.0, 2.2], first=3))
    assert pace.remaining(log) is None  # two epochs past the mark: not yet
    log.write_text(log.read_text() + epoch_lines(200, [1.0], first=5))
    # the median of the epochs past the mark (2.0, 2.2, 1.0), whenever the look comes; the printed eta is ignored
    assert pace.remaining(log) == pytest.approx(195 * 2.0)
    pace.reset()  # another unit stopped: measured again from the next look
    assert pace.remaining(log) is None
    log.write_text(log.read_text() + epoch_lines(200, [1.0, 1.0, 1.0], first=6))
    assert pace.remaining(log) == pytest.approx(192 * 1.0)


def test_the_pace_of_a_process_counts_the_groups_still_to_train(tmp_path):
    sys.path.insert(0, str(REPO / "scripts/speed"))
    from loan import Pace

    log, pace = tmp_path / "train.log", Pace(need=2)
    first = "2 groups, which train one after another (...): ce+inverse_freq; oversampling\n"
    log.write_text(first + epoch_lines(10, [5.0, 2.0, 2.0]))
    assert pace.remaining(log) is None
    log.write_text(log.read_text() + epoch_lines(10, [2.0, 2.0], first=4))
    assert pace.remaining(log) == pytest.approx((5 + 10) * 2.0)  # 5 epochs of this group, 10 of the next
    log.write_text(log.read_text() + epoch_lines(10, [2.0] * 5, first=6) + epoch_lines(10, [4.0, 4.0]))
    assert pace.remaining(log) is None  # the second group began: its own pace


def test_the_pace_reads_only_whole_epoch_lines_and_counts_from_the_last_epoch(tmp_path):
    sys.path.insert(0, str(REPO / "scripts/speed"))
    from loan import Pace, progress

    log, pace = tmp_path / "train.log", Pace(need=2)
    resumed = "[b/ce/seed0] resuming from ... after epoch 100\n[b/ce/seed0] epoch 101: the weights switch on\n"
    log.write_text(resumed + epoch_lines(200, [9.0, 2.0], first=101) + "[b/ce/seed0] epoch 103/200 loss 2.3 test"
                   " acc 10.00 (best 10.00) lr 0.1000; epoch in 2.")  # a line still being written
    assert progress(log)[3:] == (102, [9.0, 2.0])
    assert pace.remaining(log) is None  # the mark
    log.write_text(resumed + epoch_lines(200, [9.0, 2.0, 2.0, 2.0], first=101))
    assert pace.remaining(log) == pytest.approx((200 - 104) * 2.0)  # a resumed group: epochs left from its last


def test_runs_fill_archives_in_order_up_to_the_limit(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "scripts/speed"))
    import pack_runs

    monkeypatch.chdir(tmp_path)
    for strategy in ("a", "b"):
        for seed in (0, 1, 2):
            run = tmp_path / f"results/runs/x/{strategy}/seed{seed}"
            run.mkdir(parents=True)
            (run / "history.json").write_text("{}")
            (run / "predictions.npz").write_bytes(os.urandom(400_000))
    written, errors = pack_runs.pack("x", ["a", "b"], tmp_path / "out", limit_mib=1.0)
    assert errors == [] and [p.name for p in written] == ["runs-x-part1.tar.gz", "runs-x-part2.tar.gz",
                                                          "runs-x-part3.tar.gz"]
    with tarfile.open(written[1]) as tar:  # two runs of 0.38 MiB to an archive, in order
        assert sorted({n.rsplit("/", 1)[0] for n in tar.getnames()}) == ["results/runs/x/a/seed2", "results/runs/x/b/seed0"]


def test_a_benchmark_has_one_unit_per_call(capsys):
    sys.path.insert(0, str(REPO / "scripts/speed"))
    import loan

    with pytest.raises(SystemExit):
        loan.main(["--unit", "b=ce", "--unit", "b=focal"])
    assert "b is given twice; list all its strategies in one --unit" in capsys.readouterr().err
