"""Which runs of one job train side by side in one model: the runs of a pack share the benchmark, the
job's settings, the effective recipe, the head, the trainable part and the epoch lengths."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from ltbench.strategies import Method
from ltbench.training.spec import Prepared, RunSpec


def check_pack(specs: list[RunSpec]) -> None:
    """The runs of one job must share the benchmark and the job's settings, and differ in strategy or seed."""
    if not specs:
        raise ValueError("no runs to train")
    shared = ("benchmark", "recipe", "device", "threads", "index_path", "cache_path", "checkpoint_every",
              "compile", "compile_backend", "precision", "memory_format")
    for spec in specs[1:]:
        differs = [name for name in shared if getattr(spec, name) != getattr(specs[0], name)]
        if differs:
            raise ValueError(f"runs trained in one job may differ only in strategy and seed; these differ: {', '.join(differs)}")
    runs = [(spec.strategy.name, spec.seed) for spec in specs]
    if len(set(runs)) != len(runs):
        raise ValueError(f"the runs of one job must be distinct (strategy, seed) pairs: {runs}")


def epoch_lengths(method: Method, labels: torch.Tensor) -> tuple[int, int, int]:
    """(images an epoch visits before ``defer_epoch``, the epoch it changes, images after): what runs
    packed together must share, since every step trains all of them on one batch each. The epoch
    is 0 where the length never changes."""
    draw = torch.Generator().manual_seed(0)
    before = len(method.sampler_at(0).epoch(labels, draw))
    after = len(method.sampler_at(method.defer_epoch).epoch(labels, draw))
    return before, method.defer_epoch if after != before else 0, after


def pack_key(prep: Prepared, labels: torch.Tensor) -> tuple:
    """What runs must have in common to train in one model: the effective recipe, the head, the
    trainable part and the epoch lengths. Runs with a feature hook (per-run state) train alone."""
    method = prep.method
    return (asdict(prep.recipe), method.head, method.trainable, epoch_lengths(method, labels),
            id(prep) if method.feature_hook is not None else None)


def pack_groups(specs: list[RunSpec], preps: list[Prepared]) -> list[list[int]]:
    """The runs (indices into ``specs``) split into groups that train side by side, in order of first
    appearance; each group's runs share ``pack_key``. Prints why runs are split, if they are."""
    counts = preps[0].index["class_counts"]
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    keys = [pack_key(prep, labels) for prep in preps]
    groups: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(repr(key), []).append(i)
    if len(groups) > 1:
        names = ["+".join(dict.fromkeys(specs[i].strategy.name for i in g)) for g in groups.values()]
        print(f"{len(groups)} groups, which train one after another (a group shares the recipe, head, trainable part"
              " and epoch length; a strategy with a feature hook keeps per-run state and trains each run alone): "
              + "; ".join(names))
    return list(groups.values())


def stack_offsets(methods: list[Method], device: torch.device) -> torch.Tensor | None:
    """Every run's training logit offsets (R x classes; zeros for a run without), or None if no run has any."""
    if all(m.logit_offsets is None for m in methods):
        return None
    return torch.stack([torch.zeros_like(m.weights) if m.logit_offsets is None else m.logit_offsets.float()
                        for m in methods]).to(device)
