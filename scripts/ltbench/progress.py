"""The matrix's progress in trainings, not bookkeeping jobs: what the workflow planned when it
started (``plan``, written by the Snakefile's ``onstart``) and, after each training job, how many
of those trainings are done, the time since the start and an ETA from the finished ones (``line``).
Pure Python: the rules import it without torch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

PLAN = "results/logs/progress.json"  # relative to the working directory


def plan(histories: list[str], path: str = PLAN) -> None:
    """Record the runs (their history.json paths) this invocation will train, and the start time."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"start": time.time(), "histories": sorted(set(histories))}))


def line(path: str = PLAN, now: float | None = None) -> str | None:
    """'trainings done k/n, elapsed h:mm:ss, ETA h:mm:ss': runs of the plan whose history was written
    since the start; the ETA assumes the remaining ones finish at the rate of the finished ones.
    None without a plan (a plain command, not a workflow)."""
    if not Path(path).is_file():
        return None
    record = json.loads(Path(path).read_text())
    now, start, planned = time.time() if now is None else now, record["start"], record["histories"]
    done = sum(1 for h in planned if Path(h).is_file() and Path(h).stat().st_mtime >= start)
    elapsed = now - start
    eta = elapsed / done * (len(planned) - done) if done else float("nan")
    return (f"[matrix] trainings done {done}/{len(planned)}, elapsed {clock(elapsed)}, ETA "
            + (clock(eta) if done else "after the first run"))


def clock(seconds: float) -> str:
    """``h:mm:ss``."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
