"""What a run is: the recipe, the run's spec (its benchmark, strategy, seed, settings and file paths), its
inputs checked and prepared before the first step (``prepare``), and the learning rate of each epoch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ltbench import strategies
from ltbench.config import Benchmark, ConfigError, Strategy, check_recipe, format_ratio
from ltbench.datasets.data import DataError
from ltbench.io import read_json
from ltbench.strategies import Method
from ltbench.training.replicas import check_compile_mode


@dataclass(frozen=True)
class Recipe:
    """The fixed training recipe (config.yaml ``recipe``)."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    crop_padding: int
    flip: bool
    eval_batch_size: int
    lr_schedule: str = "cosine"  # or "cosine_shifted" (ltbench.training.spec.SCHEDULES); strategies may override it
    warmup_epochs: int = 0  # linear warm-up of the learning rate (0: none, as in the published recipe)


@dataclass(frozen=True)
class RunSpec:
    """One training run and where its inputs and outputs live."""

    benchmark: Benchmark
    strategy: Strategy
    seed: int
    recipe: Recipe
    device: str
    threads: int
    index_path: str
    cache_path: str
    history_path: str
    predictions_path: str
    model_path: str
    checkpoint_path: str
    checkpoint_every: int = 0
    init_model_path: str | None = None  # stage 2: start from this run's final weights
    compile: str | None = None  # torch.compile mode (ltbench.training.replicas.COMPILE_MODES); None: eager
    precision: str = "auto"  # ltbench.training.devices.PRECISION_CHOICES: auto, bf16 or fp32
    memory_format: str = "auto"  # ltbench.training.devices.MEMORY_FORMATS: auto, channels_last or contiguous
    compile_backend: str = "inductor"
    strategy_timeout: float = strategies.TIMEOUT  # seconds each strategy function may take


@dataclass
class Prepared:
    """Validated inputs of a run, ready to train."""

    index: dict[str, Any]
    method: Method
    recipe: Recipe


def strategy_context(spec: RunSpec) -> dict[str, Any]:
    """What every strategy is told about the run besides the class counts."""
    return strategies.context(asdict(spec.benchmark), spec.recipe.epochs)


def effective_recipe(spec: RunSpec, method: Method) -> Recipe:
    """The recipe with the strategy's overrides applied; unknown recipe keys are a ``StrategyError``."""
    unknown = set(method.recipe) - {f.name for f in fields(Recipe)}
    if unknown:
        raise strategies.StrategyError(f"strategy {spec.strategy.name!r} overrides unknown recipe keys {sorted(unknown)}")
    recipe = replace(spec.recipe, **method.recipe)
    if recipe.lr_schedule not in SCHEDULES:
        raise strategies.StrategyError(f"strategy {spec.strategy.name!r}: unknown lr_schedule {recipe.lr_schedule!r};"
                                       f" known: {', '.join(SCHEDULES)}")
    try:
        check_recipe(asdict(recipe), f"strategy {spec.strategy.name!r}: recipe")  # the dry run's check, again here
    except ConfigError as exc:  # for the plain command, which has no dry run
        raise strategies.StrategyError(str(exc)) from None
    return recipe


def prepare(spec: RunSpec) -> Prepared:
    """Load the index, resolve and validate the strategy and the compile mode; no training yet."""
    if not Path(spec.index_path).is_file():
        bench = spec.benchmark
        raise DataError(f"no materialized subset at {spec.index_path}: make it with `python scripts/materialize.py"
                        f" --dataset {bench.dataset} --ratio {format_ratio(bench.imbalance_ratio)}` (the workflow,"
                        " `snakemake`, makes it by itself)")
    index = read_json(spec.index_path)
    method = strategies.resolve(spec.strategy, index["class_counts"], strategy_context(spec), spec.strategy_timeout)
    check_compile_mode(spec.compile)
    return Prepared(index, method, effective_recipe(spec, method))


# Epochs the cosine schedule runs ahead: "cosine_shifted" steps the scheduler before each epoch
# (as LTR-weight-balancing's stage 2 does), so its epoch e uses the rate of e + 1 and its last runs at 0.
SCHEDULES = {"cosine": 0, "cosine_shifted": 1}


def cosine_lr(base_lr: float, epoch: int, epochs: int, schedule: str = "cosine") -> float:
    """lr_e = base_lr * (1 + cos(pi * (e + s) / E)) / 2 for epoch e = 0..E-1 (one step per epoch), with
    s = ``SCHEDULES[schedule]``."""
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * (epoch + SCHEDULES[schedule]) / epochs))


def learning_rate(recipe: Recipe, epoch: int) -> float:
    """The rate of 0-based ``epoch``: the cosine rate times the linear warm-up factor min(1, (e + 1) / W)
    for W = ``recipe.warmup_epochs`` > 0 (as LDAM-DRW's code warms up: base_lr * e' / W in epochs e' = 1..W)."""
    rate = cosine_lr(recipe.lr, epoch, recipe.epochs, recipe.lr_schedule)
    return rate * min(1.0, (epoch + 1) / recipe.warmup_epochs) if recipe.warmup_epochs > 0 else rate
