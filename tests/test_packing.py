"""Seeds trained side by side in one job (ltbench.training.replicas) train as each would alone, and keep
their own outputs and checkpoints."""

from __future__ import annotations

import copy
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ltbench.training import replicas
from ltbench.training.devices import select_device
from ltbench.methods.losses import packed_cross_entropy
from ltbench.methods.models import build_model
from ltbench.training.train import Trainer, run, run_pack
from ltbench.training.spec import prepare
from test_train import crash_in_epoch, spec

SEEDS = (0, 1)


def pack(subset, out, seeds=SEEDS, lr=None, **kwargs):
    """Runs of ``seeds`` writing under ``out/seed<s>``; ``lr`` overrides the recipe's."""
    specs = [spec(subset, out / f"seed{s}", seed=s, **kwargs) for s in seeds]
    return specs if lr is None else [replace(s, recipe=replace(s.recipe, lr=lr)) for s in specs]


def assert_same_runs(packed: list[dict], alone: list[dict], tol: float = 1e-5) -> None:
    """Per-epoch losses agree to ``tol`` (relative); accuracies and sample counts are equal.

    The tests train with a vanishing learning rate: the packed and the lone model then see the same
    images, augmented alike, with the same weights, so any slip in the per-run bookkeeping (order,
    augmentation, targets, loss, evaluation) shows. Whether the packed step itself is each model's
    own step is tested separately, since on this tiny data any rounding difference grows
    chaotically within a few steps."""
    for p, a in zip(packed, alone):
        assert p["seed"] == a["seed"]
        assert np.allclose([e["train_loss"] for e in p["epochs"]], [e["train_loss"] for e in a["epochs"]], rtol=tol)
        assert [e["train_images"] for e in p["epochs"]] == [e["train_images"] for e in a["epochs"]]
        assert [e["test_acc"] for e in p["epochs"]] == [e["test_acc"] for e in a["epochs"]]


@pytest.mark.parametrize(
    "strategy, module, params",
    [("balanced_softmax", None, None), ("sqrt_sampling", "resampling", {"q": 0.5}),
     ("ldam_drw", None, {"defer_epoch": 1})],
)
def test_packed_seeds_train_as_they_would_alone(subset, tmp_path, strategy, module, params):
    kwargs = dict(strategy=strategy, module=module, params=params, lr=1e-9)
    packed = run_pack(pack(subset, tmp_path / "packed", **kwargs))
    alone = [run(s) for s in pack(subset, tmp_path / "alone", **kwargs)]
    assert_same_runs(packed, alone)
    assert packed[0]["provenance"]["trained_with_seeds"] == list(SEEDS)
    for s in SEEDS:  # each run has its own outputs, and its final weights are its own
        mine = torch.load(tmp_path / f"packed/seed{s}/model.pt")
        theirs = torch.load(tmp_path / f"alone/seed{s}/model.pt")
        worst = max((mine[k].float() - theirs[k].float()).abs().max().item() for k in theirs)
        assert worst < 2e-3, worst
        with np.load(tmp_path / f"packed/seed{s}/predictions.npz") as pred:
            assert pred["best_logits"].shape == (12, 4)


def test_packed_stage2_trains_only_the_classifier_under_maxnorm(subset, tmp_path):
    stage1 = pack(subset, tmp_path / "stage1", seeds=(0, 1), epochs=1)
    run_pack(stage1)
    kwargs = dict(strategy="weight_balancing", params={"stage1": "ce", "classifier_epochs": 2, "maxnorm_thresh": 0.1,
                                                       "classifier_lr": 1e-9})
    runs = {}
    for name in ("packed", "alone"):
        specs = [replace(s, init_model_path=str(tmp_path / f"stage1/seed{s.seed}/model.pt"))
                 for s in pack(subset, tmp_path / name, seeds=(0, 1), **kwargs)]
        runs[name] = run_pack(specs) if name == "packed" else [run(s) for s in specs]
    assert_same_runs(runs["packed"], runs["alone"])
    for s in (0, 1):
        before = torch.load(tmp_path / f"stage1/seed{s}/model.pt")
        after = torch.load(tmp_path / f"packed/seed{s}/model.pt")
        assert torch.equal(before["conv1.weight"], after["conv1.weight"])  # backbone frozen
        assert after["fc.weight"].norm(dim=1).max() < before["fc.weight"].norm(dim=1).max()  # projected


