"""Strategies: one file per strategy, behind one small interface.

A strategy module defines

    compute_class_weights(class_counts, num_classes, config) -> Tensor[num_classes]

the weights for ``nn.CrossEntropyLoss(weight=...)`` (uniform if the module has none).
It may also define

    compute_logit_offsets(class_counts, num_classes, config) -> Tensor[num_classes]

per-class offsets added to the logits in the training loss only (balanced softmax), and

    configure(class_counts, num_classes, config) -> dict

with any of the ``Method`` fields ``sampler`` (see ltbench.methods.samplers), ``loss`` (see
ltbench.methods.losses), ``head`` ("linear" or "cosine"), ``defer_epoch`` (deferred schedules: the class weights
and the sampler apply from that epoch, see ltbench.methods.schedules) and ``recipe``
(overrides of recipe values, e.g. ``{"weight_decay": 5e-3}``); a stage-2 strategy
(config key ``stage1``) also sets ``trainable`` ("classifier": only the head learns) and
``max_norm`` (see ltbench.methods.constraints). ``head_bias`` sets the initial bias of the linear head.
``logit_scale`` (default 1) multiplies the logits the model predicts with at test time: a cosine
head trained through a scaled loss predicts softmax(scale x cosine), not softmax(cosine), so its
calibration is measured at the loss's scale (accuracy does not depend on it).
``feature_hook`` (see ltbench.methods.synthesis) sees each
batch's features and returns the batch loss. A post-hoc strategy (config key ``base``) defines
``adjust_logits(logits, class_counts, num_classes, config)`` instead, applied to the base
run's test logits.

Every entry may also set the common keys ``reduction`` and ``recipe`` (ltbench.params.COMMON), which
``resolve`` applies to the ``Method`` the module builds (``with_common``); the module does not see them.

``class_counts`` is a float64 tensor of training images per class, in label order;
``config`` is a dict with ``imbalance_ratio`` (a number: on a ``natural`` benchmark, the ratio
n_max / n_min of its data), ``dataset``, ``arch``, ``epochs``, ``total_samples`` and the
strategy's parameters (its ``PARAMS`` defaults under the config entry's values; ltbench.params).
A module constant ``TYPE`` (e.g. "static reweighting", "resampling") groups the
strategy's row in the results table. ``resolve`` calls the module and validates what
it returns, so a broken strategy stops the run before training starts.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field, fields, replace
from types import ModuleType
from typing import Any, Sequence

import torch

from ltbench.methods import models
from ltbench import params
from ltbench.config import NATURAL, ConfigError, Strategy
from ltbench.methods.losses import CrossEntropy, Reduced
from ltbench.methods.samplers import InstanceSampler

HOOKS = ("compute_class_weights", "compute_logit_offsets", "configure", "adjust_logits")
HEADS = tuple(models.HEADS)
TRAINABLE = ("all", "classifier")
TIMEOUT = 60.0  # seconds a strategy function may take (train.strategy_timeout)


class StrategyError(ValueError):
    """A strategy is missing, raised, or returned unusable weights or offsets."""


@dataclass(frozen=True)
class Method:
    """Everything training takes from a strategy; the defaults train plain cross-entropy."""

    weights: torch.Tensor
    logit_offsets: torch.Tensor | None = None
    type: str = "custom"
    sampler: Any = field(default_factory=InstanceSampler)
    loss: Any = field(default_factory=CrossEntropy)
    head: str = "linear"
    defer_epoch: int = 0
    recipe: dict[str, Any] = field(default_factory=dict)
    trainable: str = "all"
    max_norm: float | None = None
    feature_hook: Any = None
    head_bias: float | None = None
    logit_scale: float = 1.0

    def weights_at(self, epoch: int) -> torch.Tensor:
        """The class weights in effect at 0-based ``epoch``: uniform before ``defer_epoch``."""
        return self.weights if epoch >= self.defer_epoch else torch.ones_like(self.weights)

    def sampler_at(self, epoch: int):
        """The sampler in effect at ``epoch``: instance sampling before ``defer_epoch``."""
        return self.sampler if epoch >= self.defer_epoch else InstanceSampler()


CONFIGURABLE = {f.name for f in fields(Method)} - {"weights", "logit_offsets", "type"}


def load(spec: Strategy) -> ModuleType:
    """Import ``ltbench.strategies.<module>`` and check it has ``compute_class_weights``."""
    try:
        module = importlib.import_module(f"{__name__}.{spec.module}")
    except ImportError as exc:
        raise StrategyError(f"strategy {spec.name!r}: cannot import module {spec.module!r}: {exc}") from exc
    if not any(callable(getattr(module, hook, None)) for hook in HOOKS):
        raise StrategyError(f"strategy {spec.name!r}: {spec.source.name} defines none of {', '.join(HOOKS)}")
    return module


def context(benchmark: dict[str, Any], epochs: int) -> dict[str, Any]:
    """What every strategy is told about a run besides the class counts: ``imbalance_ratio``,
    ``dataset`` and ``arch`` from the benchmark (its fields as a dict) and the run's ``epochs``."""
    return {"imbalance_ratio": benchmark["imbalance_ratio"], "dataset": benchmark["dataset"],
            "arch": benchmark["arch"], "epochs": epochs}


