"""A finished run's outputs: its predictions, final model and history, written atomically (history last),
and the epoch that validation selects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltbench.io import atomic_path, write_json
from ltbench.training.checkpoint import History
from ltbench.training.spec import RunSpec


def validation_selection(epochs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch with the best validation accuracy (the first of ties) and its test accuracy; None
    without validation. Model selection that never looks at the test set."""
    if not epochs or "val_acc" not in epochs[0]:
        return None
    best = max(range(len(epochs)), key=lambda i: (epochs[i]["val_acc"], -i))
    return {"epoch": best + 1, "val_acc": epochs[best]["val_acc"], "test_acc": epochs[best]["test_acc"]}


def write_outputs(spec: RunSpec, description: dict[str, Any], history: History, logits: torch.Tensor,
                  model_state: dict[str, torch.Tensor], labels: torch.Tensor, provenance: dict[str, Any],
                  tag: str) -> dict[str, Any]:
    """Write one run's predictions, final model and history (atomically; history last), then drop its
    checkpoint; returns the history."""
    best = history.best
    written = {
        **description,
        "best_epoch": best + 1,
        "best_test_acc": history.epochs[best]["test_acc"],
        "final_test_acc": history.epochs[-1]["test_acc"],
        "val_selected": validation_selection(history.epochs),
        "provenance": provenance,
        "epochs": history.epochs,
    }
    with atomic_path(spec.predictions_path, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp,
            labels=labels.cpu().numpy(),
            best_pred=history.best_logits.argmax(1).cpu().numpy(),
            last_pred=logits.argmax(1).cpu().numpy(),
            best_logits=history.best_logits.cpu().numpy(),
            last_logits=logits.cpu().numpy(),
        )
    with atomic_path(spec.model_path, suffix=".pt") as tmp:
        torch.save({k: v.cpu().clone() for k, v in model_state.items()}, tmp)
    write_json(spec.history_path, written)
    Path(spec.checkpoint_path).unlink(missing_ok=True)
    print(f"[{tag}] done: best test acc {written['best_test_acc']:.2f} at epoch {best + 1},"
          f" final {written['final_test_acc']:.2f}, {history.train_seconds:.1f} s training")
    return written
