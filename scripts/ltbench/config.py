"""Resolve names in config.yaml into plain specs; pure Python, no torch.

Shared by the Snakemake rules (through rules/common.smk) and the plain command-line
entry points, so both read the configuration the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


STRATEGY_DIR = Path(__file__).parent / "strategies"
NATURAL = "natural"  # the imbalance ratio that trains on a dataset's own distribution, without a long-tail cut


class ConfigError(ValueError):
    """The configuration names something that does not exist or is malformed."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark column: an architecture trained on a long-tailed dataset (``imbalance_ratio``:
    rho of the canonical long-tail cut, or ``natural`` for the data as it is)."""

    name: str
    arch: str
    dataset: str
    imbalance_ratio: float | str

    @property
    def data_id(self) -> str:
        """Folder name of the materialized subset, e.g. ``cifar10-lt100`` or ``mine-ltnatural``."""
        return data_id(self.dataset, self.imbalance_ratio)


@dataclass(frozen=True)
class Strategy:
    """A configured strategy: the module (one file in ``strategies/``) and its parameters."""

    name: str
    module: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> Path:
        """The strategy's file."""
        return STRATEGY_DIR / f"{self.module}.py"

    @property
    def stage(self) -> str:
        """How the run is made: ``train``; ``stage2`` (param ``stage1``: fine-tunes that strategy's
        final model); ``posthoc`` (param ``base``: adjusts that strategy's test logits)."""
        if "stage1" in self.params:
            return "stage2"
        return "posthoc" if "base" in self.params else "train"

    @property
    def upstream(self) -> str | None:
        """The strategy a stage-2 or post-hoc strategy builds on."""
        return self.params.get("stage1", self.params.get("base"))


def format_ratio(ratio: float | str) -> str:
    """``100.0 -> '100'``, ``12.5 -> '12.5'``, ``'natural' -> 'natural'``: the ratio as it appears in paths."""
    if ratio == NATURAL:
        return NATURAL
    return str(int(ratio)) if float(ratio).is_integer() else str(ratio)


def data_id(dataset: str, ratio: float | str) -> str:
    """The name of the subset of ``dataset`` at imbalance ``ratio`` (``DATA_ID``)."""
    return DATA_ID.format(dataset=dataset, ratio=format_ratio(ratio))


def parse_ratio(value: float | str) -> float | str:
    """An imbalance ratio from the config or a path: ``natural``, or a number (as a float)."""
    if value == NATURAL:
        return NATURAL
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"imbalance ratio {value!r} is neither a number nor {NATURAL!r}") from None


def merge(config: dict[str, Any], update: dict[str, Any]) -> None:
    """Merge ``update`` into ``config`` key by key, recursively for dicts: a dict keeps its keys that
    ``update`` lacks (``strategies:`` and ``benchmarks:`` of a second file are added to the first's),
    anything else is replaced."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            merge(config[key], value)
        else:
            config[key] = value


def check_finite(value: Any, where: str = "config") -> None:
    """``ConfigError`` naming the key of any NaN or infinite number in a nested config (JSON Schema
    bounds cannot catch NaN: it fails every comparison, so ``lr: .nan`` would pass ``minimum: 0``)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} is {value}; every number in the configuration must be finite")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        check_finite(item, f"{where}.{key}" if isinstance(value, dict) else f"{where}[{key}]")


# Recipe keys added after the published recipe, with the value that leaves it as published.
RECIPE_OPTIONS = {"warmup_epochs": 0}


