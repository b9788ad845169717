"""The research protocol's selection rule (docs/novel-strategy.md, "Protocol", step 2), applied to the
development stage's runs, so that the configuration the final stage trains is computed, not read off by eye.

- A run's selection metric is its best class-balanced validation accuracy over the epochs
  (metrics.json's ``val_selected.val_acc``; ``val_selected_val_acc`` in table.csv).
- A configuration's score is the mean over the development benchmarks of its mean over the seeds.
- Among the candidates whose score is within ``TOLERANCE`` points of the highest, the gentlest is selected:
  the largest mean over the benchmarks of the effective sample size ``ess`` of the weights it trained with.
- The test accuracy is carried along for the report only; it never enters the choice.

Nothing is selected until every candidate and every other configuration of the stage has a run on every
benchmark with every seed: a missing run is an error that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ltbench.table_text import markdown_table, number

TOLERANCE = 0.5  # points of validation accuracy within which the gentlest configuration is preferred


class SelectionError(ValueError):
    """The development runs cannot be selected from as they are (a run is missing, or nothing to select)."""


def ess(counts: Iterable[float], weights: Iterable[float]) -> float:
    """(sum_c n_c w_c)^2 / (N sum_c n_c w_c^2): the expected effective sample size of a batch, as a fraction
    of the batch (1 for equal weights; smaller the more the weights favour the rare classes)."""
    n, w = np.asarray(list(counts), dtype=np.float64), np.asarray(list(weights), dtype=np.float64)
    return float((n * w).sum() ** 2 / (n.sum() * (n * w**2).sum()))


def run_rows(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per first-stage run: benchmark, strategy, seed, val (its selection metric), test (best-epoch
    test accuracy), test_at_val (test accuracy at the validation-selected epoch) and ess."""
    rows = []
    for m in records:
        if m.get("stage") == "stage2":
            continue
        selected = m.get("val_selected") or {}
        rows.append({"benchmark": m["benchmark"], "strategy": m["strategy"], "seed": int(m["seed"]),
                     "val": selected.get("val_acc", np.nan), "test": m["best_test_acc"],
                     "test_at_val": selected.get("test_acc", np.nan),
                     "ess": ess(m["class_counts"], m["class_weights"])})
    return pd.DataFrame(rows, columns=["benchmark", "strategy", "seed", "val", "test", "test_at_val", "ess"])


def check_complete(runs: pd.DataFrame, strategies: list[str], benchmarks: list[str], seeds: list[int]) -> None:
    """Raise ``SelectionError`` naming every (benchmark, strategy, seed) without a run, or without a
    validation accuracy (a benchmark with no validation split cannot select)."""
    have = {(r.benchmark, r.strategy, r.seed) for r in runs.itertuples() if not np.isnan(r.val)}
    missing = [f"{b}/{s}/seed{k}" for b in benchmarks for s in strategies for k in seeds if (b, s, k) not in have]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise SelectionError(f"{len(missing)} development run(s) missing or without a validation accuracy: {shown};"
                             " the rule selects only from the complete stage")


@dataclass(frozen=True)
class Development:
    """The development stage summarised: ``cells`` has one row per (strategy, benchmark) with the seed means
    and sample stds of val, test and test_at_val and the mean ess; ``scores`` one row per strategy (score:
    mean over benchmarks of the val means; ess: mean over benchmarks); the selected candidate and the
    candidates whose score was within ``TOLERANCE`` of the highest."""

    cells: pd.DataFrame
    scores: pd.DataFrame
    candidates: list[str]
    within: list[str]
    selected: str


def develop(records: Iterable[Mapping[str, Any]], strategies: list[str], candidates: list[str],
            benchmarks: list[str], seeds: list[int]) -> Development:
    """Apply the rule to the runs of ``benchmarks`` x ``strategies`` x ``seeds``; only the ``candidates``
    (some of the ``strategies``) can be selected, the others (the baselines) are summarised beside them."""
    if not candidates or not set(candidates) <= set(strategies):
        raise SelectionError(f"the candidates {candidates} must be some of the stage's strategies {strategies}")
    runs = run_rows(records)
    runs = runs[runs.benchmark.isin(benchmarks) & runs.strategy.isin(strategies) & runs.seed.isin(seeds)]
    check_complete(runs, strategies, benchmarks, seeds)
    cells = runs.groupby(["strategy", "benchmark"]).agg(
        val=("val", "mean"), val_std=("val", "std"), test=("test", "mean"), test_std=("test", "std"),
        test_at_val=("test_at_val", "mean"), ess=("ess", "mean"), n=("seed", "size"))
    scores = cells.groupby(level="strategy")[["val", "ess"]].mean().rename(columns={"val": "score"})
    scores = scores.loc[strategies]
    best = scores.loc[candidates, "score"].max()
    within = [c for c in candidates if scores.at[c, "score"] >= best - TOLERANCE]
    selected = max(within, key=lambda c: (scores.at[c, "ess"], -candidates.index(c)))
    return Development(cells, scores, candidates, within, selected)


def development_markdown(dev: Development, benchmarks: list[str]) -> str:
    """The development stage as markdown: per configuration and benchmark the validation and test means
    (± sample std over seeds), the score and the ESS, then the selection and why."""
    header = ["configuration", *[f"{b} {what}" for b in benchmarks for what in ("val", "test")],
              "score (mean val)", "ESS"]
    rows = []
    for strategy in dev.scores.index:
        label = f"**{strategy}**" if strategy == dev.selected else strategy
        label += "" if strategy in dev.candidates else " (baseline)"
        cells = []
        for bench in benchmarks:
            cell = dev.cells.loc[(strategy, bench)]
            cells += [f"{number(cell.val)} ± {number(cell.val_std)}", f"{number(cell.test)} ± {number(cell.test_std)}"]
        rows.append([label, *cells, number(dev.scores.at[strategy, "score"]), number(dev.scores.at[strategy, "ess"], 3)])
    top = dev.scores.loc[dev.candidates, "score"]
    n = int(dev.cells.n.max())
    lines = [
        "# Development stage: the selection", "",
        f"Validation accuracy (%) is each run's best class-balanced validation accuracy over the epochs; test (%) is "
        f"its best-epoch test accuracy, shown for the report and never used to select. Mean ± sample std over "
        f"{n} seeds. Score: the mean over the {len(benchmarks)} benchmarks of the validation means. ESS: the "
        "effective sample size of a batch under the weights the runs trained with, (Σ n_c w_c)² / (N Σ n_c w_c²), "
        "averaged over the benchmarks. Only the candidates can be selected.", "",
        markdown_table(header, rows), "",
        f"Highest candidate score: {number(top.max())} ({top.idxmax()}). Within {number(TOLERANCE, 1)} points of it: "
        + ", ".join(f"{c} ({number(top[c])}, ESS {number(dev.scores.at[c, 'ess'], 3)})" for c in dev.within)
        + f". Selected, the gentlest of those (largest ESS): **{dev.selected}**.", ""]
    return "\n".join(lines)
