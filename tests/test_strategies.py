"""Strategy formulas against hand-computed values, and the checks on what strategies return."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from ltbench import strategies
from ltbench.config import ConfigError, Strategy, strategy

COUNTS = [100, 10, 1]  # N = 111, C = 3
CONTEXT = {"imbalance_ratio": 100.0, "dataset": "cifar10", "arch": "resnet32", "epochs": 200}


def resolve(module: str, **params):
    return strategies.resolve(Strategy(module, module, params), COUNTS, CONTEXT)


def close(tensor, expected):
    return torch.allclose(tensor, torch.tensor(expected, dtype=torch.float32), rtol=1e-4, atol=1e-6)


def test_ce_is_uniform():
    out = resolve("ce")
    assert close(out.weights, [1.0, 1.0, 1.0]) and out.logit_offsets is None


def test_inverse_freq():
    # 111 / (3 * 100), 111 / (3 * 10), 111 / (3 * 1)
    assert close(resolve("inverse_freq").weights, [0.37, 3.7, 37.0])


def test_sqrt_inverse():
    # 1/sqrt(100), 1/sqrt(10), 1/sqrt(1)
    assert close(resolve("sqrt_inverse").weights, [0.1, 0.31622777, 1.0])


def test_effective_number():
    # raw (1-0.9)/(1-0.9^n): 0.10000266, 0.15353399, 1.0; sum 1.25353665; times 3/sum
    assert close(resolve("effective_number", beta=0.9).weights, [0.23933, 0.36745, 2.39323])


def test_effective_number_default_beta_and_bad_beta():
    # beta 0.9999: raw 0.0001/(1-0.9999^n) = 0.0100500, 0.1000450, 1.0; sum 1.1100950; times 3/sum
    assert close(resolve("effective_number").weights, [0.0271598, 0.2703642, 2.7024760])
    with pytest.raises(strategies.StrategyError, match="'effective_number' failed .*beta must be in"):
        resolve("effective_number", beta=1.0)


def test_balanced_softmax_offsets_are_log_prior():
    out = resolve("balanced_softmax")
    assert close(out.weights, [1.0, 1.0, 1.0])
    # log(100/111), log(10/111), log(1/111)
    assert close(out.logit_offsets, [-0.1043600, -2.4069451, -4.7095302])


def test_strategy_receives_the_documented_config(monkeypatch):
    seen = {}

    def compute_class_weights(class_counts, num_classes, config):
        seen.update(config, counts=class_counts.tolist(), num_classes=num_classes)
        return torch.ones(num_classes)

    install(monkeypatch, "spy", compute_class_weights, params={"alpha": 1, "beta": 0.5})
    strategies.resolve(Strategy("spy", "spy", {"alpha": 2}), COUNTS, CONTEXT)
    assert seen == {**CONTEXT, "total_samples": 111, "alpha": 2, "beta": 0.5, "counts": [100.0, 10.0, 1.0],
                    "num_classes": 3}


def install(monkeypatch, name, weights_fn, offsets_fn=None, params=None):
    """Register an in-memory strategy module ``ltbench.strategies.<name>`` declaring ``params``."""
    module = types.ModuleType(f"ltbench.strategies.{name}")
    module.compute_class_weights = weights_fn
    module.PARAMS = params or {}
    if offsets_fn is not None:
        module.compute_logit_offsets = offsets_fn
    monkeypatch.setitem(sys.modules, module.__name__, module)


def raises(*_):
    raise ZeroDivisionError("boom")


@pytest.mark.parametrize(
    "weights_fn, message",
    [
        (lambda c, n, cfg: torch.tensor([1.0, float("nan"), 1.0]), "non-finite class weights"),
        (lambda c, n, cfg: torch.tensor([1.0, float("inf"), 1.0]), "non-finite class weights"),
        (lambda c, n, cfg: torch.tensor([1.0, -1.0, 1.0]), "not all positive"),
        (lambda c, n, cfg: torch.zeros(n), "not all positive"),
        (lambda c, n, cfg: torch.ones(n + 1), r"shape \(4,\); expected \(3,\)"),
        (lambda c, n, cfg: torch.ones(n, 2), r"shape \(3, 2\)"),
        (raises, "failed while computing class weights: ZeroDivisionError: boom"),
        (lambda c, n, cfg: "not numbers", "failed while computing class weights"),
    ],
    ids=["nan", "inf", "negative", "zero", "too-long", "2d", "raises", "not-a-tensor"],
)
def test_bad_weights_are_rejected_naming_the_strategy(monkeypatch, weights_fn, message):
    install(monkeypatch, "broken", weights_fn)
    with pytest.raises(strategies.StrategyError, match=f"strategy 'mine' .*{message}"):
        strategies.resolve(Strategy("mine", "broken", {}), COUNTS, CONTEXT)


def test_bad_offsets_are_rejected(monkeypatch):
    install(monkeypatch, "bad_offsets", lambda c, n, cfg: torch.ones(n), lambda c, n, cfg: torch.ones(2))
    with pytest.raises(strategies.StrategyError, match="logit offsets of shape"):
        strategies.resolve(Strategy("bad_offsets", "bad_offsets", {}), COUNTS, CONTEXT)


def test_module_without_function_is_rejected(monkeypatch):
    monkeypatch.setitem(sys.modules, "ltbench.strategies.empty", types.ModuleType("ltbench.strategies.empty"))
    with pytest.raises(strategies.StrategyError, match="defines none of compute_class_weights, compute_logit_offsets, configure"):
        strategies.resolve(Strategy("empty", "empty", {}), COUNTS, CONTEXT)


def test_unknown_strategy_names_are_config_errors():
    config = {"strategies": {"ce": {}, "typo": {"module": "inverse_frequency"}}}
    with pytest.raises(ConfigError, match="unknown strategy 'nope'; config.yaml defines: ce, typo"):
        strategy(config, "nope")
    with pytest.raises(ConfigError, match="inverse_frequency.py .* does not exist; available: .*inverse_freq"):
        strategy(config, "typo")


def test_module_key_reuses_a_file_with_other_parameters():
    spec = strategy({"strategies": {"cb_999": {"module": "effective_number", "beta": 0.999}}}, "cb_999")
    assert (spec.module, spec.params, spec.source.name) == ("effective_number", {"beta": 0.999}, "effective_number.py")


def test_drw_defers_effective_number_weights():
    method = resolve("drw", beta=0.9, defer_epoch=3)
    assert method.type == "deferred"
    assert close(method.weights_at(2), [1.0, 1.0, 1.0])
    assert close(method.weights_at(3), [0.23933, 0.36745, 2.39323])  # as test_effective_number
    assert resolve("drw").defer_epoch == 160  # 0.8 of the 200 epochs in CONTEXT
    with pytest.raises(strategies.StrategyError, match="defer_epoch must be between 0 and the 200"):
        resolve("drw", defer_epoch=300)


def test_drs_defers_class_balanced_sampling():
    from ltbench.methods.samplers import ClassPowerSampler, InstanceSampler

    method = resolve("drs", defer_epoch=5)
    assert isinstance(method.sampler_at(4), InstanceSampler)
    assert isinstance(method.sampler_at(5), ClassPowerSampler) and method.sampler_at(5).q == 0.0


def test_the_log_names_what_switches_on_at_the_defer_epoch():
    from ltbench.training.train import switches

    assert switches(resolve("drw", defer_epoch=3), 3) == ["the class weights"]
    assert switches(resolve("drw", defer_epoch=3), 2) == [] and switches(resolve("ce"), 0) == []
    assert switches(resolve("drs", defer_epoch=5), 5) == ["the sampler ClassPowerSampler(q=0.0)"]


def test_ldam_drw_configuration():
    from ltbench.methods.losses import LDAM

    method = resolve("ldam_drw")
    assert method.head == "cosine" and isinstance(method.loss, LDAM) and method.loss.scale == 30.0
    # n^-1/4 = 0.31623, 0.56234, 1 for n = 100, 10, 1; scaled so that the largest is 0.5
    assert close(method.loss.margins, [0.158114, 0.281171, 0.5])
    assert method.defer_epoch == 160
    assert method.logit_scale == 30.0 and resolve("ldam_drw", scale=16.0).logit_scale == 16.0
    assert resolve("ce").logit_scale == 1.0


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), "30", True])
def test_a_logit_scale_must_be_a_positive_number(monkeypatch, scale):
    module = types.ModuleType("ltbench.strategies.bad_scale")
    module.configure = lambda c, n, cfg: {"head": "cosine", "logit_scale": scale}
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(strategies.StrategyError, match="'bad_scale': logit_scale must be a positive finite number"):
        resolve("bad_scale")


def test_focal_and_class_balanced_focal():
    from ltbench.methods.losses import Focal

    plain, balanced = resolve("focal", gamma=2.0), resolve("focal", gamma=2.0, beta=0.9)
    assert isinstance(plain.loss, Focal) and plain.loss.gamma == 2.0 and close(plain.weights, [1.0, 1.0, 1.0])
    assert close(balanced.weights, [0.23933, 0.36745, 2.39323])


def test_logit_adjusted_loss_scales_the_log_prior_by_tau():
    assert close(resolve("logit_adjusted_loss", tau=2.0).logit_offsets, [-0.20872, -4.81389, -9.41906])


def test_resampling_strategies():
    from ltbench.methods.samplers import ClassPowerSampler, OverSampler, UnderSampler

    assert resolve("resampling", q=0.5).sampler.q == 0.5
    assert isinstance(resolve("resampling").sampler, ClassPowerSampler) and resolve("resampling").sampler.q == 0.0
    assert isinstance(resolve("oversampling").sampler, OverSampler)
    assert isinstance(resolve("undersampling").sampler, UnderSampler)
    assert resolve("oversampling").type == "resampling"


@pytest.mark.parametrize(
    "configure, message",
    [
        (lambda c, n, cfg: {"optimizer": "adam"}, r"configure\(\) returned unknown fields \['optimizer'\]"),
        (lambda c, n, cfg: ["sampler"], r"configure\(\) returned unknown fields list"),
        (lambda c, n, cfg: {"head": "mlp"}, "unknown head 'mlp'"),
        # the cosine head stores its weight transposed and normalises it itself: MaxNorm has no rows to bound
        (lambda c, n, cfg: {"head": "cosine", "max_norm": 0.1}, "MaxNorm bounds the class rows of a linear head"),
        (lambda c, n, cfg: {"trainable": "head"}, "trainable must be one of all, classifier"),
    ],
)
def test_bad_configuration_is_rejected(monkeypatch, configure, message):
    module = types.ModuleType("ltbench.strategies.bad_configure")
    module.configure = configure
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(strategies.StrategyError, match=message):
        strategies.resolve(Strategy("bad_configure", "bad_configure", {}), COUNTS, CONTEXT)


def test_a_natural_benchmark_tells_strategies_the_ratio_its_data_has(monkeypatch):
    seen = {}

    def compute_class_weights(class_counts, num_classes, config):
        seen.update(config)
        return torch.ones(num_classes)

    install(monkeypatch, "spy", compute_class_weights)
    strategies.resolve(Strategy("spy", "spy", {}), COUNTS, {**CONTEXT, "imbalance_ratio": "natural"})
    assert seen["imbalance_ratio"] == 100.0  # counts 100, 10, 1


def test_a_strategy_that_never_returns_is_stopped_and_named(monkeypatch):
    import time as clock

    def compute_class_weights(class_counts, num_classes, config):
        clock.sleep(30)

    install(monkeypatch, "stuck", compute_class_weights)
    start = clock.monotonic()
    with pytest.raises(strategies.StrategyError, match=r"strategy 'stuck' did not finish computing class weights within 0.5 s"):
        strategies.resolve(Strategy("stuck", "stuck", {}), COUNTS, CONTEXT, timeout=0.5)
    assert clock.monotonic() - start < 5
