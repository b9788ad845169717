"""One call of a lent GPU that trains whole units side by side until its deadline (docs/performance.md).

    LTBENCH_COMMIT=<sha> python3 scripts/speed/loan.py --budget 570 --out "$OUT" \\
        --unit resnet32-cifar100lt=ce,inverse_freq,sqrt_inverse,effective_number,balanced_softmax \\
        --unit vgg16bn-cifar100lt=ce,inverse_freq,sqrt_inverse,effective_number,balanced_softmax

For a machine with PyTorch and no Snakemake. A unit is a benchmark and strategies; it trains every
strategy with every seed of the config in one process (``scripts/train.py``: the runs that share a
model train in one), and the units of a call train at the same time, one process each, in the
order given, which is also their priority. In order:

1. unpack every ``results/data/*.tar.xz`` carried with the call (one archive may hold several subsets);
2. per architecture, time one packed training step in each activation layout (``conv_probe.py``,
   a few seconds) and train in the faster one;
3. start the units; at most every ``--check`` seconds, from the pace of each process's epochs (``Pace``),
   stop the lowest-priority unit still running if any unit would not finish before the deadline
   (``--budget`` seconds after the start, less ``--reserve`` for packing), so that the others get the GPU;
4. pack each finished unit at once (``pack_runs.py``) into ``--out``, at most ``--max-files`` files in
   all (a call brings back 8); archives beyond that wait in ``results/speed/pending/`` for a call
   that copies them out while the machine is warm;
   A stopped or failed unit's finished runs (its earlier groups) are packed too;
5. print a summary (one JSON line, starting ``loan:``) with each unit's status, layout, wall time and
   the median epoch time, also written as ``loan.json`` to ``--out`` where a file is left.

The same script runs on a CPU on tiny data (``tests/test_device_plan.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SCRIPTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCRIPTS))

from ltbench import cli  # noqa: E402
from ltbench import config as cfg  # noqa: E402

KEEP = Path("results/speed")
EPOCH = re.compile(r"\] epoch (\d+)/(\d+) loss .* in ([\d.]+) s,")
GROUPS = re.compile(r"^(\d+) groups, which train one after another", re.M)


def parse_unit(text: str) -> Unit:
    """``benchmark=strategy,strategy,...`` -> ``Unit``."""
    benchmark, _, strategies = text.partition("=")
    if not benchmark or not strategies:
        raise argparse.ArgumentTypeError(f"a unit is benchmark=strategy,strategy,...; got {text!r}")
    return Unit(benchmark, strategies.split(","))


def unpack(data: Path = Path("results/data")) -> None:
    """Extract every ``*.tar.xz`` under ``data`` whose subsets are not there yet."""
    for archive in sorted(data.glob("*.tar.xz")):
        with tarfile.open(archive) as tar:
            tops = {name.split("/")[0] for name in tar.getnames()}
            if all((data / top / "cache.npz").is_file() for top in tops):
                continue
            tar.extractall(data, filter="data")
        print(f"unpacked {archive}: {', '.join(sorted(tops))}", flush=True)


def faster_layout(arch: str, runs: int, classes: int, python: str, seconds: int, batch: int = 128) -> str:
    """The activation layout of the faster packed training step of ``runs`` models of ``arch``
    (``conv_probe.py``, its rows kept in results/speed/probe-<arch>.json); ``auto`` if the probe fails."""
    out = KEEP / f"probe-{arch}.json"
    cmd = [python, str(SCRIPTS / "speed/conv_probe.py"), "--arch", arch, "--runs", str(runs), "--how", "packed",
           "--classes", str(classes), "--batch", str(batch), "--steps", "6", "--warmup", "3", "--out", str(out)]
    try:
        subprocess.run(cmd, timeout=seconds, check=True, capture_output=True, text=True)
        rows = json.loads(out.read_text())["rows"]
    except (subprocess.SubprocessError, OSError, ValueError, KeyError) as exc:
        print(f"probe {arch}: failed ({exc}); layout auto", flush=True)
        return "auto"
    best = min(rows, key=lambda row: row["step_ms"])
    print(f"probe {arch} x{runs}: " + ", ".join(f"{r['layout']} {r['step_ms']:.1f} ms" for r in rows)
          + f" -> {best['layout']}", flush=True)
    return best["layout"]


def write_config(files: list[str], unit: Unit, epochs: int) -> tuple[Path, list[int]]:
    """The merged config for the unit's process (``epochs``, eager, its layout, no checkpoints: they
    would not come back), written under results/speed; returns its path and the seeds."""
    config = cli.load_config(*files)
    config["recipe"]["epochs"] = epochs
    config["train"].update(compile=False, memory_format=unit.layout, checkpoint_every=0)
    path = KEEP / f"config-{unit.benchmark}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, [int(s) for s in config["seeds"]]


def progress(log: Path) -> tuple[int, int, int, int, list[float]] | None:
    """(groups in all, groups begun, epochs in all, the current group's last finished epoch, the wall seconds
    of each epoch it finished in this process) by a training log (a process trains its groups of runs one
    after another, ``ltbench.training.packing.pack_groups``, and prints a line per run and epoch, with the epoch's
    seconds); None before the first epoch."""
    if not log.is_file():
        return None
    text = log.read_text(errors="replace")
    found = EPOCH.findall(text)
    if not found:
        return None
    groups = GROUPS.search(text)
    current: dict[int, float] = {}
    begun, last = 1, 0
    for epoch, total, seconds in ((int(e), int(t), float(s)) for e, t, s in found):
        if epoch < last:  # the count restarts: the next group began
            begun, current = begun + 1, {}
        current[epoch], last = seconds, epoch
    return int(groups[1]) if groups else 1, begun, int(found[-1][1]), last, [current[e] for e in sorted(current)]


class Pace:
    """A process's remaining time: the median wall time of the epochs its current group finished since the
    mark (the first look after the group's second epoch, whose first epoch carries cuDNN's autotuning),
    times the epochs left in this group and in the groups after it (as many as this one's, at its pace: an
    estimate where later groups differ, as a stage 2 does). The times are the trainer's own,
    printed with each epoch, so the look's timing does not enter. ``reset`` moves the mark to the next look
    (after another process stopped, this one runs faster)."""

    def __init__(self, need: int = 3) -> None:
        self.need = need  # epochs past the mark before an estimate
        self.mark: tuple[int, int] | None = None  # (group, epochs finished) at the mark

    def reset(self) -> None:
        self.mark = None

    def remaining(self, log: Path) -> float | None:
        """Seconds to the last epoch of the last group; None until ``need`` epochs past the mark."""
        seen = progress(log)
        if seen is None or len(seen[4]) < 2:
            return None
        groups, group, epochs, done, times = seen
        if self.mark is None or self.mark[0] != group or len(times) < self.mark[1]:
            self.mark = (group, len(times))
            return None
        recent = times[self.mark[1]:]
        if len(recent) < self.need:
            return None
        return ((epochs - done) + (groups - group) * epochs) * statistics.median(recent)


@dataclass
class Unit:
    """A benchmark and the strategies trained together in one process."""

    benchmark: str
    strategies: list[str]
    layout: str = "auto"
    process: subprocess.Popen | None = None
    status: str = "waiting"
    started: float = 0.0
    ended: float = 0.0
    archives: list[str] = field(default_factory=list)
    pace: Pace = field(default_factory=Pace)

    @property
    def log(self) -> Path:
        return KEEP / f"train-{self.benchmark}.log"


def epoch_seconds(benchmark: str, strategies: list[str]) -> float | None:
    """The median epoch time (s) of the unit's first finished run, from its history."""
    for strategy in strategies:
        for history in sorted(Path(f"results/runs/{benchmark}/{strategy}").glob("seed*/history.json")):
            return statistics.median(e["seconds"] for e in json.loads(history.read_text())["epochs"])
    return None


