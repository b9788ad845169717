"""MaxNorm projection, classifier-only stage 2, and post-hoc logit adjustment."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from ltbench.config import Strategy
from ltbench.methods.constraints import MaxNorm
from ltbench.methods.losses import CrossEntropy
from ltbench.evaluation.posthoc import adjust_run
from ltbench.strategies import StrategyError
from ltbench.training.spec import cosine_lr, prepare
from ltbench.training.train import run
from test_train import spec


def test_maxnorm_radius_and_projection_by_hand():
    weight = torch.tensor([[3.0, 4.0], [0.6, 0.8], [0.0, 2.0]])  # row norms 5, 1, 2
    constraint = MaxNorm(weight, thresh=0.25)
    assert constraint.radius == pytest.approx(1 + 0.25 * (5 - 1))  # 2.0
    constraint.project(weight)
    assert weight.norm(dim=1).tolist() == pytest.approx([2.0, 1.0, 2.0])
    assert weight[0].tolist() == pytest.approx([1.2, 1.6])  # direction kept


def test_stage2_trains_only_the_classifier_within_the_norm_ball(subset, tmp_path):
    run(spec(subset, tmp_path / "stage1"))
    stage1 = torch.load(tmp_path / "stage1/model.pt")
    second = spec(subset, tmp_path / "stage2", "weight_balancing", params={"stage1": "ce", "classifier_epochs": 2})
    history = run(replace(second, init_model_path=str(tmp_path / "stage1/model.pt")))
    stage2 = torch.load(tmp_path / "stage2/model.pt")
    assert history["method"]["trainable"] == "classifier" and history["recipe"]["weight_decay"] == 0.1
    for name, value in stage1.items():
        if name.startswith("fc."):
            assert not torch.equal(value, stage2[name]), f"{name} should have been trained"
        elif "running" not in name and "num_batches" not in name:
            assert torch.equal(value, stage2[name]), f"{name} should be frozen"
    norms = stage1["fc.weight"].norm(dim=1)
    radius = norms.min() + 0.1 * (norms.max() - norms.min())
    assert (stage2["fc.weight"].norm(dim=1) <= radius + 1e-5).all()
    # the reference's stage 2: its loss, batch 64, the scheduler stepped before each epoch (last epoch at 0)
    assert history["method"]["loss"] == "SoftmaxBCE()" and history["recipe"]["batch_size"] == 64
    assert [e["lr"] for e in history["epochs"]] == pytest.approx([0.005, 0.0])


def test_weight_balancing_keeps_our_variant_by_name(subset, tmp_path):
    params = {"stage1": "ce", "classifier_loss": "ce", "classifier_schedule": "cosine", "classifier_batch_size": 128}
    method = prepare(spec(subset, tmp_path, "weight_balancing", params=params))
    assert isinstance(method.method.loss, CrossEntropy) and method.recipe.batch_size == 128
    assert cosine_lr(0.01, 0, 2, method.recipe.lr_schedule) == pytest.approx(0.01)


def test_cui_focal_starts_from_the_prior_bias(subset, tmp_path):
    history = run(spec(subset, tmp_path, "cb_focal_cui", module="focal",
                       params={"form": "sigmoid", "beta": 0.999, "gamma": 2.0}, epochs=1))
    assert history["method"]["head_bias"] == pytest.approx(-math.log(3))  # 4 classes
    assert history["method"]["loss"] == "SigmoidFocal(gamma=2.0)"


def base_run(logits_best, logits_last, labels):
    history = {
        "benchmark": {"name": "b", "arch": "resnet32", "dataset": "d", "imbalance_ratio": 10.0},
        "strategy": {"name": "ce", "module": "ce", "params": {}, "type": "static reweighting"},
        "seed": 0, "recipe": {"epochs": 3}, "class_counts": [90, 9, 1], "class_weights": [1.0, 1.0, 1.0],
        "best_epoch": 2, "provenance": {}, "epochs": [{}, {}, {}],
    }
    predictions = {"labels": np.array(labels), "best_logits": np.array(logits_best, np.float32),
                   "last_logits": np.array(logits_last, np.float32)}
    return history, predictions


def test_posthoc_logit_adjustment_by_hand():
    # log prior = log(0.9), log(0.09), log(0.01) = -0.105, -2.408, -4.605
    history, predictions = base_run(
        logits_best=[[2.0, 0.0, 0.0], [1.0, 0.0, -2.0]], logits_last=[[3.0, 0.0, 0.0], [3.0, 2.0, 0.0]], labels=[0, 2])
    context = {"imbalance_ratio": 10.0, "dataset": "d", "arch": "resnet32", "epochs": 3}
    out, arrays = adjust_run(Strategy("la", "logit_adjustment_posthoc", {"base": "ce", "tau": 1.0}), history,
                             predictions, context)
    # best epoch: [2.105, 2.408, 4.605] -> 2 (wrong), [1.105, 2.408, 2.605] -> 2 (right): 50 %
    # last epoch: [3.105, 2.408, 4.605] -> 2 (wrong), [3.105, 4.408, 4.605] -> 2 (right): 50 %
    assert out["final_test_acc"] == 50.0 and out["best_test_acc"] == 50.0 and out["best_epoch"] == 2
    expected = np.array([2.0, 0.0, 0.0]) - np.log([0.9, 0.09, 0.01])
    assert arrays["best_logits"][0] == pytest.approx(expected, rel=1e-6)
    assert out["posthoc_of"] == "ce" and out["strategy"]["type"] == "logit adjustment"
    assert arrays["best_pred"].tolist() == [2, 2]


def test_posthoc_needs_adjust_logits():
    history, predictions = base_run([[0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]], [0])
    with pytest.raises(StrategyError, match="defines no adjust_logits"):
        adjust_run(Strategy("x", "ce", {"base": "ce"}), history, predictions, {"epochs": 3})
