"""The process of one unit of a loan: train the named runs of one benchmark side by side, with a time stamp on
every line of its log (docs/performance.md, "The device plan").

    python scripts/speed/train_runs.py --config results/speed/config-<unit>.yaml --benchmark B \\
        --run ce:0 --run ce:1 --run oversampling:0 --threads 4 --log train.log

It trains as ``scripts/train.py`` does (the runs that share a model in one, the others in groups of their own,
one group after another, each resuming from its checkpoint), but each run is named as ``strategy:seed``, so
that a unit resumed by a later call of a loan trains only the runs it has not finished. ``plan`` gives the
groups as the loan's estimates see them (``estimate.GroupPlan``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path
from typing import TextIO

SPEED = Path(__file__).resolve().parent
sys.path.insert(0, str(SPEED.parent))
sys.path.insert(0, str(SPEED))

import torch  # noqa: E402

import train  # noqa: E402  (scripts/train.py)
from estimate import GroupPlan  # noqa: E402
from ltbench import cli  # noqa: E402
from ltbench import config as cfg  # noqa: E402
from ltbench.training.spec import RunSpec, prepare  # noqa: E402
from ltbench.training.packing import epoch_lengths, pack_groups  # noqa: E402
from ltbench.training.train import run_pack  # noqa: E402


def parse_run(text: str) -> tuple[str, int]:
    """``strategy:seed`` -> (strategy, seed)."""
    strategy, _, seed = text.rpartition(":")
    if not strategy or not seed.isdigit():
        raise argparse.ArgumentTypeError(f"a run is strategy:seed, got {text!r}")
    return strategy, int(seed)


def specs_for(config: dict, benchmark: str, runs: list[tuple[str, int]], threads: int) -> list[RunSpec]:
    """The runs' specs with the pipeline's paths (relative to the working directory), as scripts/train.py
    makes them."""
    return [train.make_spec(config, benchmark, strategy, seed, threads,
                            train.default_paths(config, benchmark, strategy, seed)) for strategy, seed in runs]


def plan(config: dict, benchmark: str, runs: list[tuple[str, int]]) -> list[GroupPlan]:
    """The groups ``run_pack`` trains the runs in (``ltbench.training.packing.pack_groups``; every run's strategy resolved
    as in training), each with its epochs, epoch lengths, batch and evaluated images."""
    specs = specs_for(config, benchmark, runs, threads=1)
    preps = [prepare(spec) for spec in specs]
    with contextlib.redirect_stdout(io.StringIO()):  # pack_groups prints its split; the trainer prints it again
        groups = pack_groups(specs, preps)
    index = preps[0].index
    labels = torch.repeat_interleave(torch.arange(len(index["class_counts"])), torch.tensor(index["class_counts"]))
    held_out = len((index.get("validation") or {}).get("indices", []))
    return [GroupPlan(arch=specs[g[0]].benchmark.arch,
                      tags=tuple(f"{benchmark}/{specs[i].strategy.name}/seed{specs[i].seed}" for i in g),
                      epochs=preps[g[0]].recipe.epochs, images=epoch_lengths(preps[g[0]].method, labels),
                      batch=preps[g[0]].recipe.batch_size, eval_images=index["num_test"] + held_out)
            for g in groups]


class Stamped:
    """A text stream that writes ``@<unix seconds> `` before every line it is given into ``out``, flushing each
    line: the loan reads when each epoch ended and each run was written."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.line_start = out, True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self.line_start:
                self.out.write(f"@{time.time():.3f} ")
            self.out.write(piece)
            self.line_start = piece.endswith("\n")
        self.out.flush()
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, help="config files, merged in order")
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--run", type=parse_run, action="append", required=True, help="strategy:seed, repeated")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--log", required=True, type=Path, help="the time-stamped log (errors go to stderr)")
    args = parser.parse_args(argv)
    config = cli.load_config(*args.config)
    with open(args.log, "w") as log, contextlib.redirect_stdout(Stamped(log)):
        run_pack(specs_for(config, args.benchmark, list(dict.fromkeys(args.run)), args.threads))


if __name__ == "__main__":
    main()
