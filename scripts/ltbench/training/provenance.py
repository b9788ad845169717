"""What a run's results depend on and where they come from: the code's commit, a run's description (for its
history and its checkpoint's fingerprint) and the losses, samplers and hooks described as text."""

from __future__ import annotations

import os
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ltbench.training.spec import Prepared, RunSpec


REPO = Path(__file__).resolve().parents[3]  # the repository: scripts/ltbench/training/ is three below


def git_commit() -> str:
    """The repository's HEAD commit, with ``+dirty`` if the tree has changes; ``unknown`` outside git.
    Where the code travels without ``.git`` (a copy on a GPU machine), ``LTBENCH_COMMIT`` names it."""
    if os.environ.get("LTBENCH_COMMIT"):
        return os.environ["LTBENCH_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def describe(obj: Any) -> str:
    """A loss, sampler or hook as ``ClassName(attr=value, ...)`` (tensors as lists), or its own ``describe()``."""
    if obj is None:
        return "None"
    if callable(getattr(obj, "describe", None)):
        return obj.describe()
    attrs = ", ".join(
        f"{k}={v.tolist() if isinstance(v, torch.Tensor) else v!r}" for k, v in sorted(vars(obj).items())
    )
    return f"{type(obj).__name__}({attrs})"


def run_description(spec: RunSpec, prep: Prepared) -> dict[str, Any]:
    """What the run's result depends on, for the history and the checkpoint fingerprint."""
    method = prep.method
    return {
        "benchmark": asdict(spec.benchmark),
        "strategy": {"name": spec.strategy.name, "module": spec.strategy.module, "params": spec.strategy.params,
                     "type": method.type},
        "seed": spec.seed,
        "recipe": asdict(prep.recipe),
        "class_counts": prep.index["class_counts"],
        "class_weights": method.weights.tolist(),
        "logit_offsets": None if method.logit_offsets is None else method.logit_offsets.tolist(),
        "method": {
            "loss": describe(method.loss),
            "sampler": describe(method.sampler),
            "head": method.head,
            "defer_epoch": method.defer_epoch,
            "recipe_overrides": method.recipe,
            "trainable": method.trainable,
            "max_norm": method.max_norm,
            "head_bias": method.head_bias,
            "init_model": spec.init_model_path,
            "feature_hook": describe(method.feature_hook),
        },
    }