def resolve(spec: Strategy, class_counts: Sequence[int], context: dict[str, Any], timeout: float = TIMEOUT) -> Method:
    """Build and validate the strategy's ``Method`` for these class counts.

    ``context`` holds ``imbalance_ratio``, ``dataset``, ``arch`` and ``epochs``;
    ``total_samples`` and the strategy's parameters are added here.
    """
    module = load(spec)
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    num_classes = len(counts)
    config = strategy_config(spec, module, counts, context)
    weights = torch.ones(num_classes)
    if callable(getattr(module, "compute_class_weights", None)):
        weights = _call(spec, module.compute_class_weights, "class weights", counts, num_classes, config,
                        timeout=timeout)
        _check(spec, "class weights", weights, num_classes, positive=True)
    offsets = None
    if callable(getattr(module, "compute_logit_offsets", None)):
        offsets = _call(spec, module.compute_logit_offsets, "logit offsets", counts, num_classes, config,
                        timeout=timeout)
        _check(spec, "logit offsets", offsets, num_classes, positive=False)
    extra = {}
    if callable(getattr(module, "configure", None)):
        extra = _call(spec, module.configure, "its configuration", counts, num_classes, config, as_tensor=False,
                      timeout=timeout)
        _check_configuration(spec, extra)
    return with_common(spec, Method(weights, offsets, getattr(module, "TYPE", "custom"), **extra),
                       params.common(spec, params.of_module(module)))


def with_common(spec: Strategy, method: Method, common: dict[str, Any]) -> Method:
    """``method`` with the entry's common keys (ltbench.params.COMMON) applied: its ``recipe`` over the
    recipe overrides the strategy sets itself, its ``reduction`` on the loss (one of ltbench.methods.losses'
    ``Reduced`` losses; a loss that reduces its own way is a ``StrategyError``)."""
    changes: dict[str, Any] = {}
    if "recipe" in common:
        changes["recipe"] = {**method.recipe, **common["recipe"]}
    if "reduction" in common:
        if not isinstance(method.loss, Reduced):
            raise StrategyError(f"strategy {spec.name!r}: its loss {type(method.loss).__name__} reduces its own way,"
                                f" so reduction: {common['reduction']} cannot apply")
        changes["loss"] = method.loss.reduced(common["reduction"])
    return replace(method, **changes) if changes else method


