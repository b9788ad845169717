"""How long a loan's units take: the measured pace of each card, a cost model per group of runs, and the pace
read from a unit's training log (docs/performance.md, "The device plan").

A unit's process trains its groups (``ltbench.training.packing.pack_groups``) one after another. The cost of one epoch of
a group of R runs on a card is

    steps x (step_ms + run_ms x R) / 1000  +  eval_images / 1000 x eval_ms x R / 1000   seconds,

with the architecture's numbers from ``PACES`` (steps: the group's images an epoch over the batch, rounded up;
evaluation: the test images and any validation images, every epoch). Where a card has no entry, or no card is
known (a CPU), the cost of a group relative to another is its FLOPs: 3 forward passes per training image and
one per evaluated image, times R (``relative_work``).
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class ArchPace:
    """One architecture's epoch on one card: a packed training step of R runs takes ``step_ms + run_ms x R``
    milliseconds, evaluating 1,000 images ``eval_ms x R``; ``source`` says where the numbers come from."""

    step_ms: float
    run_ms: float
    eval_ms: float
    source: str


# NVIDIA H200, torch 2.11.0+cu130, bf16, channels_last, eager (docs/performance.md, "Measurements").
# ResNet-32: the probes of 5 and 15 packed runs (10.7 and 18.4 ms) give 0.77 ms a run; in training a step of 15
# runs took 19.9 ms (CIFAR-100-LT, 85 steps) and 18.9 ms (CIFAR-10-LT, 97 steps), so 19.4 - 15 x 0.77 = 7.85 ms
# fixed; the 15 runs' evaluation of 10,000 test images took 0.322 s (both benchmarks), 2.15 ms a run per 1,000.
# VGG-16-BN: the probe of 8, 10, 12 and 15 runs (16.0-26.0 ms: 4.6 + 1.42 R) times 1.05, the ratio of ResNet-32's
# step in training to its probe; its evaluation is not measured: ResNet-32's times 4.55, the ratio of their
# forward FLOPs (0.6265 and 0.1377 GFLOP an image).
H200 = {
    "resnet32": ArchPace(7.85, 0.77, 2.15, "measured on an H200 (loans 1 and 2)"),
    "vgg16bn": ArchPace(4.85, 1.50, 9.8, "steps measured on an H200 (loan-2 probe); evaluation estimated"
                                         " from FLOPs (4.55x ResNet-32's), not measured"),
}
PACES = {"H200": H200}
# Cards without a measurement of their own: (a measured card, the factor on its times, why).
SCALED = {"H100": ("H200", 4.8 / 3.35, "not measured on an H100 yet: the H200's pace times 1.43, the ratio of"
                                       " their memory bandwidths (4.8 and 3.35 TB/s)")}

# A unit process's start before its first epoch and the first epoch's cuDNN autotuning, which a resumed unit
# pays again in every call (loan 2: 11 s of the process outside the trainer's epochs, first epoch 7 s over the
# median); writing one run's outputs at the end of its group. Both estimates until a chained loan's JSON
# (phases "start", "compile", "writing") measures them.
PROCESS_START_S = 20.0
WRITE_S_PER_RUN = 0.7


def card_of(device_name: str) -> str | None:
    """The card a device name names (``NVIDIA H200`` -> ``H200``), if ``PACES`` or ``SCALED`` knows it."""
    return next((card for card in (*PACES, *SCALED) if card in device_name), None)


def arch_pace(card: str | None, arch: str) -> ArchPace | None:
    """``arch``'s pace on ``card``: measured (``PACES``), scaled from a measured card (``SCALED``, its source
    saying so), or None."""
    if card in PACES:
        return PACES[card].get(arch)
    if card in SCALED:
        base, factor, why = SCALED[card]
        pace = PACES[base].get(arch)
        return pace and replace(pace, step_ms=pace.step_ms * factor, run_ms=pace.run_ms * factor,
                                eval_ms=pace.eval_ms * factor, source=why)
    return None


@dataclass(frozen=True)
class GroupPlan:
    """Runs that train in one model, one after another with the unit's other groups: as the estimate sees them.
    ``images`` is (images an epoch before the switch, the 0-based epoch of the switch or 0, images after), as
    ``ltbench.training.packing.epoch_lengths`` gives them."""

    arch: str
    tags: tuple[str, ...]  # "benchmark/strategy/seed<k>", as the trainer's log names its runs
    epochs: int
    images: tuple[int, int, int]
    batch: int
    eval_images: int

    @property
    def runs(self) -> int:
        return len(self.tags)

    def images_at(self, epoch: int) -> int:
        """Training images each run sees in 0-based ``epoch``."""
        before, switch, after = self.images
        return after if switch and epoch >= switch else before

    def steps_at(self, epoch: int) -> int:
        return math.ceil(self.images_at(epoch) / self.batch)


def relative_work(group: GroupPlan, epoch: int) -> float:
    """FLOPs of one epoch in forward passes of an image: R x (3 x training images + evaluated images)."""
    return group.runs * (3 * group.images_at(epoch) + group.eval_images)


class Costs:
    """Seconds of one epoch of a group: from a card's ``ArchPace`` where there is one, else unknown (None)."""

    def __init__(self, card: str | None = None) -> None:
        self.card = card

    def epoch_s(self, group: GroupPlan, epoch: int) -> float | None:
        pace = arch_pace(self.card, group.arch)
        if pace is None:
            return None
        step = group.steps_at(epoch) * (pace.step_ms + pace.run_ms * group.runs)
        return (step + group.eval_images / 1000 * pace.eval_ms * group.runs) / 1000

    def group_s(self, group: GroupPlan, first: int = 0) -> float | None:
        """Seconds of the group's epochs from 0-based ``first`` to its last."""
        costs = [self.epoch_s(group, e) for e in _switch_points(group, first)]
        if None in costs:
            return None
        return sum(cost * count for cost, count in zip(costs, _switch_counts(group, first)))

    def ratio(self, group: GroupPlan, epoch: int, than: GroupPlan, than_epoch: int) -> float:
        """An epoch of ``group`` over one of ``than``: by the card's costs, else by ``relative_work``."""
        a, b = self.epoch_s(group, epoch), self.epoch_s(than, than_epoch)
        if a is None or b is None:
            return relative_work(group, epoch) / relative_work(than, than_epoch)
        return a / b


