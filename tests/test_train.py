"""The training entry point in-process on a tiny cache: outputs, determinism, and failing early."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from ltbench.config import Benchmark, Strategy
from ltbench.training.devices import DeviceError
from ltbench.strategies import StrategyError
from ltbench.training.spec import Recipe, RunSpec, cosine_lr, learning_rate
from ltbench.training.train import run

RECIPE = Recipe(epochs=2, batch_size=8, lr=0.05, momentum=0.9, weight_decay=5e-4, crop_padding=4, flip=True,
                eval_batch_size=16)


def spec(subset, out, strategy="ce", module=None, device="cpu", seed=0, params=None, epochs=2, precision="fp32"):
    """A tiny ResNet-32 run on the ``subset`` fixture, writing into ``out``."""
    return RunSpec(
        benchmark=Benchmark("resnet32-tiny", "resnet32", "tiny", 5.0),
        strategy=Strategy(strategy, module or strategy, params or {}),
        seed=seed, recipe=replace(RECIPE, epochs=epochs), device=device, threads=1,
        index_path=str(subset / "index.json"), cache_path=str(subset / "cache.npz"),
        history_path=str(out / "history.json"), predictions_path=str(out / "predictions.npz"),
        model_path=str(out / "model.pt"), checkpoint_path=str(out / "checkpoint.pt"), checkpoint_every=1,
        precision=precision,
    )


def test_run_writes_history_and_predictions(subset, tmp_path):
    history = run(spec(subset, tmp_path, "balanced_softmax"))
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["best_test_acc"] == history["best_test_acc"]
    assert len(saved["epochs"]) == 2
    assert saved["class_counts"] == [10, 5, 3, 2]  # int(10 * 0.2 ** (i / 3)): 10, 5.85, 3.42, 2
    assert saved["logit_offsets"] is not None and saved["provenance"]["torch_version"] == torch.__version__
    epoch = saved["epochs"][-1]
    assert epoch["test_acc"] == pytest.approx(100 * sum(epoch["per_class_correct"]) / 12)
    with np.load(tmp_path / "predictions.npz") as pred:
        assert pred["labels"].shape == pred["best_pred"].shape == pred["last_pred"].shape == (12,)
        assert pred["best_logits"].shape == (12, 4)
        assert 100 * (pred["last_pred"] == pred["labels"]).mean() == pytest.approx(saved["final_test_acc"])
        best = saved["epochs"][saved["best_epoch"] - 1]["test_acc"]
        assert 100 * (pred["best_pred"] == pred["labels"]).mean() == pytest.approx(best)


def test_a_cosine_head_predicts_at_its_loss_scale(subset, tmp_path):
    """LDAM's test logits are its cosines times the loss's scale: softmax(30 cos) is what the model predicts."""
    history = run(spec(subset, tmp_path, "ldam_drw", params={"defer_epoch": 1, "scale": 30.0}))
    with np.load(tmp_path / "predictions.npz") as pred:
        logits, hits = pred["best_logits"].astype(np.float64), pred["best_pred"] == pred["labels"]
    assert 1.5 < np.abs(logits).max() <= 30.0 + 1e-3  # cosines lie in [-1, 1]
    assert 100 * hits.mean() == pytest.approx(history["best_test_acc"])


def test_same_seed_same_run_other_seed_other_run(subset, tmp_path):
    losses = [
        [e["train_loss"] for e in run(spec(subset, tmp_path / name, seed=seed))["epochs"]]
        for name, seed in (("a", 0), ("b", 0), ("c", 1))
    ]
    assert losses[0] == losses[1] and losses[0] != losses[2]


def test_bad_strategy_fails_before_training_and_writes_nothing(subset, tmp_path):
    with pytest.raises(StrategyError, match="strategy 'bad_beta' failed .*beta must be in"):
        run(spec(subset, tmp_path, "bad_beta", module="effective_number", params={"beta": 1.5}))
    assert list(tmp_path.iterdir()) == []


def test_bf16_and_fp32_runs_agree(subset, tmp_path):
    """The same run in bf16 (autocast, channels_last) and in fp32, one step per epoch (batch 32 > 20
    images): the first epoch's loss, at the same initial weights, within 1% (bf16 keeps 8 bits of
    mantissa, 0.4% per rounding; measured 0.15%). Later epochs are not compared: like any two
    numerically different trainings they drift apart (the second epoch here by about 10%). The
    precision is recorded in the provenance."""
    recipe = replace(RECIPE, batch_size=32)
    runs = {p: run(replace(spec(subset, tmp_path / p, "balanced_softmax", precision=p), recipe=recipe))
            for p in ("bf16", "fp32")}
    assert [runs[p]["provenance"]["precision"] for p in runs] == ["bf16", "fp32"]
    bf16, fp32 = (runs[p]["epochs"][0]["train_loss"] for p in runs)
    assert bf16 == pytest.approx(fp32, rel=0.01) and bf16 != fp32  # close, and bf16 did compute


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_demanding_a_gpu_without_one_fails_and_writes_nothing(subset, tmp_path):
    with pytest.raises(DeviceError, match="demands a GPU"):
        run(spec(subset, tmp_path, device="cuda"))
    assert list(tmp_path.iterdir()) == []


def test_cosine_schedule():
    assert cosine_lr(0.1, 0, 200) == pytest.approx(0.1)
    assert cosine_lr(0.1, 100, 200) == pytest.approx(0.05)
    assert cosine_lr(0.1, 199, 200) == pytest.approx(0.1 * 0.5 * (1 + np.cos(np.pi * 199 / 200)))


def test_linear_warmup_scales_the_first_epochs_of_the_cosine_schedule():
    recipe = replace(RECIPE, lr=0.1, epochs=200)
    assert [learning_rate(recipe, e) for e in (0, 100)] == [cosine_lr(0.1, 0, 200), cosine_lr(0.1, 100, 200)]
    warm = replace(recipe, warmup_epochs=5)  # as LDAM-DRW: lr * e / 5 in epochs e = 1..5
    assert [learning_rate(warm, e) for e in range(5)] == pytest.approx([cosine_lr(0.1, e, 200) * (e + 1) / 5
                                                                         for e in range(5)])
    assert learning_rate(warm, 0) == pytest.approx(0.02)
    assert [learning_rate(warm, e) for e in (5, 150)] == [cosine_lr(0.1, 5, 200), cosine_lr(0.1, 150, 200)]


def test_a_strategy_entry_sets_its_recipe_and_reduction_and_the_run_records_them(subset, tmp_path):
    history = run(spec(subset, tmp_path, "iw", "inverse_freq", epochs=2,
                       params={"recipe": {"warmup_epochs": 2, "weight_decay": 1e-4}, "reduction": "batch_mean"}))
    assert [e["lr"] for e in history["epochs"]] == pytest.approx([0.025, cosine_lr(0.05, 1, 2)])
    assert history["recipe"]["warmup_epochs"] == 2 and history["recipe"]["weight_decay"] == 1e-4
    assert history["method"]["loss"] == "CrossEntropy(reduction='batch_mean')"
    assert history["strategy"]["params"]["reduction"] == "batch_mean"
    with pytest.raises(StrategyError, match="reduces its own way, so reduction: batch_mean cannot apply"):
        run(spec(subset, tmp_path / "cui", "cui", "focal", params={"form": "sigmoid", "reduction": "batch_mean"}))


def crash_in_epoch(monkeypatch, epoch: int, train, specs) -> None:
    """Call ``train(specs)`` with ``Trainer.evaluate`` raising KeyboardInterrupt in ``epoch`` (1-based),
    as a kill would, after the checkpoints of the earlier epochs; then restore ``evaluate``."""
    from ltbench.training import train as train_module

    real_evaluate, calls = train_module.Trainer.evaluate, {"n": 0}

    def evaluate_then_die(self):
        calls["n"] += 1
        if calls["n"] == epoch:
            raise KeyboardInterrupt(f"killed during epoch {epoch}")
        return real_evaluate(self)

    monkeypatch.setattr(train_module.Trainer, "evaluate", evaluate_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(specs)
    monkeypatch.setattr(train_module.Trainer, "evaluate", real_evaluate)


def test_resume_after_a_crash_equals_an_uninterrupted_run(subset, tmp_path, monkeypatch):
    # minority synthesis from epoch 2 on: its feature banks must survive the restart too
    params = {"defer_epoch": 1}
    whole = run(spec(subset, tmp_path / "whole", "minority_synthesis", params=params, epochs=4))
    crashed = spec(subset, tmp_path / "crash", "minority_synthesis", params=params, epochs=4)
    crash_in_epoch(monkeypatch, 3, run, crashed)
    assert (tmp_path / "crash/checkpoint.pt").is_file() and not (tmp_path / "crash/history.json").exists()
    resumed = run(crashed)
    assert [e["train_loss"] for e in resumed["epochs"]] == [e["train_loss"] for e in whole["epochs"]]
    assert [e["test_acc"] for e in resumed["epochs"]] == [e["test_acc"] for e in whole["epochs"]]
    assert not (tmp_path / "crash/checkpoint.pt").exists()


@pytest.mark.parametrize(
    "module, params",
    [
        ("resampling", {"q": 0.5}), ("oversampling", {}), ("undersampling", {}), ("drw", {"defer_epoch": 1}),
        ("drs", {"defer_epoch": 1}), ("ldam_drw", {"defer_epoch": 1}), ("focal", {"gamma": 2.0, "beta": 0.999}),
        ("logit_adjusted_loss", {"tau": 1.0}), ("minority_synthesis", {"defer_epoch": 1}),
    ],
)
def test_every_method_trains(subset, tmp_path, module, params):
    history = run(spec(subset, tmp_path, module, params=params))
    assert len(history["epochs"]) == 2 and all(np.isfinite(e["train_loss"]) for e in history["epochs"])
    assert history["strategy"]["type"] != "custom"
    sizes = {"oversampling": 4 * 10, "undersampling": 4 * 2}  # class counts 10, 5, 3, 2
    assert history["epochs"][0]["train_images"] == sizes.get(module, 20)


def test_unknown_recipe_override_fails_before_training(subset, tmp_path, monkeypatch):
    import types
    import sys

    module = types.ModuleType("ltbench.strategies.bad_recipe")
    module.configure = lambda c, n, cfg: {"recipe": {"learning_rate": 1.0}}
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(StrategyError, match=r"overrides unknown recipe keys \['learning_rate'\]"):
        run(spec(subset, tmp_path, "bad_recipe"))
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_or_changed_cache_is_named_before_training(subset, tmp_path):
    import shutil

    from ltbench.datasets.data import DataError

    broken = tmp_path / "subset"
    shutil.copytree(subset, broken)
    cache = broken / "cache.npz"
    cache.write_bytes(cache.read_bytes()[:-100])  # truncated
    with pytest.raises(DataError, match=rf"{cache} does not match the checksum its index recorded.*delete {broken}"):
        run(spec(broken, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_plain_command_says_how_to_make_missing_data(tmp_path):
    from ltbench.datasets.data import DataError

    missing = spec(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(DataError, match=r"no materialized subset at .*index.json: make it with `python "
                                        r"scripts/materialize.py --dataset tiny --ratio 5`"):
        run(missing)


def test_a_checkpoint_is_stamped_with_its_device_type(subset, tmp_path, monkeypatch):
    """A checkpoint's generator states belong to the device that saved them (a CPU generator's state cannot
    seed a CUDA one), so the stamp a checkpoint must match names the device type: one saved on a GPU is
    ignored on a CPU, and the run starts afresh instead of crashing."""
    from ltbench.training import checkpoint, train as train_module

    seen, real = [], checkpoint.fingerprint
    monkeypatch.setattr(train_module.checkpoint, "fingerprint", lambda d, source: seen.append(d) or real(d, source))
    run(spec(subset, tmp_path, epochs=1))
    assert seen and all(d["device"] == "cpu" for d in seen)
    strategy = spec(subset, tmp_path).strategy.source
    assert real(seen[0], strategy) != real({**seen[0], "device": "cuda"}, strategy)