def test_feature_hook_strategies_train_their_seeds_in_turn(subset, tmp_path, capsys):
    histories = run_pack(pack(subset, tmp_path, seeds=(0, 1), strategy="minority_synthesis",
                              params={"defer_epoch": 1}, epochs=2))
    assert "train one after another" in capsys.readouterr().out
    assert [h["provenance"]["trained_with_seeds"] for h in histories] == [[0], [1]]


def test_a_killed_packed_job_resumes_every_run(subset, tmp_path, monkeypatch):
    whole = run_pack(pack(subset, tmp_path / "whole", seeds=(0, 1), epochs=3))
    crashed = pack(subset, tmp_path / "crash", seeds=(0, 1), epochs=3)
    crash_in_epoch(monkeypatch, 3, run_pack, crashed)
    assert all((tmp_path / f"crash/seed{s}/checkpoint.pt").is_file() for s in (0, 1))
    # a packed job's checkpoint is an unpacked run's: seed 1 alone can resume from a copy of its own
    lone = replace(crashed[1], checkpoint_path=str(tmp_path / "lone.pt"), history_path=str(tmp_path / "lone.json"))
    shutil.copy(crashed[1].checkpoint_path, lone.checkpoint_path)
    resumed = run_pack(crashed)
    for r in (0, 1):
        assert [e["train_loss"] for e in resumed[r]["epochs"]] == [e["train_loss"] for e in whole[r]["epochs"]]
        assert not Path(crashed[r].checkpoint_path).exists()
    alone = run(lone)
    assert [e["train_loss"] for e in alone["epochs"][:2]] == [e["train_loss"] for e in whole[1]["epochs"][:2]]
    assert alone["epochs"][2]["train_loss"] == pytest.approx(whole[1]["epochs"][2]["train_loss"], rel=1e-3)