def recipe_identity(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe as its runs' rerun trigger: without the ``RECIPE_OPTIONS`` at their neutral value, so
    that stating one (or adding a new option) retrains nothing."""
    return {k: v for k, v in recipe.items() if RECIPE_OPTIONS.get(k, object()) != v}


def check_recipe(recipe: dict[str, Any], where: str = "recipe") -> None:
    """``ConfigError`` unless the warm-up fits in the epochs: 0 <= warmup_epochs <= epochs."""
    warmup = recipe.get("warmup_epochs", 0)
    if not 0 <= warmup <= recipe["epochs"]:
        raise ConfigError(f"{where}: warmup_epochs is {warmup}, which does not lie between 0 and the"
                          f" {recipe['epochs']} epochs")


def benchmark(config: dict[str, Any], name: str) -> Benchmark:
    """The benchmark called ``name``; ``ConfigError`` names the known ones otherwise."""
    benchmarks = config.get("benchmarks", {})
    if name not in benchmarks:
        raise ConfigError(f"unknown benchmark {name!r}; config.yaml defines: {', '.join(benchmarks) or 'none'}")
    entry = benchmarks[name]
    if entry["dataset"] not in config.get("datasets", {}):
        raise ConfigError(
            f"benchmark {name!r} uses dataset {entry['dataset']!r}, which is not under 'datasets' in config.yaml"
        )
    dataset(config, entry["dataset"])
    return Benchmark(name, entry["arch"], entry["dataset"], parse_ratio(entry["imbalance_ratio"]))


def strategy(config: dict[str, Any], name: str) -> Strategy:
    """The strategy called ``name`` with its parameters (``module`` defaults to the name)."""
    strategies = config.get("strategies", {})
    if name not in strategies:
        raise ConfigError(f"unknown strategy {name!r}; config.yaml defines: {', '.join(strategies) or 'none'}")
    params = dict(strategies[name] or {})
    module = params.pop("module", name)
    spec = Strategy(name, module, params)
    if spec.upstream is not None:
        upstream = strategies.get(spec.upstream, False)
        if upstream is False or {"stage1", "base"} & set(upstream or {}):
            raise ConfigError(
                f"strategy {name!r} builds on {spec.upstream!r}, which must be a trained strategy in config.yaml"
            )
    if not spec.source.is_file():
        known = sorted(p.stem for p in STRATEGY_DIR.glob("*.py") if not p.stem.startswith("_"))
        raise ConfigError(
            f"strategy {name!r} needs the file {spec.source.name} in scripts/ltbench/strategies/, which does not exist;"
            f" available: {', '.join(known)}"
        )
    return spec


def matrix(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The table's benchmarks and strategies: the ``matrix`` lists if given, else everything configured."""
    chosen = config.get("matrix", {})
    return list(chosen.get("benchmarks", config["benchmarks"])), list(chosen.get("strategies", config["strategies"]))


def table_reference(config: dict[str, Any]) -> str:
    """The strategy the table compares every row with (``table: reference:``, default ``ce``)."""
    return config.get("table", {}).get("reference", "ce")


def dataset(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The dataset entry ``name`` (its ``format``; ``path`` for image folders and manifests; optional
    ``image_size``, and ``test_fraction`` or ``test_per_class`` for a source without a test split)."""
    datasets = config.get("datasets", {})
    if name not in datasets:
        raise ConfigError(f"unknown dataset {name!r}; config.yaml defines: {', '.join(datasets) or 'none'}")
    entry = dict(datasets[name])
    if "test_fraction" in entry and "test_per_class" in entry:
        raise ConfigError(f"dataset {name!r} sets both test_fraction and test_per_class; keep one")
    return entry


# Where outputs land, relative to the working directory; the rules use the same patterns.
DATA_ID = "{dataset}-lt{ratio}"  # a materialized subset's name, e.g. cifar10-lt100 or mine-ltnatural
DATA_DIR = "results/data/{data_id}"
RUN_DIR = "results/runs/{benchmark}/{strategy}/seed{seed}"
CHECKPOINT = "results/checkpoints/{benchmark}/{strategy}/seed{seed}.pt"
# A run's results, what a GPU session brings back of it (scripts/speed/pack_runs.py, scripts/results.py import);
# and its final weights, which come back too for a run that a stage 2 builds on (the stage 2's input)
RUN_FILES = ("history.json", "predictions.npz")
MODEL_FILE = "model.pt"
