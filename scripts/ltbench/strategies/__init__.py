"""Strategies: one file per strategy, behind one small interface.

A strategy module defines

    compute_class_weights(class_counts, num_classes, config) -> Tensor[num_classes]

the weights for ``nn.CrossEntropyLoss(weight=...)``. It may also define

    compute_logit_offsets(class_counts, num_classes, config) -> Tensor[num_classes]

per-class offsets added to the logits in the training loss only (balanced softmax).

``class_counts`` is a float64 tensor of training images per class, in label order;
``config`` is a dict with ``imbalance_ratio``, ``dataset``, ``arch``,
``total_samples`` and the strategy's own parameters from config.yaml.
``resolve`` calls the module and validates what it returns, so a broken strategy
stops the run before training starts.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Sequence

import torch

from ltbench.config import Strategy


class StrategyError(ValueError):
    """A strategy is missing, raised, or returned unusable weights or offsets."""


@dataclass(frozen=True)
class ResolvedStrategy:
    """What training needs from a strategy: validated loss weights and logit offsets."""

    weights: torch.Tensor
    logit_offsets: torch.Tensor | None


def load(spec: Strategy) -> ModuleType:
    """Import ``ltbench.strategies.<module>`` and check it has ``compute_class_weights``."""
    try:
        module = importlib.import_module(f"{__name__}.{spec.module}")
    except ImportError as exc:
        raise StrategyError(f"strategy {spec.name!r}: cannot import module {spec.module!r}: {exc}") from exc
    if not callable(getattr(module, "compute_class_weights", None)):
        raise StrategyError(f"strategy {spec.name!r}: {spec.source.name} defines no compute_class_weights()")
    return module


def resolve(spec: Strategy, class_counts: Sequence[int], context: dict[str, Any]) -> ResolvedStrategy:
    """Compute and validate the strategy's weights (and offsets) for these class counts.

    ``context`` holds ``imbalance_ratio``, ``dataset`` and ``arch``; ``total_samples``
    and the strategy's parameters are added here.
    """
    module = load(spec)
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    num_classes = len(counts)
    config = {**context, "total_samples": int(counts.sum()), **spec.params}
    weights = _call(spec, module.compute_class_weights, "class weights", counts, num_classes, config)
    _check(spec, "class weights", weights, num_classes, positive=True)
    offsets = None
    if callable(getattr(module, "compute_logit_offsets", None)):
        offsets = _call(spec, module.compute_logit_offsets, "logit offsets", counts, num_classes, config)
        _check(spec, "logit offsets", offsets, num_classes, positive=False)
    return ResolvedStrategy(weights, offsets)


def _call(spec: Strategy, fn, what: str, counts: torch.Tensor, num_classes: int, config: dict) -> torch.Tensor:
    """Call a strategy function on a copy of the counts; wrap its failures in ``StrategyError``."""
    try:
        out = fn(counts.clone(), num_classes, dict(config))
        return torch.as_tensor(out, dtype=torch.float32).detach().cpu()
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
