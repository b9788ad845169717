"""A loan of a GPU as a chain of calls that train units side by side (docs/performance.md, "The device plan").

    LTBENCH_COMMIT=<sha> python3 scripts/speed/loan.py --config config.yaml --device-left 840 --out "$OUT" \\
        --unit resnet32-cifar100lt=ce,inverse_freq,sqrt_inverse,effective_number,balanced_softmax \\
        --unit vgg16bn-cifar100lt=ce,inverse_freq,sqrt_inverse,effective_number,balanced_softmax

For a machine with PyTorch and no Snakemake. A unit is a benchmark and strategies (``;seeds=0,1``,
``;precision=fp32`` and ``;root=NAME``, a working copy of its own, may follow); its process
(``train_runs.py``) trains every strategy with every seed side by side, the runs that share a model in one,
the others in groups of their own, one after another. Units of one benchmark may run side by side (a small
group that cannot share the big unit's model beside it). Every call of a loan is this same command, on the
machine that stays warm between calls; the chain's state (``chain.py``) carries over. In order, a call:

1. sizes itself from the device time left at its start (``--device-left``, the device tool's count, or the last
   call's estimate less the time since; ``chain.plan_call``): at most ``--call-limit`` seconds, leaving ``--gap``
   for the return and the next call's start, and it is the last call when no call of ``--min-call`` would follow;
2. unpacks the carried ``results/data/*.tar.xz`` (and a carried compiler cache), plans every unit's groups from
   the runs it has not finished (``train_runs.plan``), and on the first call probes per architecture the faster
   activation layout, and if asked a compiled step (used where it wins: ``choose_compile``), evaluation batch
   sizes and a profile (``conv_probe.py``);
3. starts the units in the order given, which is also their priority, at most ``--side-by-side`` at a time, each
   only if it would finish within the chain's device time (``estimate``); at most every ``--check`` seconds it
   drops the lowest-priority unit still running if any unit would not finish within the chain, so that the
   others get the GPU;
4. near the call's end (not the last call's) stops each unit right after a checkpoint (``--checkpoint-every``
   epochs), for the next call to resume it; at the end (``--reserve`` seconds before the budget) it stops every
   unit still running at its last whole checkpoint. With ``--carry-over`` no unit is dropped for want of time:
   the last call stops the units in flight at a checkpoint too and returns their checkpoints, which the next loan
   carries as ``results/speed/checkpoints-<unit>.tar.gz`` to resume them;
5. packs every run finished and not packed yet (``pack_runs.py``) and copies, oldest first, what fits the
   return limits (``returns.py``: ``--max-files``, ``--file-mib``, ``--max-mib``) into ``--out``, with the logs
   of every unit stopped or failed; the rest waits for the next call (``--collect``: a call that only returns);
6. writes ``loan-c<k>.json`` (always returned): each unit's status, layout and epoch time, the runs finished, the
   seconds of each phase (``phases.py``) and the chain's totals so far; prints it as one line starting ``loan:``.

The same script runs on a CPU on tiny data (``tests/test_device_plan.py``, ``tests/test_loan_chain.py``), there
with ``--simulate-epoch-s``: a device clock on which each epoch takes that long (``chain.SimulatedClock``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import time
import traceback
from pathlib import Path

import yaml

SPEED = Path(__file__).resolve().parent
sys.path.insert(0, str(SPEED.parent))
sys.path.insert(0, str(SPEED))

import phases  # noqa: E402
from chain import (CallPlan, ChainState, SimulatedClock, WallClock, chain_key, device_left_at_start,  # noqa: E402
                   plan_call)
from estimate import EPOCH  # noqa: E402, F401  (tests/test_pipeline.py reads the trainer's lines with it)
from estimate import (PROCESS_START_S, WRITE_S_PER_RUN, Costs, FlatCosts, Pace, arch_pace, card_of,  # noqa: E402
                      read_log, unit_seconds)
from ltbench import cli  # noqa: E402
from ltbench import config as cfg  # noqa: E402
from pack_runs import model_names, pack_folders  # noqa: E402
from returns import Limits, Returns, write_logs  # noqa: E402
from units import KEEP, Unit, name_units, parse_unit, unit_config  # noqa: E402

PENDING = KEEP / "pending"
CACHE = KEEP / "inductor-cache"  # every unit's TORCHINDUCTOR_CACHE_DIR: compiled graphs kept across the calls
COMPILE_PROBE_S = 120  # more seconds a probe of a compiled step may take (one ResNet-32 compiled in 61 s on an H200)


def unpack(data: Path = Path("results/data")) -> None:
    """Extract every ``*.tar.xz`` under ``data`` whose subsets are not there yet."""
    for archive in sorted(data.glob("*.tar.xz")):
        with tarfile.open(archive) as tar:
            tops = {name.split("/")[0] for name in tar.getnames()}
            if all((data / top / "cache.npz").is_file() for top in tops):
                continue
            tar.extractall(data, filter="data")
        print(f"unpacked {archive}: {', '.join(sorted(tops))}", flush=True)


def unpack_cache(archive: Path = KEEP / "inductor-cache.tar.gz") -> None:
    """Extract a compiler cache carried from an earlier loan, unless this machine has one."""
    if archive.is_file() and not CACHE.exists():
        with tarfile.open(archive) as tar:
            tar.extractall(KEEP, filter="data")
        print(f"unpacked {archive}", flush=True)


def probe_rows(arch: str, runs: int, classes: int, args: argparse.Namespace, *extra: str) -> list[dict]:
    """``conv_probe.py``'s rows for one packed training step of ``runs`` models of ``arch`` (with ``extra``
    arguments; kept in results/speed/probe-<arch>.json); [] if the probe fails or outlasts ``--probe`` seconds
    (and ``COMPILE_PROBE_S`` more with ``extra``: a compilation, evaluation passes, a profile)."""
    out = KEEP / f"probe-{arch}{'-more' if extra else ''}.json"
    cmd = [args.python, str(SPEED / "conv_probe.py"), "--arch", arch, "--runs", str(runs), "--how", "packed",
           "--classes", str(classes), "--batch", str(args.probe_batch), "--steps", "6", "--warmup", "3",
           "--out", str(out), *extra]
    try:
        subprocess.run(cmd, timeout=args.probe + (COMPILE_PROBE_S if extra else 0), check=True, capture_output=True,
                       text=True)
        rows = json.loads(out.read_text())["rows"]
    except (subprocess.SubprocessError, OSError, ValueError, KeyError) as exc:
        print(f"probe {arch}{' ' if extra else ''}{' '.join(extra)}: failed ({exc})", flush=True)
        return []
    print(f"probe {arch} x{runs}: " + ", ".join(f"{r['layout']} {r.get('compile', 'off')} {r['step_ms']:.1f} ms"
                                                  for r in rows), flush=True)
    return rows


def choose_compile(rows: list[dict], layout: str, steps: int, builds: int) -> str | None:
    """The compile mode whose packed step in ``layout`` saves the most over ``steps`` training steps after paying
    ``builds`` times its warm-up's excess over the eager one's (the compilations: one per group and call); None
    (eager) when none saves anything."""
    packed = [r for r in rows if r["how"] == "packed" and r["layout"] == layout]
    eager = next((r for r in packed if r.get("compile", "off") == "off"), None)
    best, saving = None, 0.0
    for row in packed if eager else []:
        if row.get("compile", "off") != "off":
            gain = (eager["step_ms"] - row["step_ms"]) / 1000 * steps - builds * (row["warmup_s"] - eager["warmup_s"])
            best, saving = (row["compile"], gain) if gain > saving else (best, saving)
    return best


def detect_card() -> str:
    """The first GPU's name by ``nvidia-smi``; ``cpu`` without one."""
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=30).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "cpu"
    return names[0].strip() or "cpu"


