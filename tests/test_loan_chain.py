"""A loan as a chain of calls (scripts/speed/loan.py, chain.py, estimate.py, returns.py, phases.py): a whole
chained loan on tiny data on the CPU with a simulated device clock, and its rules on their own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from conftest import REPO
from test_device_plan import group, members, run_loan, tiny_loan_tree

sys.path.insert(0, str(REPO / "scripts/speed"))

from chain import ChainState, SimulatedClock, call_budgets, device_left_at_start, plan_call  # noqa: E402
from estimate import (Costs, GroupPlan, arch_pace, card_of, read_log, relative_work,  # noqa: E402
                      unit_seconds)
from loan import choose_compile, unpack  # noqa: E402
from phases import PHASES, process_phases  # noqa: E402
from returns import MIB, Limits, Returns  # noqa: E402

SEEDS = (0, 1)
# Two units side by side: resnet8-folder trains two groups (ce + inverse_freq, then oversampling, whose epoch is
# longer), resnet8-again one. 1,100 s of device time: two calls of 500 s (a third, of 85 s, is not worth one);
# every epoch takes 60 s of the simulated clock, so the first call ends while oversampling trains: its first
# group ends at 360 s (6 epochs), the call stops units at a checkpoint from 430 s on (500 less the reserve and an
# epoch) and at 490 s whatever they do. At most 3 files a call.
CHAIN = ["--epochs", "6", "--unit", "resnet8-folder=ce,inverse_freq,oversampling", "--unit", "resnet8-again=ce",
         "--probe", "0", "--poll", "0.05", "--checkpoint-every", "1", "--simulate-epoch-s", "60", "--call-limit", "500",
         "--gap", "5", "--min-call", "150", "--reserve", "10", "--max-files", "3"]


def runs(benchmark: str, *strategies: str) -> list[str]:
    return [f"{benchmark}/{s}/seed{k}" for s in strategies for k in SEEDS]


def test_a_chained_loan_resumes_a_unit_stopped_mid_way_and_spreads_its_return_over_two_calls(tmp_path):
    machine, reference = tmp_path / "machine", tmp_path / "reference"
    tiny_loan_tree(machine, SEEDS, test_per_class=100)  # 400 test images: an epoch lasts long enough to be watched
    shutil.copytree(machine, reference)

    first, one = run_loan(machine, "--out", "out1", "--device-left", "1100", *CHAIN)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (one["budget_s"], one["last"], one["next"]) == (500.0, False, "train")
    folder, again = one["units"]
    assert again["status"] == "done" and again["runs_finished"] == runs("resnet8-again", "ce")
    assert folder["status"].startswith("paused at a checkpoint")
    assert sorted(folder["runs_finished"]) == sorted(runs("resnet8-folder", "ce", "inverse_freq"))
    segments = read_log(machine / "results/speed/train-resnet8-folder-c1.log")
    stopped = segments[-1].epochs[-1].number  # the oversampling group's last epoch in call 1
    assert len(segments) == 2 and 1 <= stopped < 6
    assert all((machine / f"results/checkpoints/resnet8-folder/oversampling/seed{k}.pt").is_file() for k in SEEDS)
    # four files to return (two archives, the stopped unit's logs, the JSON), three go: the logs wait
    out1 = sorted(p.name for p in (machine / "out1").iterdir())
    assert out1 == ["loan-c1.json", "runs-resnet8-again-c1-ce.tar.gz", "runs-resnet8-folder-c1-part1.tar.gz"]
    assert one["pending"] == ["logs-c1.tar.gz"]
    assert all((machine / "results/speed/pending" / name).is_file() for name in out1[1:])  # copied, not moved

    time.sleep(1)  # the next call starts later; the chain's state gives its device time
    second, two = run_loan(machine, "--out", "out2", *CHAIN)
    assert second.returncode == 0, second.stdout + second.stderr
    chain = json.loads((machine / "results/speed/chain.json").read_text())
    assert two["device_left_s"] == pytest.approx(1100 - one["elapsed_s"] - two["phases_s"]["transfer"], abs=0.2)
    assert two["last"] and two["next"] == "done" and chain["pending"] == []
    assert [u["status"] for u in two["units"]] == ["done", "done"]
    log = (machine / "results/speed/train-resnet8-folder-c2.log").read_text()
    assert f"after epoch {stopped}\n" in log and "resnet8-folder/ce/" not in log  # only the stopped group, resumed
    out2 = sorted(p.name for p in (machine / "out2").iterdir())
    assert out2 == ["loan-c2.json", "logs-c1.tar.gz", "runs-resnet8-folder-c2-oversampling.tar.gz"]

    # every run came back once, over the two calls, and the stopped unit's logs with them
    archives = [machine / d / n for d, names in (("out1", out1), ("out2", out2)) for n in names if n.startswith("runs")]
    every_run = runs("resnet8-folder", "ce", "inverse_freq", "oversampling") + runs("resnet8-again", "ce")
    assert sorted(members(*archives)) == sorted(f"results/runs/{run}/{f}" for run in every_run
                                                for f in ("history.json", "predictions.npz"))
    with tarfile.open(machine / "out2/logs-c1.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["stderr-resnet8-folder-c1.log", "train-resnet8-folder-c1.log"]
        first_log = tar.extractfile("train-resnet8-folder-c1.log").read().decode()
        assert "resnet8-folder/oversampling/seed0] epoch 1/6" in first_log
    record = json.loads((machine / "out2/loan-c2.json").read_text())
    assert record["chain"]["calls"] == 2 and record["chain"]["runs_finished"] == 8
    assert set(record["chain"]["phases_s"]) == set(PHASES) and record["chain"]["phases_s"]["training"] > 0
    assert record["phases_s"]["transfer"] > 0  # the device time between the calls

    # the resumed runs are the runs an uninterrupted training gives
    unpack(reference / "results/data")
    config = machine / "results/speed/config-resnet8-folder.yaml"
    subprocess.run([sys.executable, "scripts/speed/train_runs.py", "--config", str(config), "--benchmark",
                    "resnet8-folder", "--run", "oversampling:0", "--run", "oversampling:1", "--threads", "1",
                    "--log", "whole.log"], cwd=reference, check=True, capture_output=True)
    for k in SEEDS:
        run = f"results/runs/resnet8-folder/oversampling/seed{k}"
        resumed, whole = np.load(machine / run / "predictions.npz"), np.load(reference / run / "predictions.npz")
        assert all(np.array_equal(resumed[name], whole[name]) for name in whole.files)
        epochs = [json.loads((root / run / "history.json").read_text())["epochs"] for root in (machine, reference)]
        assert [[(e["train_loss"], e["test_acc"]) for e in h] for h in epochs][0] == \
            [[(e["train_loss"], e["test_acc"]) for e in h] for h in epochs][1]


def test_a_unit_that_outlasts_a_loan_carries_its_checkpoints_into_the_next(tmp_path):
    first, second = tmp_path / "loan1", tmp_path / "loan2"
    for machine in (first, second):  # two loans: two bare machines
        tiny_loan_tree(machine, SEEDS, test_per_class=100)
    unit = ["--epochs", "6", "--unit", "resnet8-folder=oversampling", "--probe", "0", "--poll", "0.05",
            "--checkpoint-every", "1", "--simulate-epoch-s", "60", "--gap", "5", "--min-call", "150", "--reserve", "10",
            "--carry-over"]
    proc, one = run_loan(first, "--out", "out", "--device-left", "300", *unit)  # one call of 295 s: 4 or 5 epochs
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert one["last"] and one["units"][0]["status"].startswith("stopped at a checkpoint")
    stopped = read_log(first / "results/speed/train-resnet8-folder-c1.log")[-1].epochs[-1].number
    assert 1 <= stopped < 6
    assert sorted(p.name for p in (first / "out").iterdir()) == [
        "checkpoints-resnet8-folder.tar.gz", "loan-c1.json", "logs-c1.tar.gz"]
    assert sorted(members(first / "out/checkpoints-resnet8-folder.tar.gz")) == [
        f"results/checkpoints/resnet8-folder/oversampling/seed{k}.pt" for k in SEEDS]
    (second / "results/speed").mkdir()  # the next loan carries the archive there
    shutil.copy(first / "out/checkpoints-resnet8-folder.tar.gz", second / "results/speed")
    proc, two = run_loan(second, "--out", "out", "--device-left", "1000", *unit)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert two["units"][0]["status"] == "done" and two["runs_finished"] == 2
    assert f"after epoch {stopped}\n" in (second / "results/speed/train-resnet8-folder-c1.log").read_text()


def test_a_call_is_sized_from_the_device_time_left(tmp_path):
    plan = plan_call(950, 570, 500, 5, 40)  # a full call, then one of 445 s
    assert (plan.budget, plan.last, plan.later) == (500, False, (440,))
    assert plan_call(400, 570, 500, 5, 40) == plan_call(400, 570, 500, 5, 40)
    assert (plan_call(400, 570, 500, 5, 40).budget, plan_call(400, 570, 500, 5, 40).last) == (395, True)
    assert plan_call(540, 570, 500, 5, 40).last  # 35 s would be left after a full call: not worth a call
    assert call_budgets(840, 588, 30, 90) == [588, 192]  # a 14-minute loan: a full call and a short one
    assert call_budgets(20, 588, 30, 90) == [0.0]  # nothing to train in: a call that only returns
    single = plan_call(None, 570, 588, 30, 90)  # no device time known: one call of --budget
    assert (single.budget, single.last, single.device_left) == (570, True, None)
    state = ChainState("k", device_left_s=450.0, ended_at=1000.0)
    assert device_left_at_start(None, state, now=1012.0) == pytest.approx(438.0)  # idle and transfers count
    assert device_left_at_start(400.0, state, now=1012.0) == 400.0  # the device tool's own count wins
    assert device_left_at_start(None, ChainState("k"), now=1012.0) is None
    state.save(tmp_path / "chain.json")
    assert ChainState.load("k", tmp_path / "chain.json").device_left_s == 450.0
    assert ChainState.load("other", tmp_path / "chain.json").device_left_s is None  # another chain begins


def test_a_simulated_clock_follows_the_unit_furthest_on():
    clock = SimulatedClock(60)
    clock.launch("a")
    clock.launch("b")
    clock.observe({"a": 2, "b": 1})
    assert clock.elapsed() == pytest.approx(120, abs=1)
    clock.observe({"a": 2, "b": 5})  # side by side: the furthest sets the clock
    assert clock.elapsed() == pytest.approx(300, abs=1)
    clock.launch("c")  # after the others: from the clock's time then
    clock.observe({"a": 2, "b": 5, "c": 1})
    assert clock.elapsed() == pytest.approx(360, abs=1)


def test_the_return_keeps_to_its_limits_and_copies(tmp_path):
    sizes = {"a": 0.4, "b": 0.4, "big": 1.2, "c": 0.4, "d": 0.1}  # MiB
    paths = []
    for name, mib in sizes.items():
        paths.append(tmp_path / f"{name}.bin")
        paths[-1].write_bytes(b"x" * int(mib * MIB))
    returns = Returns(tmp_path / "out", Limits(files=4, file_mib=1.0, total_mib=1.0), keep_files=1, keep_bytes=1024)
    left = returns.place(paths)
    # a, b go (0.8 MiB); big is over 1 MiB alone; c would pass 1 MiB together; d fits, the fourth file kept
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.bin", "b.bin", "d.bin"]
    assert [p.name for p in left] == ["big.bin", "c.bin"] and all(p.is_file() for p in paths)
    record = tmp_path / "loan.json"
    record.write_text("{}")
    assert not returns.put(record) and returns.put(record, kept=True)  # the room kept for the call's record
    later = Returns(tmp_path / "out", Limits(files=5, file_mib=1.0, total_mib=2.0), keep_bytes=1024)
    assert later.files == 4 and later.place([tmp_path / "c.bin"]) == [tmp_path / "c.bin"]  # those there count


def test_paces_come_from_the_card_and_the_architecture():
    assert (card_of("NVIDIA H200"), card_of("NVIDIA H100 80GB HBM3"), card_of("cpu")) == ("H200", "H100", None)
    assert "not measured on an H100" in arch_pace("H100", "resnet32").source
    assert "measured" in arch_pace("H200", "resnet32").source and arch_pace("H200", "resnet18") is None
    # 15 runs of ResNet-32 on CIFAR-100-LT (10,847 images, 85 steps): an epoch took 2.01 s on the H200
    resnet = GroupPlan("resnet32", tuple(f"b/s{i}/seed0" for i in range(15)), 200, (10_847, 0, 10_847), 128, 10_000)
    assert Costs("H200").epoch_s(resnet, 0) == pytest.approx(2.01, rel=0.03)
    # VGG-16-BN from its own steps (the ratio-50 subset: 12,608 images, 99 steps) and evaluation
    vgg = GroupPlan("vgg16bn", resnet.tags, 200, (12_608, 0, 12_608), 128, 10_000)
    assert Costs("H200").epoch_s(vgg, 0) == pytest.approx(99 * (4.85 + 1.50 * 15) / 1000 + 10 * 9.8 * 15 / 1000)
    assert Costs("H100").epoch_s(vgg, 0) == pytest.approx(Costs("H200").epoch_s(vgg, 0) * 4.8 / 3.35)
    assert Costs(None).epoch_s(resnet, 0) is None and Costs(None).group_s(resnet) is None
    # a unit's process: its start, its groups' epochs (a resumed group from its checkpoint) and its outputs
    whole = unit_seconds([resnet], Costs("H200"))
    resumed = unit_seconds([resnet], Costs("H200"), {resnet.tags[0]: 150})
    assert whole - resumed == pytest.approx(150 * Costs("H200").epoch_s(resnet, 0))
    # a group whose epoch changes (deferred resampling): each stretch at its own length
    deferred = GroupPlan("resnet32", ("b/drs/seed0",), 10, (1000, 8, 4000), 100, 0)
    assert Costs("H200").group_s(deferred) == pytest.approx(8 * Costs("H200").epoch_s(deferred, 0)
                                                            + 2 * Costs("H200").epoch_s(deferred, 9))
    assert relative_work(deferred, 9) == 4 * relative_work(deferred, 0)


def test_a_compiled_step_is_used_only_where_it_wins():
    rows = [{"how": "packed", "layout": "channels_last", "compile": "off", "step_ms": 20.0, "warmup_s": 2.0},
            {"how": "packed", "layout": "contiguous", "compile": "off", "step_ms": 28.0, "warmup_s": 2.0},
            {"how": "packed", "layout": "channels_last", "compile": "reduce-overhead", "step_ms": 12.0, "warmup_s": 62.0},
            {"how": "packed", "layout": "channels_last", "compile": "default", "step_ms": 16.0, "warmup_s": 42.0}]
    # a unit of 85 x 200 steps: CUDA graphs save 136 s for 60 s of compiling, default 68 s for 40
    assert choose_compile(rows, "channels_last", steps=85 * 200, builds=1) == "reduce-overhead"
    assert choose_compile(rows, "channels_last", steps=85 * 200, builds=3) is None  # three groups or calls: 180 s
    assert choose_compile(rows, "channels_last", steps=1000, builds=1) is None  # too few steps to pay it back
    assert choose_compile(rows[:2], "channels_last", steps=85 * 200, builds=1) is None  # nothing compiled probed


def test_the_phases_of_a_process_come_from_its_stamped_log(tmp_path):
    g = group(("ce", "bs"), 4, 100)  # two runs of 100 images an epoch
    line = ("@{:.1f} [b/{}/seed0] epoch {}/4 loss 1.0 test acc 10.00 (best 10.00) lr 0.1; epoch in {:.2f} s,"
            " {} train img/s\n")
    # 2.0 s of training, then 0.5; a checkpoint of 0.5 s after the second epoch
    epochs = [(110.0, 4.0, 100), (111.0, 1.0, 400), (112.5, 1.0, 400), (113.5, 1.0, 400)]
    text = "".join(line.format(t, run, n, seconds, rate) for n, (t, seconds, rate) in enumerate(epochs, start=1)
                   for run in ("ce", "bs"))
    (tmp_path / "train.log").write_text(text + "@114.5 [b/ce/seed0] done: best\n@115.0 [b/bs/seed0] done: best\n")
    phases = process_phases(read_log(tmp_path / "train.log"), [g], launched=100.0, ended=116.0, finished=True)
    assert phases["start"] == pytest.approx(110 - 4 - 100)  # before the first epoch began
    assert phases["compile"] == pytest.approx((2.0 - 0.5) + (2.0 - 0.5))  # the first epoch's excess, both parts
    assert phases["training"] == pytest.approx(4 * 0.5) and phases["evaluation"] == pytest.approx(4 * 0.5)
    assert phases["writing"] == pytest.approx(0.5 + (115 - 113.5) + (116 - 115))  # checkpoint, outputs, the end
    stopped = process_phases(read_log(tmp_path / "train.log"), [g], 100.0, 118.0, finished=False)
    assert stopped["idle"] == pytest.approx(118 - 115)  # a stopped process's unfinished epoch
