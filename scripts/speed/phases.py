"""Where a loan's device time went, in the phases its JSON names (docs/performance.md, "The device plan").

- ``start``: the machine's start and the first transfer in (device time before the first call's command, from
  ``--device-total`` less the first call's device time left), and each unit process's time before its first
  epoch and between its groups (Python, PyTorch, data onto the device, the model, loading checkpoints);
- ``setup``, ``probe``: the call's own unpacking and planning, and the layout probe;
- ``training``, ``evaluation``: the epochs, split by the training images per second the trainer prints (an
  epoch's training is R x its images / that rate; the rest of the epoch evaluates), each without ``compile``:
  a group's first epoch's training and evaluation beyond the median of its other epochs' (compilation and
  cuDNN's autotuning);
- ``writing``: the units' outputs (from a group's last epoch to its last run written), their checkpoints (the
  time between epochs) and the call's packing and copying;
- ``transfer``: device time between two calls (the returned files, the idle wait, the next call's start and
  transfer in: the device tool's counts, not split), from the calls' ``--device-left``;
- ``idle``: the call's time when no unit trained, and a stopped unit's unfinished epoch.

The units' phases are summed over their processes, which run side by side: together they can exceed the
call's wall time.
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from typing import Iterator

from estimate import GroupPlan, Segment

PHASES = ("start", "setup", "probe", "compile", "training", "evaluation", "writing", "transfer", "idle")


def zero() -> dict[str, float]:
    return dict.fromkeys(PHASES, 0.0)


def add(total: dict[str, float], part: dict[str, float]) -> dict[str, float]:
    """``total`` with ``part`` added phase by phase (in place; returned)."""
    for phase, seconds in part.items():
        total[phase] = total.get(phase, 0.0) + seconds
    return total


def rounded(phases: dict[str, float]) -> dict[str, float]:
    return {phase: round(seconds, 1) for phase, seconds in phases.items()}


def process_phases(segments: list[Segment], groups: list[GroupPlan], launched: float, ended: float,
                   finished: bool) -> dict[str, float]:
    """A unit process's seconds by phase from its time-stamped log (``estimate.read_log``), launched and ended at
    these ``time.time()`` moments; the time after its last line is writing if it ``finished``, else idle
    (the unfinished epoch of a stopped process)."""
    phases, cursor = zero(), launched
    for segment in segments:
        first = segment.epochs[0]
        phases["start"] += max(0.0, first.t - first.seconds - cursor)
        group = next((g for g in groups if segment.tags & set(g.tags)), None)
        trains = [min(e.seconds, len(segment.tags) * group.images_at(e.number - 1) / e.rate)
                  if group and e.rate else e.seconds for e in segment.epochs]
        evals = [e.seconds - t for e, t in zip(segment.epochs, trains)]
        phases["compile"] += excess(trains) + excess(evals)
        phases["training"] += sum(trains) - excess(trains)
        phases["evaluation"] += sum(evals) - excess(evals)
        span = segment.epochs[-1].t - (first.t - first.seconds)
        phases["writing"] += max(0.0, span - sum(e.seconds for e in segment.epochs))  # checkpoints, between epochs
        cursor = segment.epochs[-1].t
        if segment.done:
            phases["writing"] += max(0.0, segment.done_t - cursor)
            cursor = segment.done_t
    phases["writing" if finished and segments else "idle" if segments else "start"] += max(0.0, ended - cursor)
    return phases


def excess(seconds: list[float]) -> float:
    """The first epoch's seconds beyond the median of the others (0 for a single epoch)."""
    return max(0.0, seconds[0] - statistics.median(seconds[1:])) if len(seconds) > 1 else 0.0


class Timeline:
    """The call's own seconds by phase: ``with timeline("setup"): ...``."""

    def __init__(self) -> None:
        self.phases = zero()

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.phases[phase] += time.monotonic() - t0