def signal_group(unit: Unit, sig: int) -> bool:
    """Send ``sig`` to the unit's process group; whether it was still there."""
    try:
        os.killpg(unit.process.pid, sig)
        return True
    except ProcessLookupError:
        return False


class Loan:
    """One call of the chain: its units, its clock, its timeline and the files it brings back."""

    def __init__(self, args: argparse.Namespace, state: ChainState, plan: CallPlan, clock: WallClock) -> None:
        self.args, self.units, self.state, self.plan, self.clock = args, args.unit, state, plan, clock
        self.call, self.timeline, self.logs, self.carried = state.call, phases.Timeline(), [], []
        self.card = args.card or detect_card()
        self.costs = FlatCosts(clock.epoch_s) if clock.epoch_s else Costs(card_of(self.card))
        self.out, self.seeds = Path(args.out), cli.load_config(*args.config)["seeds"]
        self.last_drop = -1e9

    # --- time
    def call_left(self) -> float:
        """Seconds left in this call before its reserve."""
        return self.plan.budget - self.args.reserve - self.clock.elapsed()

    def chain_left(self) -> float:
        """Seconds a unit in flight can still train in the chain: what is left of this call, and each later call
        less its reserve and the unit's restart."""
        return self.call_left() + sum(max(0.0, b - self.args.reserve - PROCESS_START_S) for b in self.plan.later)

    def say(self, text: str) -> None:
        print(f"[{self.clock.elapsed():6.1f} s] {text}", flush=True)

    # --- setup
    def survey(self) -> None:
        """Every unit's runs left (after unpacking checkpoints carried from an earlier loan); a unit done or
        dropped in an earlier call stays so."""
        for unit in self.units:
            record = self.state.units.setdefault(unit.name, {})
            unit.layout, unit.compile = record.get("layout", unit.layout), record.get("compile", self.args.compile)
            carried = KEEP / f"checkpoints-{unit.name}.tar.gz"
            if carried.is_file() and not record.get("carried_in"):  # once a chain: later calls have newer ones
                with tarfile.open(carried) as tar:
                    tar.extractall(unit.workdir, filter="data")
                record["carried_in"] = True
                self.say(f"{unit.name}: unpacked {carried}")
            runs = [(s, k) for s in unit.strategies for k in unit.seeds or self.seeds]
            unit.runs = [r for r in runs if not self.is_finished(unit, *r)]
            if "dropped" in record:
                unit.status = f"dropped in call {record['dropped']}"
            elif not unit.runs:
                unit.status = "done"

    def prepare(self) -> None:
        """The groups of every unit still waiting, as its process will train them, and their pace."""
        from train_runs import plan  # PyTorch: only once the call trains

        for unit in self.units:
            if unit.status == "waiting":
                unit.groups = plan(unit_config(self.args, unit), unit.benchmark, unit.runs)
                unit.pace = Pace(unit.groups, self.costs, epoch_s=self.clock.epoch_s)

    def is_finished(self, unit: Unit, strategy: str, seed: int) -> bool:
        return all((unit.folder(strategy, seed) / name).is_file() for name in model_names(self.args.with_model))

    def probe(self) -> None:
        """Per architecture, once per chain, for the largest group of its units: the faster activation layout,
        and with ``--probe-compile`` whether compiling the step wins (``choose_compile``)."""
        config, chosen = cli.load_config(*self.args.config), {}
        for unit in self.units:
            record = self.state.units[unit.name]
            if "layout" in record or not unit.groups:
                continue
            arch = unit.groups[0].arch
            if self.args.probe and arch not in chosen:
                chosen[arch] = self.probe_arch(config, unit.benchmark, arch)
            unit.layout, compiled = chosen.get(arch, (config["train"].get("memory_format", "auto"), None))
            unit.compile = self.args.compile or compiled
            record.update(layout=unit.layout, compile=unit.compile)

    def probe_arch(self, config: dict, benchmark: str, arch: str) -> tuple[str, str | None]:
        """The layout of the faster packed step of ``arch``'s largest group and the compile mode that wins, if any;
        the probe's files (``probe-<arch>*.json``, ``profile-<arch>.txt``) wait to go back."""
        data = cfg.DATA_DIR.format(data_id=cfg.benchmark(config, benchmark).data_id)
        classes = json.loads(Path(data, "index.json").read_text())["num_classes"]
        units = [u for u in self.units if u.groups and u.groups[0].arch == arch]
        runs = max(g.runs for u in units for g in u.groups)
        rows = probe_rows(arch, runs, classes, self.args)
        if not rows:
            return "auto", None
        layout = min(rows, key=lambda row: row["step_ms"])["layout"]
        extra = self.probe_extra(arch, max(g.eval_images for u in units for g in u.groups))
        if not extra:
            return layout, None
        rows += probe_rows(arch, runs, classes, self.args, "--layouts", layout, *extra)
        files = (KEEP / f"probe-{arch}.json", KEEP / f"probe-{arch}-more.json", KEEP / f"profile-{arch}.txt")
        self.state.pending += [str(path) for path in files if path.is_file()]
        steps = max(sum(g.steps_at(0) * g.epochs for g in u.groups) for u in units)
        builds = max(len(u.groups) for u in units) * (1 + len(self.plan.later))
        return layout, choose_compile(rows, layout, steps, builds)

    def probe_extra(self, arch: str, images: int) -> list[str]:
        """``conv_probe.py``'s arguments for what ``--probe-compile``, ``--probe-eval-batches`` (an evaluation of
        ``images``) and ``--probe-profile`` ask to measure beyond the layout (its files go back with the call)."""
        extra = ["--compile", self.args.probe_compile] if self.args.probe_compile else []
        if self.args.probe_eval_batches:
            extra += ["--eval-batches", self.args.probe_eval_batches, "--eval-images", str(images)]
        if self.args.probe_profile:
            extra += ["--profile", str(self.args.probe_profile), "--profile-out", str(KEEP / f"profile-{arch}.txt")]
        return extra

    # --- training
    def training(self) -> list[Unit]:
        return [u for u in self.units if u.status == "training"]

    def launch(self, unit: Unit) -> None:
        """Start the unit's process on its runs left, resuming any from their checkpoints."""
        unit.config = KEEP / f"config-{unit.name}.yaml"
        unit.config.write_text(yaml.safe_dump(unit_config(self.args, unit), sort_keys=False))
        unit.log = KEEP / f"train-{unit.name}-c{self.call}.log"
        unit.errors = KEEP / f"stderr-{unit.name}-c{self.call}.log"
        if unit.root:
            (unit.workdir / "results").mkdir(parents=True, exist_ok=True)
            if not (unit.workdir / "results/data").exists():
                (unit.workdir / "results/data").symlink_to(Path("results/data").resolve())
        cmd = [self.args.python, str(SPEED / "train_runs.py"), "--config", str(unit.config.resolve()),
               "--benchmark", unit.benchmark, "--threads", str(self.args.threads), "--log", str(unit.log.resolve())]
        cmd += [a for s, k in unit.runs for a in ("--run", f"{s}:{k}")]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TORCHINDUCTOR_CACHE_DIR": str(CACHE.resolve())}
        with open(unit.errors, "w") as errors:
            unit.process = subprocess.Popen(cmd, cwd=unit.workdir, env=env, start_new_session=True,
                                            stdout=subprocess.DEVNULL, stderr=errors)
        unit.status, unit.started, unit.launched = "training", time.monotonic(), time.time()
        self.clock.launch(unit.name)
        self.say(f"{unit.name}: {len(unit.runs)} runs in {len(unit.groups)} group(s), layout {unit.layout},"
                 f" compile {unit.compile or 'off'}")

    def estimate(self, unit: Unit) -> float | None:
        """Seconds the unit's process takes from its start (its runs resume where the last call stopped)."""
        return unit_seconds(unit.groups, self.costs, self.state.units[unit.name].get("resumes"))

    def eta(self, unit: Unit) -> float | None:
        """Seconds until the unit's process ends: its epochs left and its runs' outputs (from its own time on a
        simulated clock: ``chain.SimulatedClock.lag``)."""
        left = unit.pace.remaining(unit.log)
        if left is None:
            return None
        return left + WRITE_S_PER_RUN * (len(unit.runs) - len(self.done_runs(unit))) - self.clock.lag(unit.name)

    def done_runs(self, unit: Unit) -> list[tuple[str, int]]:
        return [r for r in unit.runs if self.is_finished(unit, *r)]

    def launch_waiting(self, late: bool) -> None:
        """Start waiting units in priority order while there is room on the device and time in the call, none
        of the units training is late, and the unit would finish within the chain."""
        room = self.args.side_by_side or len(self.units)
        for unit in self.units:
            if unit.status != "waiting" or len(self.training()) >= room or late:
                continue
            if self.call_left() < self.args.min_call:
                return
            seconds = self.estimate(unit)
            if seconds is not None and seconds > self.chain_left() and not self.args.carry_over:
                unit.status = f"not started: would not finish (about {seconds:.0f} s, {self.chain_left():.0f} s left)"
                self.say(f"{unit.name}: {unit.status}")
                continue
            self.launch(unit)

    def watch(self) -> None:
        """Start the units, watch them, and stop them as the call and the chain require (module docstring)."""
        late: list[str] = []
        while True:
            self.launch_waiting(bool(late) and not self.args.carry_over)
            running = self.training()
            if not running:
                return
            time.sleep(self.args.poll)
            self.clock.observe({u.name: sum(len(s.epochs) for s in read_log(u.log)) for u in self.units if u.log})
            for unit in running:
                if unit.process.poll() is not None:
                    self.collect(unit)
            running = self.training()
            if running and self.call_left() <= 0:
                for unit in running:
                    self.stop_at_checkpoint(unit, hard=True)
                return
            if not self.plan.last or self.args.carry_over:
                for unit in running:
                    window = self.args.checkpoint_every * (unit.pace.epoch_s(unit.log) or 0) + 2 * self.args.poll
                    if self.call_left() <= window:
                        self.stop_at_checkpoint(unit, hard=False)
            late = self.check_late(self.training())

    def check_late(self, running: list[Unit]) -> list[str]:
        """The units that would not finish within the chain; drops the lowest-priority unit running if any
        (at most every ``--check`` seconds)."""
        etas = {u.name: self.eta(u) for u in running}
        late = [name for name, eta in etas.items() if eta is not None and eta > self.chain_left()]
        if late and not self.args.carry_over and time.monotonic() - self.last_drop > self.args.check:
            why = (f"would not finish ({', '.join(f'{n} eta {etas[n]:.0f} s' for n in late)},"
                   f" {self.chain_left():.0f} s left in the chain)")
            self.drop(running[-1], why)
            for unit in running[:-1]:  # more of the device now: their pace is measured again
                unit.pace.reset()
            self.last_drop = time.monotonic()
        return late

    def drop(self, unit: Unit, why: str) -> None:
        """Stop the unit for the rest of the chain."""
        if signal_group(unit, signal.SIGKILL):
            unit.status = f"dropped: {why}"
            self.state.units[unit.name]["dropped"] = self.call
        self.collect(unit)

    def checkpoint_state(self, unit: Unit) -> str:
        """``fresh`` when every unwritten run of the group training now has a checkpoint written after the log's
        last line (so at its last epoch); ``mixed`` when some checkpoints are newer than that line and some
        older (they are being written); else ``consistent`` (none, or all from one earlier epoch: a resumed
        group starts from there, or afresh)."""
        segments = read_log(unit.log)
        if not segments or segments[-1].done:
            return "consistent"
        stamp = unit.log.stat().st_mtime_ns
        paths = [unit.checkpoint(tag) for tag in segments[-1].tags]
        newer = [p.stat().st_mtime_ns >= stamp for p in paths if p.is_file()]
        if newer and len(newer) == len(paths) and all(newer):
            return "fresh"
        return "mixed" if any(newer) and not all(newer) else "consistent"

    def stop_at_checkpoint(self, unit: Unit, hard: bool) -> None:
        """Kill the unit's process once its checkpoints allow it (``stoppable``); a killed unit resumes in the
        next call, unless this is the last. A soft stop that must wait lets the process go on."""
        if unit.process.poll() is not None:
            self.collect(unit)
            return
        state = self.stoppable(unit, hard)
        if state is None:
            return
        signal_group(unit, signal.SIGKILL)
        self.record_resume(unit, fresh=state == "fresh")
        if not self.plan.last:
            unit.status = f"paused at a checkpoint ({state}): resumes in the next call"
        elif self.args.carry_over:
            unit.status = f"stopped at a checkpoint ({state}): its checkpoints go back for the next loan"
        else:
            unit.status = "stopped: the chain's time is up"
        self.collect(unit)

    def stoppable(self, unit: Unit, hard: bool) -> str | None:
        """Freeze the unit's process and return its checkpoints' state (``checkpoint_state``) if it may be killed
        now: ``fresh``, or with ``hard`` anything but ``mixed`` (waiting up to 10 s for the writing to end, then
        whatever it is). Else the process runs on and the answer is None."""
        for _ in range(100 if hard else 1):
            signal_group(unit, signal.SIGSTOP)
            state = self.checkpoint_state(unit)
            if state == "fresh" or (hard and state == "consistent"):
                return state
            signal_group(unit, signal.SIGCONT)
            time.sleep(0.1 if hard else 0)
        return state if hard else None

    def record_resume(self, unit: Unit, fresh: bool) -> None:
        """Where the group in flight resumes, for the next call's estimate: its last epoch if the checkpoint is
        fresh, else the last multiple of ``--checkpoint-every`` before it."""
        segments = read_log(unit.log)
        if not segments or segments[-1].done:
            return
        last, every = segments[-1].epochs[-1].number, self.args.checkpoint_every
        epoch = last if fresh else last // every * every
        self.state.units[unit.name]["resumes"] = dict.fromkeys(segments[-1].tags, epoch)

    def collect(self, unit: Unit) -> None:
        """The unit's process ended: pack the runs it finished, keep the logs of a unit not done, and measure
        its phases."""
        code = unit.process.wait()
        unit.ended = time.monotonic()
        if unit.status == "training":
            unit.status = "done" if code == 0 else f"failed (exit {code}; see {unit.errors.name})"
        if unit.status == "done":
            self.state.units[unit.name].pop("resumes", None)
        else:
            self.logs += [unit.log, unit.errors]
        if unit.status.startswith("failed") and unit.compile:  # the next call trains it eager
            self.state.units[unit.name]["compile"] = None
        unit.finished = [f"{unit.benchmark}/{s}/seed{k}" for s, k in self.done_runs(unit)]
        self.pack(unit)
        if self.plan.last and self.args.carry_over and unit.status != "done":
            self.carried += [self.pack_checkpoints(unit)]
        unit.phases = phases.process_phases(read_log(unit.log), unit.groups, unit.launched,
                                            unit.launched + unit.ended - unit.started, finished=code == 0)
        self.say(f"{unit.name}: {unit.status} after {unit.ended - unit.started:.0f} s; {len(unit.finished)} runs"
                 f" finished, " + (", ".join(Path(a).name for a in unit.archives) or "no archive"))

    def pack(self, unit: Unit) -> None:
        """Archive the unit's finished runs that no archive holds yet, into results/speed/pending/."""
        key = f"{unit.root or ''}:"
        runs = [(s, k) for s, k in self.done_runs(unit)
                if f"{key}{unit.benchmark}/{s}/seed{k}" not in self.state.packed]
        if not runs:
            return
        suffix = unit.name[len(unit.benchmark) + 1:]
        archives, errors = pack_folders(unit.benchmark, [unit.folder(s, k) for s, k in runs], PENDING,
                                        self.args.archive_mib, model_names(self.args.with_model),
                                        f"{suffix}-c{self.call}" if suffix else f"c{self.call}", unit.workdir)
        for error in errors:
            self.say(f"{unit.name}: {error}")
        unit.archives += [str(a) for a in archives]
        self.state.pending += [str(a) for a in archives]
        self.state.packed += [f"{key}{unit.benchmark}/{s}/seed{k}" for s, k in runs]

    def pack_checkpoints(self, unit: Unit) -> Path:
        """The checkpoints of the unit's unfinished runs as results/speed/pending/checkpoints-<unit>.tar.gz
        (members relative to its working copy), for the next loan to carry as results/speed/."""
        archive = PENDING / f"checkpoints-{unit.name}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for strategy, seed in unit.runs:
                path = Path(cfg.CHECKPOINT.format(benchmark=unit.benchmark, strategy=strategy, seed=seed))
                if (unit.workdir / path).is_file() and not self.is_finished(unit, strategy, seed):
                    tar.add(unit.workdir / path, arcname=str(path))
        return archive

    def stop_all(self) -> None:
        """Kill every unit still training (on the way out, whatever happened)."""
        for unit in self.training():
            if signal_group(unit, signal.SIGKILL):
                unit.status = "stopped: the call ended"
            self.collect(unit)

    # --- returning
    def finish(self) -> dict:
        """Return what fits, keep the rest pending, write and return the call's JSON, save the chain's state."""
        with self.timeline("writing"):
            logs = write_logs(PENDING / f"logs-c{self.call}.tar.gz", self.logs)
            self.state.pending += [str(logs)] if logs else []
            self.state.pending += [str(path) for path in self.carried]
            cache = self.cache_archive() if self.plan.last and self.args.return_cache_mib and CACHE.is_dir() else None
            self.state.pending += [str(cache)] if cache else []
            returns = Returns(self.out, Limits(self.args.max_files, self.args.file_mib, self.args.max_mib))
            left = returns.place([Path(p) for p in self.state.pending])
            returned = [Path(p).name for p in self.state.pending if Path(p) not in left]
            self.state.pending = [str(p) for p in left]
        record = self.record(returned)
        self.state.calls.append(record)
        left_s = self.plan.device_left
        self.state.device_left_s = None if left_s is None else left_s - self.clock.elapsed()
        self.state.ended_at = time.time()
        summary = {**record, "chain": self.totals()}
        path = KEEP / f"loan-c{self.call}.json"
        path.write_text(json.dumps(summary, indent=1))
        if not returns.put(path, kept=True):
            print(f"{path} does not fit the return", flush=True)
        self.state.save()
        return summary

    def cache_archive(self) -> Path | None:
        """The compiler cache as results/speed/pending/inductor-cache.tar.gz, if it is at most
        ``--return-cache-mib`` (carried into the next loan as results/speed/inductor-cache.tar.gz)."""
        archive = PENDING / "inductor-cache.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(CACHE, arcname=CACHE.name)
        if archive.stat().st_size <= self.args.return_cache_mib * 2**20:
            return archive
        print(f"the compiler cache takes {archive.stat().st_size / 2**20:.1f} MiB: not returned", flush=True)
        return None

    def call_phases(self) -> dict[str, float]:
        """This call's seconds by phase: its own timeline, its units' processes, and the device time before it."""
        total = phases.add(phases.zero(), self.timeline.phases)
        for unit in self.units:
            phases.add(total, unit.phases)
        launched = [u for u in self.units if u.started]
        busy = max(u.ended for u in launched) - min(u.started for u in launched) if launched else 0.0
        wall = self.clock.elapsed() - self.clock.charged
        total["idle"] += max(0.0, wall - sum(self.timeline.phases.values()) - busy)
        total["training"] += self.clock.charged
        before = self.device_before()
        total["start" if self.call == 1 else "transfer"] += before or 0.0
        return total

    def device_before(self) -> float | None:
        """Device seconds spent before this call's command: the machine's start and first transfer (the first
        call, with ``--device-total``) or the time since the last call (a later call)."""
        if self.plan.device_left is None:
            return None
        if self.call == 1:
            return None if self.args.device_total is None else self.args.device_total - self.plan.device_left
        return None if self.state.device_left_s is None else self.state.device_left_s - self.plan.device_left

    def record(self, returned: list[str]) -> dict:
        """This call's record (the JSON without the chain's totals)."""
        return {
            "call": self.call, "commit": os.environ.get("LTBENCH_COMMIT", "unknown"), "card": self.card,
            "paces": self.pace_sources(),
            "device_left_s": self.plan.device_left, "budget_s": round(self.plan.budget, 1), "last": self.plan.last,
            "elapsed_s": round(self.clock.elapsed(), 1),
            "runs_finished": sum(len(u.finished) for u in self.units),
            "phases_s": phases.rounded(self.call_phases()),
            "units": [self.unit_record(u) for u in self.units],
            "returned": returned, "pending": [Path(p).name for p in self.state.pending],
            "next": self.next_step(),
        }

    def pace_sources(self) -> dict[str, str]:
        """Per architecture of the units, where the estimates' pace comes from."""
        if self.clock.epoch_s:
            return {"all": f"simulated: {self.clock.epoch_s:g} s an epoch"}
        archs = {g.arch for u in self.units for g in u.groups}
        return {arch: getattr(arch_pace(self.costs.card, arch), "source", f"none for {self.card}: the trainer's own"
                              " epochs once measured") for arch in sorted(archs)}

    def unit_record(self, unit: Unit) -> dict:
        segments = read_log(unit.log) if unit.log else []
        epochs = [e.seconds for s in segments for e in s.epochs[1:]]
        return {"name": unit.name, "benchmark": unit.benchmark, "strategies": unit.strategies,
                "status": unit.status, "layout": unit.layout, "compile": unit.compile,
                "wall_s": round(unit.ended - unit.started, 1) if unit.started else None,
                "epoch_s": round(statistics.median(epochs), 3) if epochs else None,
                "runs_finished": unit.finished, "archives": [Path(a).name for a in unit.archives],
                "phases_s": phases.rounded(unit.phases)}

    def next_step(self) -> str:
        """What the caller does next: ``train`` (the same command again: it resumes the units), ``collect`` (the
        same command with ``--collect``: it returns the files still waiting) or ``done``."""
        unfinished = any(u.status.startswith(("waiting", "paused")) for u in self.units)
        if unfinished and not self.plan.last:
            return "train"
        return "collect" if self.state.pending else "done"

    def totals(self) -> dict:
        """The chain's totals over its calls so far: runs finished and seconds by phase."""
        total = phases.zero()
        for call in self.state.calls:
            phases.add(total, call["phases_s"])
        return {"calls": len(self.state.calls), "runs_finished": sum(c["runs_finished"] for c in self.state.calls),
                "phases_s": phases.rounded(total)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unit", type=parse_unit, action="append", required=True,
                        help="benchmark=strategy,...[;seeds=0,1][;precision=fp32][;root=NAME]")
    parser.add_argument("--config", action="append", default=None, help="config files, merged in order")
    parser.add_argument("--out", default=os.environ.get("OUT", "results/speed/out"))
    time_ = parser.add_argument_group("time")
    time_.add_argument("--device-left", type=float, default=None,
                       help="device seconds left as this call starts (the device tool's budget_left_s less what the"
                            " call's start takes); without it the last call's estimate, or one call of --budget")
    time_.add_argument("--device-total", type=float, default=None,
                       help="device seconds of the whole loan (for the first call's 'start' phase)")
    time_.add_argument("--budget", type=float, default=570.0, help="seconds of a single call (no device time known)")
    time_.add_argument("--call-limit", type=float, default=588.0, help="most seconds of one call (timeout_s 600)")
    time_.add_argument("--gap", type=float, default=30.0,
                       help="device seconds after a call: its return, the idle wait, the next call's start")
    time_.add_argument("--min-call", type=float, default=90.0, help="the shortest call worth training in")
    time_.add_argument("--reserve", type=float, default=20.0, help="seconds kept at a call's end for packing")
    time_.add_argument("--check", type=float, default=30.0, help="seconds between two drops")
    time_.add_argument("--poll", type=float, default=5.0)
    time_.add_argument("--simulate-epoch-s", type=float, default=None,
                       help="tests: a device clock on which every epoch takes this long")
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=200)
    train.add_argument("--threads", type=int, default=4, help="CPU threads per process")
    train.add_argument("--side-by-side", type=int, default=0, help="most units training at once (0: all)")
    train.add_argument("--checkpoint-every", type=int, default=5, help="epochs between a unit's checkpoints")
    train.add_argument("--compile", default=None,
                       help="torch.compile mode of every unit (reduce-overhead: CUDA graphs), whatever the probe says")
    train.add_argument("--probe-compile", default=None,
                       help="probe this torch.compile mode too and compile where it wins (the first call's probe)")
    train.add_argument("--probe-eval-batches", default="", help="probe evaluation passes at these batch sizes too")
    train.add_argument("--probe-profile", type=int, default=0, help="profile this many packed steps in the probe")
    train.add_argument("--eval-batch", type=int, default=None, help="test images per evaluation batch")
    train.add_argument("--probe", type=int, default=60, help="seconds the layout probe of one architecture may take"
                       " (0: no probe: the config's layout, eager unless --compile)")
    train.add_argument("--probe-batch", type=int, default=128, help="the probe's batch (the recipe's)")
    train.add_argument("--card", default=None, help="the GPU's name (default: nvidia-smi's), for the paces")
    train.add_argument("--python", default=sys.executable)
    back = parser.add_argument_group("return")
    back.add_argument("--max-files", type=int, default=8)
    back.add_argument("--file-mib", type=float, default=16.0)
    back.add_argument("--max-mib", type=float, default=64.0)
    back.add_argument("--archive-mib", type=float, default=15.5, help="largest archive of runs")
    back.add_argument("--with-model", action="store_true",
                      help="bring each run's model.pt back too (a stage 2 here builds on it)")
    back.add_argument("--return-cache-mib", type=float, default=0.0,
                      help="return the compiler cache from the last call if it is at most this large")
    back.add_argument("--collect", action="store_true", help="train nothing: only return the files still waiting")
    back.add_argument("--carry-over", action="store_true",
                      help="drop no unit for want of time: the last call stops the units in flight at a checkpoint"
                           " and returns their checkpoints (checkpoints-<unit>.tar.gz, carried by the next loan as"
                           " results/speed/)")
    args = parser.parse_args(argv)
    args.config = args.config or ["config.yaml"]
    clash = name_units(args.unit, cli.load_config(*args.config)["seeds"])
    if clash:
        parser.error(f"one run, one unit: {clash}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    KEEP.mkdir(parents=True, exist_ok=True)
    PENDING.mkdir(parents=True, exist_ok=True)
    key = chain_key([(u.benchmark, u.strategies, u.seeds, u.precision, u.root) for u in args.unit], args.epochs,
                    args.eval_batch, [Path(c).read_text() for c in args.config])
    state = ChainState.load(key, any_key=args.collect)
    clock = SimulatedClock(args.simulate_epoch_s) if args.simulate_epoch_s else WallClock()
    left = device_left_at_start(args.device_left, state, time.time())
    plan = plan_call(left, args.budget, args.call_limit, args.gap, args.min_call)
    if args.collect:
        plan = CallPlan(0.0, True, left)
    loan = Loan(args, state, plan, clock)
    loan.say(f"call {loan.call}: {plan.budget:.0f} s" + (f" of {left:.0f} s of device time left" if left else "")
             + (", the last" if plan.last else f", then {len(plan.later)} more"))
    crashed = False
    try:
        loan.survey()
        if not args.collect:
            with loan.timeline("setup"):
                unpack()
                unpack_cache()
                loan.prepare()
            with loan.timeline("probe"):
                loan.probe()
            loan.watch()
    except Exception:  # the call still returns what its units finished, and its JSON
        traceback.print_exc()
        crashed = True
    finally:
        loan.stop_all()
    for unit in loan.units:
        if unit.status == "waiting":
            unit.status = ("waiting: for a training call" if args.collect else "waiting: for the next call"
                           if not plan.last else "not started: too little time")
    summary = loan.finish()
    print("loan: " + json.dumps(summary), flush=True)
    bad = [u for u in loan.units if u.status.startswith(("failed", "dropped", "stopped:", "not started"))]
    return 1 if bad or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
