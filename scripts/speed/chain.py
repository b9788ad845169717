"""A loan as a chain of calls on one warm machine: the state the calls keep, the device clock and how long each
call may take (docs/performance.md, "The device plan").

Every call of a chain is the same ``loan.py`` command. The state file (``results/speed/chain.json`` on the
machine, which stays between the calls while it is warm) holds what the next call needs: the device time left
when the last call ended and when that was, each unit's layout and whether it was dropped, the runs already
packed, and the files still waiting to go back.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE = Path("results/speed/chain.json")


@dataclass
class ChainState:
    """What the calls of one chain keep; ``key`` names what the chain trains (a state of another key is
    discarded: a new chain begins)."""

    key: str
    calls: list[dict] = field(default_factory=list)  # each call's record, as its loan-c<k>.json has it
    device_left_s: float | None = None  # device seconds left when the last call ended (its own estimate)
    ended_at: float | None = None  # time.time() at that moment
    pending: list[str] = field(default_factory=list)  # files still to go back, oldest first
    packed: list[str] = field(default_factory=list)  # runs in an archive already, "root:benchmark/strategy/seed<k>"
    units: dict[str, dict] = field(default_factory=dict)  # per unit: "layout", and "dropped" (why) if it was

    @classmethod
    def load(cls, key: str, path: Path = STATE, any_key: bool = False) -> ChainState:
        """The chain's state at ``path`` if it has ``key`` (or whatever its key, ``any_key``), else a new chain's."""
        if path.is_file():
            state = json.loads(path.read_text())
            if any_key or state.get("key") == key:
                return cls(**state)
            print(f"{path} belongs to another chain (other units, epochs or configs): a new chain begins", flush=True)
        return cls(key)

    def save(self, path: Path = STATE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1))

    @property
    def call(self) -> int:
        """This call's number (1 for the first)."""
        return len(self.calls) + 1


def chain_key(*parts: object) -> str:
    """A short digest of what the chain trains (units, epochs, the configs' text)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class WallClock:
    """The device clock of a call: each second of the call is one of device time."""

    epoch_s: float | None = None  # a fixed time per epoch (only the simulated clock has one)
    charged = 0.0  # device seconds beyond the wall time (only the simulated clock charges any)

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        """Device seconds since the call started."""
        return time.monotonic() - self.t0 + self.charged

    def launch(self, unit: str) -> None:
        """A unit's process starts now."""

    def observe(self, epochs: dict[str, int]) -> None:
        """The epochs each unit's process has finished in this call."""

    def lag(self, unit: str) -> float:
        """Device seconds the clock is ahead of the unit's own progress (none on the wall clock)."""
        return 0.0


class SimulatedClock(WallClock):
    """For tests on a CPU: a device clock on which every epoch takes ``epoch_s`` seconds. A unit's process is at
    its start's time plus ``epoch_s`` per epoch it finished; the clock is never behind the unit furthest on, nor
    behind the wall clock. How far a tiny training gets in a call then depends on its epochs, not on the machine's
    speed, also for units side by side."""

    def __init__(self, epoch_s: float) -> None:
        super().__init__()
        self.epoch_s, self.started, self.epochs = epoch_s, {}, {}

    def launch(self, unit: str) -> None:
        self.started[unit], self.epochs[unit] = self.elapsed(), 0

    def observe(self, epochs: dict[str, int]) -> None:
        self.epochs.update((u, n) for u, n in epochs.items() if u in self.started)
        furthest = max((self.position(u) for u in self.started), default=0.0)
        self.charged += max(0.0, furthest - self.elapsed())

    def position(self, unit: str) -> float:
        """The unit's own time: its start's, plus ``epoch_s`` per epoch it finished."""
        return self.started[unit] + self.epoch_s * self.epochs[unit]

    def lag(self, unit: str) -> float:
        """A unit behind the unit furthest on has spent the difference already: its estimate counts from its own
        time."""
        return max(0.0, self.elapsed() - self.position(unit)) if unit in self.started else 0.0


@dataclass(frozen=True)
class CallPlan:
    """How long a call may take (``budget`` seconds from its start), whether it is the chain's last training
    call, the device seconds left at its start (None: not known, a single call) and the budgets of the training
    calls after it."""

    budget: float
    last: bool
    device_left: float | None = None
    later: tuple[float, ...] = ()


def call_budgets(device_left: float, call_limit: float, gap: float, min_call: float) -> list[float]:
    """The budgets of the training calls ``device_left`` seconds hold, in order: each call takes at most
    ``call_limit`` and leaves ``gap`` after it (returning its files, the idle wait and the next call's start and
    transfer in); a call shorter than ``min_call`` is not made, except the first, which may be a short call that
    only returns files."""
    budgets = [max(0.0, min(call_limit, device_left - gap))]
    left = device_left - budgets[0] - gap
    while left - gap >= min_call:
        budgets.append(min(call_limit, left - gap))
        left -= budgets[-1] + gap
    return budgets


def plan_call(device_left: float | None, budget: float, call_limit: float, gap: float, min_call: float) -> CallPlan:
    """This call's plan from the device seconds left at its start; with none known, one call of ``budget``."""
    if device_left is None:
        return CallPlan(budget, True)
    budgets = call_budgets(device_left, call_limit, gap, min_call)
    return CallPlan(budgets[0], len(budgets) == 1, device_left, tuple(budgets[1:]))


def device_left_at_start(given: float | None, state: ChainState, now: float) -> float | None:
    """The device seconds left as this call starts: ``given`` (the device tool's own count), else the last call's
    estimate less the time since it ended (the machine's idle time and the transfers count too), else None."""
    if given is not None:
        return given
    if state.device_left_s is None or state.ended_at is None:
        return None
    return state.device_left_s - (now - state.ended_at)