class FlatCosts(Costs):
    """Every epoch of every group takes ``epoch_s`` seconds: the simulated device clock's (``chain.SimulatedClock``)."""

    def __init__(self, epoch_s: float) -> None:
        super().__init__(None)
        self.flat = epoch_s

    def epoch_s(self, group: GroupPlan, epoch: int) -> float:
        return self.flat


def _switch_points(group: GroupPlan, first: int) -> list[int]:
    """A representative epoch of each stretch of equal epochs from ``first`` on (before and after the switch)."""
    switch = group.images[1]
    return [first] if not switch or first >= switch else [first, switch]


def _switch_counts(group: GroupPlan, first: int) -> list[int]:
    """The number of epochs in each stretch of ``_switch_points``."""
    switch = group.images[1]
    if not switch or first >= switch:
        return [group.epochs - first]
    return [switch - first, group.epochs - switch]


def unit_seconds(groups: list[GroupPlan], costs: Costs, resumed: dict[str, int] | None = None) -> float | None:
    """A unit's whole process on the card: its start, every group's epochs (a group whose runs resume after
    epoch n from ``resumed``, by tag, only its later ones) and its runs' outputs; None where a cost is unknown."""
    resumed = resumed or {}
    seconds = [costs.group_s(g, max((resumed.get(t, 0) for t in g.tags), default=0)) for g in groups]
    if None in seconds:
        return None
    return PROCESS_START_S + sum(seconds) + WRITE_S_PER_RUN * sum(g.runs for g in groups)


# The trainer's line for one run's epoch (``ltbench.training.train.train_epochs``): its number, of how many, its wall
# seconds and the training images per second of all the runs side by side.
EPOCH = re.compile(r"\] epoch (\d+)/(\d+) loss [^\n]*?; epoch in ([\d.]+) s, (\d+) train img/s")
# One line of a unit's log: an epoch of one run, or a run written ("done:"), after an optional time stamp
# ("@<unix seconds> ", which scripts/speed/train_runs.py prints). A line still being written never matches.
LINE = re.compile(r"^(?:@(?P<t>[\d.]+) )?\[(?P<tag>[^\]\[,]+)(?:" + EPOCH.pattern + r"[^\n]*\n"
                  r"|\] (?P<done>done): [^\n]*\n)", re.M)
LINE_EPOCH = 3  # LINE's first group of EPOCH's


@dataclass
class Epoch:
    """One epoch of a group as the log prints it: its number (1-based), of ``total``, its wall seconds, the
    training images per second of all its runs, and the time stamp of its last line (0 without stamps)."""

    number: int
    total: int
    seconds: float
    rate: int
    t: float


@dataclass
class Segment:
    """The lines of one group in a process's log: its runs' tags, its epochs in order, the runs written and
    when the last of them was."""

    tags: set[str] = field(default_factory=set)
    epochs: list[Epoch] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    done_t: float = 0.0