class Loan:
    """The call: its units, its clock and the files it brings back."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.units, self.t0 = args, args.unit, time.monotonic()
        self.out, self.pending = Path(args.out), KEEP / "pending"
        self.out.mkdir(parents=True, exist_ok=True)
        self.pending.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        """Seconds left for training (before the packing reserve)."""
        return self.args.budget - self.args.reserve - (time.monotonic() - self.t0)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f} s] {text}", flush=True)

    def start(self, unit: Unit) -> None:
        config, seeds = write_config(self.args.config, unit, self.args.epochs)
        cmd = [self.args.python, str(SCRIPTS / "train.py"), "--config", str(config), "--benchmark", unit.benchmark,
               "--threads", str(self.args.threads), "--log", str(unit.log)]
        cmd += [a for s in unit.strategies for a in ("--strategy", s)] + [a for s in seeds for a in ("--seed", str(s))]
        unit.log.unlink(missing_ok=True)  # a warm machine keeps an earlier call's log: never read its epochs
        unit.process = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                                        stderr=open(KEEP / f"stderr-{unit.benchmark}.log", "w"))
        unit.status, unit.started = "training", time.monotonic()
        self.say(f"{unit.benchmark}: {len(unit.strategies)} strategies x {len(seeds)} seeds, layout {unit.layout}")

    @staticmethod
    def kill(unit: Unit) -> bool:
        """Kill the unit's process (its whole session) if it still runs; whether it did."""
        if unit.process.poll() is not None:
            return False
        os.killpg(unit.process.pid, signal.SIGKILL)
        unit.process.wait()
        return True

    def stop(self, unit: Unit, why: str) -> None:
        """Kill the unit's process; a process that ended meanwhile is collected instead."""
        if self.kill(unit):
            unit.status = f"stopped: {why}"
            self.say(f"{unit.benchmark}: {unit.status}")
        self.collect(unit)

    def files_out(self) -> int:
        return sum(1 for p in self.out.iterdir() if p.is_file())

    def collect(self, unit: Unit) -> None:
        """A unit's process ended: pack every run it finished (a stopped or failed unit's earlier groups too)."""
        unit.ended, code = time.monotonic(), unit.process.returncode
        if unit.status == "training":
            unit.status = "done" if code == 0 else f"failed (exit {code}; see results/speed/stderr-{unit.benchmark}.log)"
        made = self.pending / unit.benchmark
        subprocess.run([self.args.python, str(SCRIPTS / "speed/pack_runs.py"), "--benchmark", unit.benchmark,
                        *[a for s in unit.strategies for a in ("--strategy", s)], "--out-dir", str(made),
                        *(["--with-model"] if self.args.with_model else [])], check=False, capture_output=True)
        for archive in sorted(made.glob("*.tar.gz")):
            if self.files_out() < self.args.max_files and not (self.out / archive.name).exists():
                archive = Path(shutil.move(archive, self.out / archive.name))
            unit.archives.append(str(archive))
        self.say(f"{unit.benchmark}: {unit.status} after {unit.ended - unit.started:.0f} s; "
                 + (", ".join(unit.archives) or "no finished run"))

    def stop_all(self) -> None:
        """Kill every unit still training (on the way out, whatever happened)."""
        for unit in self.units:
            if unit.status == "training" and unit.process is not None and self.kill(unit):
                unit.status = "stopped: the call ended"

    def watch(self) -> None:
        """Wait for the units, stopping the lowest-priority one still running while any would overrun."""
        last_stop = -1e9
        while any(u.status == "training" for u in self.units):
            time.sleep(self.args.poll)
            for unit in self.units:
                if unit.status == "training" and unit.process.poll() is not None:
                    self.collect(unit)
            running = [u for u in self.units if u.status == "training"]
            if not running:
                break
            if self.left() <= 0:
                for unit in running:
                    self.stop(unit, "out of time")
                break
            etas = {u.benchmark: u.pace.remaining(u.log) for u in running}
            late = [b for b, eta in etas.items() if eta is not None and eta > self.left()]
            if late and time.monotonic() - last_stop > self.args.check:
                self.stop(running[-1], f"would not finish ({', '.join(f'{b} eta {etas[b]:.0f} s' for b in late)},"
                                       f" {self.left():.0f} s left)")
                for unit in running[:-1]:  # alone on the GPU now: their pace is measured again
                    unit.pace.reset()
                last_stop = time.monotonic()

    def summary(self) -> dict:
        return {"commit": os.environ.get("LTBENCH_COMMIT", "unknown"), "budget_s": self.args.budget,
                "elapsed_s": round(time.monotonic() - self.t0, 1),
                "units": [{"benchmark": u.benchmark, "strategies": u.strategies, "status": u.status, "layout": u.layout,
                           "wall_s": round(u.ended - u.started, 1) if u.started else None,
                           "epoch_s": epoch_seconds(u.benchmark, u.strategies) if u.status == "done" else None,
                           "archives": [Path(a).name for a in u.archives],
                           "waiting": [a for a in u.archives if not a.startswith(str(self.out))]}
                          for u in self.units]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unit", type=parse_unit, action="append", required=True, help="benchmark=strategy,...")
    parser.add_argument("--config", action="append", default=None, help="config files, merged in order")
    parser.add_argument("--out", default=os.environ.get("OUT", "results/speed/out"))
    parser.add_argument("--budget", type=float, default=570.0, help="seconds this call may take")
    parser.add_argument("--reserve", type=float, default=30.0, help="seconds kept for packing at the end")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4, help="CPU threads per process")
    parser.add_argument("--probe", type=int, default=60, help="seconds the layout probe of one architecture may take"
                        " (0: no probe, the config's layout)")
    parser.add_argument("--probe-batch", type=int, default=128, help="the probe's batch (the recipe's)")
    parser.add_argument("--check", type=float, default=30.0, help="seconds between two stops")
    parser.add_argument("--poll", type=float, default=5.0)
    parser.add_argument("--max-files", type=int, default=8)
    parser.add_argument("--with-model", action="store_true",
                        help="bring each run's model.pt back too (a stage 2 here builds on it)")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    args.config = args.config or ["config.yaml"]
    twice = sorted({u.benchmark for u in args.unit if [v.benchmark for v in args.unit].count(u.benchmark) > 1})
    if twice:
        parser.error(f"one unit per benchmark (its log, config and archives are named by it): {', '.join(twice)}"
                     " is given twice; list all its strategies in one --unit")
    os.environ["PYTHONUNBUFFERED"] = "1"
    KEEP.mkdir(parents=True, exist_ok=True)
    loan = Loan(args)
    unpack()
    config = cli.load_config(*args.config)
    layouts: dict[str, str] = {}
    for unit in args.unit:
        bench = cfg.benchmark(config, unit.benchmark)
        if args.probe and bench.arch not in layouts:
            index = json.loads(Path(cfg.DATA_DIR.format(data_id=bench.data_id), "index.json").read_text())
            runs = len(unit.strategies) * len(config["seeds"])
            layouts[bench.arch] = faster_layout(bench.arch, runs, index["num_classes"], args.python, args.probe,
                                                   args.probe_batch)
        unit.layout = layouts.get(bench.arch, config["train"].get("memory_format", "auto"))
    try:
        for unit in args.unit:
            loan.start(unit)
        loan.watch()
    finally:
        loan.stop_all()
    summary = loan.summary()
    print("loan: " + json.dumps(summary), flush=True)
    (KEEP / "loan.json").write_text(json.dumps(summary, indent=1))
    if loan.files_out() < args.max_files:
        (loan.out / "loan.json").write_text(json.dumps(summary, indent=1))
    return 0 if all(u.status == "done" for u in args.unit) else 1


if __name__ == "__main__":
    sys.exit(main())
