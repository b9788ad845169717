"""A unit of a loan: a benchmark and strategies trained in one process (``train_runs.py``), its name, its
working copy and its config (docs/performance.md, "The device plan")."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from estimate import GroupPlan, Pace  # noqa: E402
from ltbench import cli  # noqa: E402
from ltbench import config as cfg  # noqa: E402

KEEP = Path("results/speed")  # a loan's files on the machine: configs, logs, state, archives waiting
UNIT_OPTIONS = ("seeds", "precision", "root")


@dataclass
class Unit:
    """A benchmark and strategies trained in one process, and what happens to it in this call."""

    benchmark: str
    strategies: list[str]
    seeds: list[int] | None = None  # None: the config's
    precision: str | None = None  # None: the config's
    root: str | None = None  # a working copy of its own under results/speed/roots/ (an fp32 control, say)
    name: str = ""
    layout: str = "auto"
    compile: str | None = None  # torch.compile mode, None: eager
    runs: list[tuple[str, int]] = field(default_factory=list)  # (strategy, seed) not finished at the call's start
    groups: list[GroupPlan] = field(default_factory=list)
    config: Path | None = None
    process: subprocess.Popen | None = None
    status: str = "waiting"
    started: float = 0.0  # monotonic
    launched: float = 0.0  # time.time(), for the log's stamps
    ended: float = 0.0
    log: Path | None = None
    errors: Path | None = None
    pace: Pace | None = None
    finished: list[str] = field(default_factory=list)
    archives: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        return KEEP / "roots" / self.root if self.root else Path(".")

    def folder(self, strategy: str, seed: int) -> Path:
        return self.workdir / cfg.RUN_DIR.format(benchmark=self.benchmark, strategy=strategy, seed=seed)

    def checkpoint(self, tag: str) -> Path:
        """The checkpoint of the run the log tags ``benchmark/strategy/seed<k>``."""
        benchmark, strategy, seed = tag.split("/")
        return self.workdir / cfg.CHECKPOINT.format(benchmark=benchmark, strategy=strategy, seed=seed[len("seed"):])


def parse_unit(text: str) -> Unit:
    """``benchmark=strategy,...[;seeds=0,1][;precision=fp32][;root=NAME]`` -> ``Unit``."""
    head, *options = text.split(";")
    benchmark, _, strategies = head.partition("=")
    settings = dict(option.partition("=")[::2] for option in options)
    if not benchmark or not strategies or set(settings) - set(UNIT_OPTIONS):
        raise argparse.ArgumentTypeError(f"a unit is benchmark=strategy,...[;{'=...;'.join(UNIT_OPTIONS)}=...];"
                                         f" got {text!r}")
    seeds = [int(s) for s in settings["seeds"].split(",")] if "seeds" in settings else None
    return Unit(benchmark, strategies.split(","), seeds, settings.get("precision"), settings.get("root"))


def name_units(units: list[Unit], seeds: list[int]) -> str | None:
    """Give every unit a name for its files: its benchmark, with ``-<root>`` in a working copy of its own and
    ``-<k>`` for the k-th unit of a benchmark after the first. Returns the runs that two units would both
    train (an error), else None."""
    count: dict[str, int] = {}
    owner: dict[tuple, str] = {}
    for unit in units:
        base = f"{unit.benchmark}-{unit.root}" if unit.root else unit.benchmark
        count[base] = count.get(base, 0) + 1
        unit.name = base if count[base] == 1 else f"{base}-{count[base]}"
        for strategy in unit.strategies:
            for seed in unit.seeds or seeds:
                key = (unit.root, unit.benchmark, strategy, seed)
                if key in owner:
                    return f"{unit.benchmark}/{strategy}/seed{seed} is in the units {owner[key]} and {unit.name}"
                owner[key] = unit.name
    return None


def unit_config(args: argparse.Namespace, unit: Unit) -> dict:
    """The merged config of the unit's process: ``--epochs``, checkpoints every ``--checkpoint-every`` epochs (a
    later call resumes from them), ``--eval-batch``, the unit's layout, compile mode and precision. What the runs'
    checkpoints depend on (epochs, evaluation batch, precision) is the same in every call of a chain."""
    config = cli.load_config(*args.config)
    config["recipe"]["epochs"] = args.epochs
    if args.eval_batch:
        config["recipe"]["eval_batch_size"] = args.eval_batch
    config["train"].update(compile=unit.compile or False, memory_format=unit.layout,
                           checkpoint_every=args.checkpoint_every)
    if unit.precision:
        config["train"]["precision"] = unit.precision
    return config