def strategy_config(spec: Strategy, module: ModuleType, counts: torch.Tensor, context: dict[str, Any]) -> dict[str, Any]:
    """The ``config`` a strategy sees: the run context, ``total_samples`` and its parameters (its
    file's ``PARAMS`` defaults under the configured values; see ltbench.params).

    A parameter may not shadow a context key (``epochs``, ``arch``, ...): that is a ``StrategyError``,
    and so is an unknown or mistyped parameter.
    """
    base = {**context, "total_samples": int(counts.sum())}
    if base.get("imbalance_ratio") == NATURAL:  # a benchmark on the data as it is: the ratio the data has
        base["imbalance_ratio"] = float(counts.max() / counts.min())
    try:
        own = params.effective(spec, params.of_module(module))
    except ConfigError as exc:
        raise StrategyError(str(exc)) from None
    own = {k: v for k, v in own.items() if k not in params.COMMON}  # the framework applies those (with_common)
    clash = sorted(set(own) & set(base))
    if clash:
        raise StrategyError(f"strategy {spec.name!r}: parameters {clash} shadow the run context; rename them")
    return {**base, **own}


def _check_configuration(spec: Strategy, extra: Any) -> None:
    """``configure`` must return a dict of known ``Method`` fields with a known head."""
    if not isinstance(extra, dict) or not set(extra) <= CONFIGURABLE:
        unknown = sorted(set(extra) - CONFIGURABLE) if isinstance(extra, dict) else type(extra).__name__
        raise StrategyError(f"strategy {spec.name!r}: configure() returned unknown fields {unknown};"
                            f" allowed: {', '.join(sorted(CONFIGURABLE))}")
    if extra.get("head", "linear") not in HEADS:
        raise StrategyError(f"strategy {spec.name!r}: unknown head {extra['head']!r}; known: {', '.join(HEADS)}")
    if extra.get("max_norm") is not None and extra.get("head") == "cosine":
        raise StrategyError(f"strategy {spec.name!r}: MaxNorm bounds the class rows of a linear head's weight;"
                            " a cosine head normalises its class vectors itself, so the two do not combine")
    scale = extra.get("logit_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < float("inf"):
        raise StrategyError(f"strategy {spec.name!r}: logit_scale must be a positive finite number, not {scale!r}")
    if extra.get("trainable", "all") not in TRAINABLE:
        raise StrategyError(f"strategy {spec.name!r}: trainable must be one of {', '.join(TRAINABLE)}")


def _call(spec: Strategy, fn, what: str, counts: torch.Tensor, num_classes: int, config: dict,
          as_tensor: bool = True, timeout: float = TIMEOUT) -> Any:
    """Call a strategy function on a copy of the counts (result as a float32 CPU tensor if ``as_tensor``);
    wrap any failure in ``StrategyError``, and so a function that has not returned within ``timeout``
    seconds (it runs in a daemon thread, which ends with the process)."""
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["out"] = fn(counts.clone(), num_classes, dict(config))
        except Exception as exc:  # re-raised below, in the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=call, name=f"strategy {spec.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise StrategyError(f"strategy {spec.name!r} did not finish computing {what} within {timeout:g} s"
                            f" ({spec.source.name}; the limit is train.strategy_timeout)")
    try:
        if "error" in result:
            raise result["error"]
        return torch.as_tensor(result["out"], dtype=torch.float32).detach().cpu() if as_tensor else result["out"]
    except Exception as exc:
        raise StrategyError(f"strategy {spec.name!r} failed while computing {what}: {type(exc).__name__}: {exc}") from exc


def _check(spec: Strategy, what: str, values: torch.Tensor, num_classes: int, positive: bool) -> None:
    """Raise ``StrategyError`` unless ``values`` is finite, of length ``num_classes`` and (if asked) positive."""
    if values.shape != (num_classes,):
        raise StrategyError(
            f"strategy {spec.name!r} returned {what} of shape {tuple(values.shape)}; expected ({num_classes},)"
        )
    if not torch.isfinite(values).all():
        raise StrategyError(f"strategy {spec.name!r} returned non-finite {what}: {values.tolist()}")
    if positive and not (values > 0).all():
        raise StrategyError(f"strategy {spec.name!r} returned {what} that are not all positive: {values.tolist()}")