def read_log(log: Path) -> list[Segment]:
    """A unit process's groups, in the order it trained them, from its log ([] before the first epoch). A new
    group begins with an epoch line after the last group's runs were written, or whose number goes back."""
    if not log.is_file():
        return []
    segments: list[Segment] = []
    for m in LINE.finditer(log.read_text(errors="replace")):
        t = float(m["t"] or 0.0)
        if m["done"]:
            if segments:
                segments[-1].done.add(m["tag"])
                segments[-1].done_t = t
            continue
        number, total, seconds, rate = m.group(*range(LINE_EPOCH, LINE_EPOCH + 4))
        last = segments[-1] if segments else None
        if last is None or last.done or int(number) < last.epochs[-1].number:
            last = Segment()
            segments.append(last)
        last.tags.add(m["tag"])
        if last.epochs and last.epochs[-1].number == int(number):
            last.epochs[-1].t = t
        else:
            last.epochs.append(Epoch(int(number), int(total), float(seconds), int(rate), t))
    return segments


class Pace:
    """A unit process's remaining seconds of training, from its log and its groups.

    The current group's pace is the median wall time of the epochs it finished since the mark (the first look
    after the group's second epoch in this process, whose first epoch carries cuDNN's autotuning and any
    compilation), once ``need`` epochs are past the mark; the times are the trainer's own, printed with each
    epoch, so the look's timing does not enter. A group not measured yet takes the pace of the last group
    measured in this process, scaled by ``Costs.ratio`` (a short group first does not hide a long one after
    it), else the card's cost (``Costs.epoch_s``), else None. ``epoch_s`` fixes every epoch's time instead (the
    simulated clock's). ``reset`` moves the mark to the next look (after another process stopped, this one
    runs faster)."""

    def __init__(self, groups: list[GroupPlan], costs: Costs | None = None, need: int = 3,
                 epoch_s: float | None = None) -> None:
        self.groups, self.costs, self.need, self.fixed = groups, costs or Costs(), need, epoch_s
        self.mark: tuple[int, int] | None = None  # (segment, epochs seen in it) at the mark
        self.measured: tuple[GroupPlan, int, float] | None = None  # the last group measured: at epoch, seconds

    def reset(self) -> None:
        self.mark = None

    def group_of(self, segment: Segment) -> GroupPlan | None:
        return next((g for g in self.groups if segment.tags & set(g.tags)), None)

    def epoch_s(self, log: Path) -> float | None:
        """The current group's seconds an epoch: as ``remaining`` measures it, else its last epoch's."""
        segments = read_log(log)
        if self.fixed is not None:
            return self.fixed
        if not segments:
            return None
        pace = self._measure(segments)
        return pace if pace is not None else segments[-1].epochs[-1].seconds

    def remaining(self, log: Path) -> float | None:
        """Seconds to the last epoch of the unit's last group; None until a pace is known."""
        segments = read_log(log)
        seen = {t for s in segments for t in s.tags}
        later = [g for g in self.groups if not seen & set(g.tags)]
        current = segments[-1] if segments and not segments[-1].done else None
        group = self.group_of(current) if current else None
        if current is not None and group is None:  # a group the plan does not know: no estimate
            return None
        left = [(group, current.epochs[-1].number)] if group else []
        left += [(g, 0) for g in later]
        pace = self._measure(segments) if self.fixed is None else None
        if pace is not None and group is not None:
            self.measured = (group, current.epochs[-1].number - 1, pace)
        return self._seconds(left)

    def _measure(self, segments: list[Segment]) -> float | None:
        """The median epoch past the mark in the last segment (setting the mark on the first look)."""
        if not segments:
            return None
        index, times = len(segments) - 1, [e.seconds for e in segments[-1].epochs]
        if len(times) < 2:
            return None
        if self.mark is None or self.mark[0] != index or len(times) < self.mark[1]:
            self.mark = (index, len(times))
            return None
        recent = times[self.mark[1]:]
        return statistics.median(recent) if len(recent) >= self.need else None

    def _seconds(self, left: list[tuple[GroupPlan, int]]) -> float | None:
        """Seconds of the epochs left: (group, epochs it finished) in order."""
        total = 0.0
        for group, done in left:
            for epoch in range(done, group.epochs):
                seconds = self._one(group, epoch)
                if seconds is None:
                    return None
                total += seconds
        return total

    def _one(self, group: GroupPlan, epoch: int) -> float | None:
        """One epoch's seconds: fixed, scaled from the last measured group, or the card's cost."""
        if self.fixed is not None:
            return self.fixed
        if self.measured is not None:
            base, at, seconds = self.measured
            return seconds * self.costs.ratio(group, epoch, base, at)
        return self.costs.epoch_s(group, epoch)
