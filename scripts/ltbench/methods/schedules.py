"""Epoch schedules shared by deferred strategies."""

from __future__ import annotations

from typing import Any

DEFAULT_DEFER_FRACTION = 0.8  # 160 of 200 epochs, as in LDAM-DRW


def defer_epoch(config: dict[str, Any]) -> int:
    """The 0-based epoch from which a deferred component applies: ``defer_epoch`` if set (not None),
    else round(0.8 * epochs) (160 of 200). Must lie in [0, epochs]."""
    epochs = int(config["epochs"])
    given = config.get("defer_epoch")
    epoch = round(DEFAULT_DEFER_FRACTION * epochs) if given is None else int(given)
    if not 0 <= epoch <= epochs:
        raise ValueError(f"defer_epoch must be between 0 and the {epochs} training epochs, got {epoch}")
    return epoch