def test_the_fused_sgd_of_cuda_steps_and_resumes_as_the_foreach_one(subset, tmp_path, monkeypatch):
    """CUDA's fused SGD (``devices.fused_sgd``), forced on this CPU: packed runs train as with the
    foreach step to rounding, and a killed job resumes from its per-run optimizer states."""
    kwargs = dict(seeds=(0, 1), epochs=3, lr=1e-3)
    whole = run_pack(pack(subset, tmp_path / "foreach", **kwargs))
    monkeypatch.setattr("ltbench.training.train.fused_sgd", lambda device: True)
    fused, train_epoch = [], Trainer.train_epoch

    def stepping(self, epoch):  # after any resume, which loads the checkpoint's optimizer settings
        fused.append(self.optimizer.param_groups[0]["fused"])
        return train_epoch(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", stepping)
    crashed = pack(subset, tmp_path / "fused", **kwargs)
    crash_in_epoch(monkeypatch, 3, run_pack, crashed)
    resumed = run_pack(crashed)
    assert fused == [True] * 4  # three epochs of the killed job (killed in the third), the third again resumed
    for r in (0, 1):
        losses = [[e["train_loss"] for e in h["epochs"]] for h in (resumed[r], whole[r])]
        assert np.allclose(*losses, rtol=1e-4)


def test_runs_of_one_job_may_differ_only_in_strategy_and_seed(subset, tmp_path):
    specs = pack(subset, tmp_path, seeds=(0, 1))
    with pytest.raises(ValueError, match="differ only in strategy and seed; these differ: recipe"):
        run_pack([specs[0], replace(specs[1], recipe=replace(specs[1].recipe, lr=0.5))])
    with pytest.raises(ValueError, match="must be distinct"):
        run_pack([specs[0], replace(specs[1], seed=0)])
    assert list(tmp_path.iterdir()) == []


# strategies of every kind that share the recipe and the epoch length: static weights, logit
# offsets, a focal loss with a head bias, a deferred weighting and class-balanced sampling (N draws)
MIXED = [("ce", None, None), ("inverse_freq", None, None), ("balanced_softmax", None, None),
         ("cb_focal_cui", "focal", {"form": "sigmoid", "gamma": 1.0}), ("drw", None, {"defer_epoch": 1}),
         ("class_balanced_sampling", "resampling", {"q": 0.0})]


def mixed(subset, out, seeds=SEEDS, strategies=MIXED, **kwargs):
    """Runs of every (strategy, seed), writing under ``out/<strategy>/seed<s>``."""
    return [s for name, module, params in strategies
            for s in pack(subset, out / name, seeds=seeds, strategy=name, module=module, params=params, **kwargs)]


def test_strategies_packed_together_train_as_they_would_alone(subset, tmp_path, capsys):
    packed = run_pack(mixed(subset, tmp_path / "packed", lr=1e-9, epochs=2))
    assert "groups" not in capsys.readouterr().out  # one model for all twelve runs
    alone = [run(s) for s in mixed(subset, tmp_path / "alone", lr=1e-9, epochs=2)]
    assert_same_runs(packed, alone)
    assert [h["strategy"]["name"] for h in packed] == [name for name, _, _ in MIXED for _ in SEEDS]
    assert len(packed[0]["provenance"]["trained_with"]) == len(MIXED) * len(SEEDS)
    for name, _, _ in MIXED:
        for s in SEEDS:  # each run's outputs and final weights are its own (the focal head bias included)
            mine = torch.load(tmp_path / f"packed/{name}/seed{s}/model.pt")
            theirs = torch.load(tmp_path / f"alone/{name}/seed{s}/model.pt")
            worst = max((mine[k].float() - theirs[k].float()).abs().max().item() for k in theirs)
        assert worst < 2e-3, worst


@pytest.mark.parametrize("pair", [MIXED[1:3], [MIXED[0], MIXED[3]]], ids=["weights+offsets", "ce+focal"])
def test_a_packed_step_of_two_strategies_is_each_runs_own_step(subset, tmp_path, pair):
    """Two SGD steps (the second with momentum) at the recipe's learning rate on the same batches: two
    strategies packed (class weights beside logit offsets: the one-call loss; plain cross-entropy beside
    the sigmoid focal loss with its head bias: the per-run loss) end with each run's weights as trained
    alone, within 2e-3 (measured on one thread: 2.6e-4, rounding of the grouped convolutions grown over
    two steps on this tiny problem; a wrong weight, offset or loss differs by about lr * gradient, ~1e-2)."""
    specs = mixed(subset, tmp_path, seeds=(0,), strategies=pair)
    select_device("cpu", 1)  # as a run does: the rounding depends on the thread count
    packed = Trainer(specs, [prepare(s) for s in specs], torch.device("cpu"))
    alone = [Trainer([s], [prepare(s)], torch.device("cpu")) for s in specs]
    idx = [torch.arange(8), torch.arange(8, 16)]
    for step in idx:
        packed.train_step(0, [step] * len(specs), packed.weights_at(0))
        for trainer in alone:
            trainer.train_step(0, [step], trainer.weights_at(0))
    for r, trainer in enumerate(alone):
        mine, theirs = packed.model.state_dict(r), trainer.model.state_dict(0)
        worst = max((mine[k].float() - theirs[k].float()).abs().max().item() for k in theirs)
        assert worst < 2e-3, worst


def test_runs_that_cannot_share_a_model_train_in_their_own_groups(subset, tmp_path, capsys):
    strategies = [("ce", None, None), ("oversampling", None, None), ("ldam_drw", None, {"defer_epoch": 1}),
                  ("inverse_freq", None, None)]
    histories = run_pack(mixed(subset, tmp_path, seeds=(0,), strategies=strategies, epochs=1))
    out = capsys.readouterr().out
    # oversampling visits more images per epoch, LDAM needs a cosine head: each trains in a group of its own
    assert "3 groups, which train one after another" in out and "ce+inverse_freq; oversampling; ldam_drw" in out
    assert [h["strategy"]["name"] for h in histories] == [name for name, _, _ in strategies]
    assert histories[0]["provenance"]["trained_with"] == ["ce/seed0", "inverse_freq/seed0"]
    assert histories[1]["epochs"][0]["train_images"] > histories[0]["epochs"][0]["train_images"]


def test_packed_cross_entropy_is_each_runs_weighted_cross_entropy():
    torch.manual_seed(0)
    logits, targets, weight = torch.randn(3, 16, 5), torch.randint(0, 5, (3, 16)), torch.rand(3, 5) + 0.1
    expected = torch.stack([F.cross_entropy(logits[r], targets[r], weight=weight[r]) for r in range(3)])
    assert torch.allclose(packed_cross_entropy(logits, targets, weight), expected, rtol=1e-6)


def test_unknown_compile_mode_fails_before_training(subset, tmp_path):
    with pytest.raises(ValueError, match="unknown compile mode 'fastest'"):
        run(replace(spec(subset, tmp_path), compile="fastest"))
    assert list(tmp_path.iterdir()) == []


def test_a_packed_sgd_step_is_each_models_own_step():
    torch.manual_seed(0)
    models = [build_model("resnet32", 4) for _ in range(2)]
    alone = [copy.deepcopy(m) for m in models]
    stacked = replicas.Runs(models, "resnet32", 4, "linear")
    opt = torch.optim.SGD(stacked.trainable(False), lr=0.05, momentum=0.9, weight_decay=5e-4)
    own = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4) for m in alone]
    x, y = torch.randn(2, 8, 3, 32, 32), torch.randint(0, 4, (2, 8))
    # a wrong gradient, weight decay or momentum would differ by about lr * gradient (~1e-2); the
    # tolerance allows rounding (1e-7 after one step) amplified by this ill-conditioned toy problem
    for _ in range(2):  # the second step uses momentum
        stacked.train()
        logits = stacked(x)
        opt.zero_grad()
        sum(F.cross_entropy(logits[r], y[r]) for r in range(2)).backward()
        opt.step()
        for r, (model, o) in enumerate(zip(alone, own)):
            o.zero_grad()
            F.cross_entropy(model(x[r]), y[r]).backward()
            o.step()
    for r, model in enumerate(alone):
        mine = stacked.state_dict(r)
        assert all(torch.allclose(mine[k].float(), v.float(), atol=1e-4) for k, v in model.state_dict().items())


