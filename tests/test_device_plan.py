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


def tiny_loan_tree(tmp_path, seeds=(0, 1), test_per_class=3):
    """A copy of scripts/ with a carried tiny subset (results/data/carried.tar.xz) and a config of two
    ResNet-8 benchmarks on it, as a lent machine would have them."""
    shutil.copytree(REPO / "scripts", tmp_path / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    write_image_folder(tmp_path / "folder", num_classes=4, train_per_class=10, test_per_class=test_per_class)
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


def run_loan(tree, *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    """One call of ``loan.py`` in ``tree`` on its tiny config, one thread a unit; its process and the JSON it
    prints (None if it printed none)."""
    # a probe of the tiny models takes seconds alone, but a loaded 2-core machine can stretch it past loan.py's
    # default of 60 s: the tests give it 300 (a test that wants a probe to fail says so)
    cmd = [sys.executable, "scripts/speed/loan.py", "--config", "tiny.yaml", "--threads", "1", "--probe-batch", "4",
           "--probe", "300", *args]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LTBENCH_COMMIT": "c0ffee"})
    printed = proc.stdout.split("loan: ", 1)
    return proc, json.loads(printed[1].splitlines()[0]) if len(printed) == 2 else None


def members(*archives) -> list[str]:
    """The names in tar archives, together."""
    names = []
    for archive in archives:
        with tarfile.open(archive) as tar:
            names += tar.getnames()
    return names


def test_a_loan_trains_units_side_by_side_and_brings_back_their_runs(tmp_path):
    tiny_loan_tree(tmp_path)
    units = ["resnet8-folder=ce,inverse_freq,balanced_softmax",
             "resnet8-folder=oversampling",  # a small group beside the big unit of its benchmark
             "resnet8-again=ce,oversampling"]  # two groups, one after the other, in one process
    proc, summary = run_loan(tmp_path, "--out", "out", "--epochs", "2", "--poll", "0.5", "--max-files", "6",
                             "--probe-eval-batches", "8", "--probe-profile", "1",
                             *[a for unit in units for a in ("--unit", unit)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unpacked results/data/carried.tar.xz: folder-lt5" in proc.stdout
    assert proc.stdout.count("probe resnet8 x6") == 2  # once per architecture, for its largest group, and once more
    # for the evaluation batches and the profile, whose files go back first
    assert [u["name"] for u in summary["units"]] == ["resnet8-folder", "resnet8-folder-2", "resnet8-again"]
    assert [u["status"] for u in summary["units"]] == ["done"] * 3 and summary["runs_finished"] == 12
    assert summary["units"][0]["layout"] in ("channels_last", "contiguous")
    # the probe's three files, three archives and the call's JSON: one archive waits, and a call that only returns
    # brings it back
    archives = ["runs-resnet8-again-c1-part1.tar.gz", "runs-resnet8-folder-2-c1-oversampling.tar.gz",
                "runs-resnet8-folder-c1-part1.tar.gz"]
    probed = ["probe-resnet8-more.json", "probe-resnet8.json", "profile-resnet8.txt"]
    first = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(first) == 6 and {"loan-c1.json", *probed} < set(first) and len(summary["pending"]) == 1
    assert summary["next"] == "collect"
    collect, again = run_loan(tmp_path, "--out", "back", "--collect", *[a for unit in units for a in ("--unit", unit)])
    assert collect.returncode == 0 and again["next"] == "done" and again["pending"] == []
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == sorted([*summary["pending"], "loan-c2.json"])
    assert sorted(set(first) - {"loan-c1.json", *probed} | set(summary["pending"])) == archives
    names = members(*[tmp_path / folder / name for name in archives for folder in ("out", "back")
                      if (tmp_path / folder / name).is_file()])
    assert sorted(names) == sorted(f"results/runs/{b}/{s}/seed{k}/{f}" for b, strategies in (
        ("resnet8-folder", ("ce", "inverse_freq", "balanced_softmax", "oversampling")),
        ("resnet8-again", ("ce", "oversampling"))) for s in strategies for k in (0, 1)
        for f in ("history.json", "predictions.npz"))
    history = json.loads((tmp_path / "results/runs/resnet8-folder/balanced_softmax/seed1/history.json").read_text())
    assert history["provenance"]["commit"] == "c0ffee" and history["recipe"]["epochs"] == 2
    assert history["provenance"]["trained_with"] == [f"{s}/seed{k}" for s in ("ce", "inverse_freq", "balanced_softmax")
                                                     for k in (0, 1)]
    assert history["provenance"]["memory_format"] == summary["units"][1]["layout"]
    sys.path.insert(0, str(REPO / "scripts/speed"))
    from estimate import read_log  # the pace reads the trainer's own lines: both groups, each epoch with its time

    segments = read_log(tmp_path / "results/speed/train-resnet8-again-c1.log")
    assert [sorted(s.tags) for s in segments] == [[f"resnet8-again/{s}/seed{k}" for k in (0, 1)]
                                                  for s in ("ce", "oversampling")]
    assert all(len(s.epochs) == 2 and s.epochs[-1].t > 0 and s.done == s.tags for s in segments)


def epoch_lines(epochs: int, seconds: list[float], first: int = 1, runs: tuple[str, ...] = ("ce", "bs")) -> str:
    """Training-log lines as ``ltbench.training.train`` prints them: a line per run for epochs first, first + 1, ..."""
    line = ("[b/{}/seed0] epoch {}/{} loss 2.3 test acc 10.00 (best 10.00) lr 0.1000; epoch in {:.2f} s,"
            " 100 train img/s, eta 1:00:00\n")
    return "".join(line.format(run, first + i, epochs, s) for i, s in enumerate(seconds) for run in runs)


def group(strategies: tuple[str, ...], epochs: int, images: int, arch: str = "resnet32", runs: int = 1):
    """An ``estimate.GroupPlan`` of ``strategies`` x seeds 0.. (runs each) on benchmark ``b``."""
    sys.path.insert(0, str(REPO / "scripts/speed"))
    from estimate import GroupPlan

    return GroupPlan(arch, tuple(f"b/{s}/seed{k}" for s in strategies for k in range(runs)), epochs,
                     (images, 0, images), 128, 10_000)


def test_the_pace_of_a_training_comes_from_the_times_of_its_epochs(tmp_path):
    from estimate import Pace

    log, pace = tmp_path / "train.log", Pace([group(("ce", "bs"), 200, 10_000)], need=3)
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
    assert pace.remaining(log) == pytest.approx(195 * 2.0)  # the last measured pace holds meanwhile
    log.write_text(log.read_text() + epoch_lines(200, [1.0, 1.0, 1.0], first=6))
    assert pace.remaining(log) == pytest.approx(192 * 1.0)


def test_a_short_group_first_does_not_hide_a_long_one(tmp_path):
    from estimate import Costs, Pace, relative_work

    short, long = group(("ce", "bs"), 10, 10_000), group(("os",), 10, 40_000)  # oversampling: 4x the images
    log, pace = tmp_path / "train.log", Pace([short, long], need=2)
    log.write_text(epoch_lines(10, [5.0, 2.0, 2.0]))
    assert pace.remaining(log) is None
    log.write_text(log.read_text() + epoch_lines(10, [2.0, 2.0], first=4))
    ratio = relative_work(long, 0) / relative_work(short, 0)  # no card: by FLOPs, 3 an image trained, 1 evaluated
    assert ratio == pytest.approx((3 * 40_000 + 10_000) / (2 * (3 * 10_000 + 10_000)))
    assert pace.remaining(log) == pytest.approx(5 * 2.0 + 10 * 2.0 * ratio)  # not (5 + 10) x 2.0
    done = "".join(f"[b/{r}/seed0] done: best test acc 10.00\n" for r in ("ce", "bs"))
    log.write_text(log.read_text() + epoch_lines(10, [2.0] * 5, first=6) + done + epoch_lines(10, [9.0], runs=("os",)))
    assert pace.remaining(log) == pytest.approx(9 * 2.0 * ratio)  # the long group began: the short one's pace, scaled
    on_a_card = Pace([short, long], Costs("H200"), need=2)  # a card with a measured pace: its costs' ratio
    log.write_text(epoch_lines(10, [5.0, 2.0, 2.0]))
    on_a_card.remaining(log)
    log.write_text(log.read_text() + epoch_lines(10, [2.0, 2.0], first=4))
    ratio = Costs("H200").epoch_s(long, 0) / Costs("H200").epoch_s(short, 0)
    assert on_a_card.remaining(log) == pytest.approx(5 * 2.0 + 10 * 2.0 * ratio)


def test_the_pace_reads_only_whole_epoch_lines_and_counts_from_the_last_epoch(tmp_path):
    from estimate import Pace, read_log

    log, pace = tmp_path / "train.log", Pace([group(("ce",), 200, 10_000)], need=2)
    resumed = "[b/ce/seed0] resuming from ... after epoch 100\n[b/ce/seed0] epoch 101: the weights switch on\n"
    log.write_text(resumed + epoch_lines(200, [9.0, 2.0], first=101, runs=("ce",)) + "[b/ce/seed0] epoch 103/200 loss"
                   " 2.3 test acc 10.00 (best 10.00) lr 0.1000; epoch in 2.")  # a line still being written
    assert [(e.number, e.seconds) for e in read_log(log)[-1].epochs] == [(101, 9.0), (102, 2.0)]
    assert pace.remaining(log) is None  # the mark
    log.write_text(resumed + epoch_lines(200, [9.0, 2.0, 2.0, 2.0], first=101, runs=("ce",)))
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


def test_a_run_is_in_one_unit_and_units_of_one_benchmark_are_named_apart(capsys):
    sys.path.insert(0, str(REPO / "scripts/speed"))
    import loan

    config = str(REPO / "config.yaml")
    with pytest.raises(SystemExit):
        loan.parse_args(["--config", config, "--unit", "b=ce", "--unit", "b=focal,ce"])
    assert "one run, one unit: b/ce/seed0 is in the units b and b-2" in capsys.readouterr().err
    args = loan.parse_args(["--config", config, "--unit", "b=ce,drw", "--unit", "b=ldam_drw",
                            "--unit", "b=inverse_freq;seeds=0;precision=fp32;root=fp32",
                            "--unit", "b=inverse_freq;seeds=0;root=other"])
    assert [u.name for u in args.unit] == ["b", "b-2", "b-fp32", "b-other"]
    assert (args.unit[2].seeds, args.unit[2].precision, args.unit[2].workdir) == (
        [0], "fp32", loan.KEEP / "roots/fp32")
    with pytest.raises(SystemExit):
        loan.parse_args(["--config", config, "--unit", "b=ce;seed=0"])
