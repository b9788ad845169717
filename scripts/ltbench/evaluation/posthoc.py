"""Post-hoc strategies: a base run's test logits corrected without retraining."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ltbench import strategies
from ltbench.config import Strategy


def _adjust(spec: Strategy, module, logits: torch.Tensor, counts: torch.Tensor, config: dict) -> torch.Tensor:
    """Call the strategy's ``adjust_logits``; it must return finite logits of the same shape."""
    try:
        out = module.adjust_logits(logits.clone(), counts.clone(), len(counts), dict(config))
        out = torch.as_tensor(out, dtype=torch.float64)
    except Exception as exc:
        raise strategies.StrategyError(
            f"strategy {spec.name!r} failed while adjusting logits: {type(exc).__name__}: {exc}") from exc
    if out.shape != logits.shape or not torch.isfinite(out).all():
        raise strategies.StrategyError(
            f"strategy {spec.name!r} returned adjusted logits of shape {tuple(out.shape)} (expected"
            f" {tuple(logits.shape)}) or non-finite values")
    return out


def adjust_run(spec: Strategy, history: dict[str, Any], predictions: dict[str, np.ndarray],
               context: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The history and predictions of ``spec`` applied to a base run.

    The base run kept the test logits of its best and last epochs; both are adjusted, and
    the better of the two is this run's best epoch (so best >= final, as for trained runs).
    Per-epoch records stay those of the base model (unadjusted) and say so.
    """
    module = strategies.load(spec)
    if not callable(getattr(module, "adjust_logits", None)):
        raise strategies.StrategyError(f"strategy {spec.name!r} has a 'base' run but defines no adjust_logits()")
    counts = torch.as_tensor(history["class_counts"], dtype=torch.float64)
    config = strategies.strategy_config(spec, module, counts, context)
    labels = predictions["labels"]
    adjusted, accuracy = {}, {}
    for which in ("best", "last"):
        logits = torch.as_tensor(predictions[f"{which}_logits"], dtype=torch.float64)
        adjusted[which] = _adjust(spec, module, logits, counts, config)
        accuracy[which] = 100.0 * float((adjusted[which].argmax(1).numpy() == labels).mean())
    last_epoch = len(history["epochs"])
    use_best = accuracy["best"] >= accuracy["last"]
    result = {
        **{k: history[k] for k in ("benchmark", "seed", "recipe", "class_counts", "class_weights")},
        "strategy": {"name": spec.name, "module": spec.module, "params": spec.params, "type": getattr(module, "TYPE", "custom")},
        "logit_offsets": None,
        "posthoc_of": history["strategy"]["name"],
        "best_epoch": history["best_epoch"] if use_best else last_epoch,
        "best_test_acc": max(accuracy.values()),
        "final_test_acc": accuracy["last"],
        "provenance": history["provenance"],
        "epochs_note": "per-epoch records are the base run's, before adjustment",
        "epochs": history["epochs"],
    }
    arrays = {
        "labels": labels,
        "best_pred": adjusted["best" if use_best else "last"].argmax(1).numpy(),
        "last_pred": adjusted["last"].argmax(1).numpy(),
        "best_logits": adjusted["best" if use_best else "last"].float().numpy(),
        "last_logits": adjusted["last"].float().numpy(),
    }
    return result, arrays
