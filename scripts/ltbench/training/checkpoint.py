"""Resumable training state, written atomically every few epochs.

A checkpoint carries a fingerprint of everything the run depends on (spec, strategy
weights, data checksums, the meaning of the training code); a checkpoint whose fingerprint
differs (the training code or the configuration changed since) is ignored, never resumed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ltbench import code
from ltbench.io import atomic_path


@dataclass
class History:
    """A run's history so far (what its history.json records): per-epoch records, the best epoch and its
    test logits, and the training seconds."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    best: int | None = None
    best_logits: torch.Tensor | None = None
    train_seconds: float = 0.0

    def record(self, entry: dict[str, Any], logits: torch.Tensor) -> None:
        """Append an epoch; keep its logits if its test accuracy beats every earlier epoch."""
        self.epochs.append(entry)
        if self.best is None or entry["test_acc"] > self.epochs[self.best]["test_acc"]:
            self.best, self.best_logits = len(self.epochs) - 1, logits


def fingerprint(description: dict[str, Any], strategy_source: Path) -> str:
    """sha256 over the run description (JSON) and the meaning (``ltbench.code``) of the training code:
    ``scripts/train.py`` and the strategy file with every ``ltbench`` module they import. An edit
    elsewhere (plots, tables), or to a comment or docstring, leaves a half-finished run resumable."""
    digest = hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode())
    digest.update(code.identity(code.SCRIPTS / "train.py", strategy_source).encode())
    return digest.hexdigest()


def save(path: str, stamp: str, model_state: dict, optimizer_state: dict, generator: torch.Generator, hook,
         history: History) -> None:
    """Write a run's model and optimizer state, RNG states, any feature hook's state and history to
    ``path`` atomically."""
    state = {
        "fingerprint": stamp,
        "model": model_state,
        "optimizer": optimizer_state,
        "hook": hook.state_dict() if hook is not None else None,
        "generator": generator.get_state(),
        "cpu_rng": torch.get_rng_state(),
        "history": {**history.__dict__, "best_logits": history.best_logits.cpu()},
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load(path: str, stamp: str, device) -> dict[str, Any] | None:
    """The state saved at ``path`` (keys as in ``save``; ``history`` as a ``History``).

    Returns None (start afresh) when there is no checkpoint or its fingerprint differs.
    """
    if not Path(path).is_file():
        return None
    state = torch.load(path, map_location=device, weights_only=False)
    if state.get("fingerprint") != stamp:
        print(f"ignoring {path}: it was written by a different configuration or code")
        return None
    state["history"] = History(**state["history"])
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    """Put the run's generator and the global CPU RNG back where ``state`` left them. Both take
    their state as a CPU ByteTensor, whatever device the generator draws on and wherever the
    checkpoint was loaded to (``CUDAGeneratorImpl::set_state`` rejects a CUDA tensor)."""
    generator.set_state(state["generator"].cpu())
    torch.set_rng_state(state["cpu_rng"].cpu())