def test_stacked_optimizer_state_splits_and_restacks():
    models = [build_model("resnet32", 4) for _ in range(2)]
    stacked = replicas.Runs(models, "resnet32", 4, "linear")
    opt = torch.optim.SGD(stacked.trainable(False), lr=0.1, momentum=0.9)
    stacked.train()
    stacked(torch.randn(2, 3, 3, 32, 32)).sum().backward()
    opt.step()
    parts = [replicas.optimizer_state(opt, r, 2) for r in range(2)]
    assert parts[1]["state"][0]["momentum_buffer"].shape == models[0].conv1.weight.shape
    again = replicas.stack_optimizer_states(parts)
    assert all(torch.equal(again["state"][k]["momentum_buffer"], v["momentum_buffer"])
               for k, v in opt.state_dict()["state"].items())
    assert list(stacked.state_dict(0)) == list(models[0].state_dict())


def test_compiled_training_equals_eager(subset, tmp_path):
    """The compile path (TorchDynamo with its ``eager`` backend, quick on CPU) trains the same run."""
    eager = run(spec(subset, tmp_path / "eager"))
    traced = run(replace(spec(subset, tmp_path / "compiled"), compile="default", compile_backend="eager"))
    assert [e["train_loss"] for e in traced["epochs"]] == [e["train_loss"] for e in eager["epochs"]]
    assert traced["provenance"]["compile"] == "default"


def test_a_stage2_in_the_same_job_trains_after_its_stage1(subset, tmp_path):
    from ltbench.datasets.data import DataError

    stage1 = spec(subset, tmp_path / "ce", epochs=1)
    stage2 = replace(spec(subset, tmp_path / "wb", strategy="weight_balancing", epochs=1,
                          params={"stage1": "ce", "classifier_epochs": 1}), init_model_path=stage1.model_path)
    with pytest.raises(DataError, match=r"does not exist: train its stage 1 \(ce\) first"):
        run_pack([replace(stage2, init_model_path=str(tmp_path / "none.pt"))])
    assert not (tmp_path / "wb").exists()
    histories = run_pack([stage2, stage1])  # listed first, trained second: it starts from ce's final model
    assert [h["strategy"]["name"] for h in histories] == ["weight_balancing", "ce"]
    before, after = torch.load(stage1.model_path), torch.load(stage2.model_path)
    assert torch.equal(before["conv1.weight"], after["conv1.weight"])  # the frozen backbone is ce's
