"""The research protocol's selection rule (docs/novel-strategy.md, "Protocol", step 2), applied to the
development stage's runs, so that the configuration the final stage trains is computed, not read off by eye.

- A run's selection metric is its best class-balanced validation accuracy over the epochs
  (``val_selected_val_acc`` of ``table.runs_frame``).
- A configuration's score is the mean over the development benchmarks of its mean over the seeds.
- Among the candidates whose score is within ``TOLERANCE`` points of the highest (0.5 below it included),
  the gentlest is selected: the largest mean over the benchmarks of the effective sample size ``ess`` of the
  weights it trained with; on equal ESS, the one named first.
- The test accuracy is carried along for the report only; it never enters the choice.

Nothing is selected until every configuration of the stage has a run with a validation accuracy on every
benchmark with every seed: a missing run is an error that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ltbench.reporting import table
from ltbench.reporting.table_text import listing, markdown_table, number

TOLERANCE = 0.5  # points of validation accuracy within which the gentlest configuration is preferred
ROUNDING = 1e-9  # float noise: a score written 0.5 below the highest is within (59.5 against 60.0)
VALIDATION = "val_selected_val_acc"  # a run's selection metric (table.runs_frame)
SUMMARIZED = {"val": VALIDATION, "test": table.HEADLINE, "ess": "ess"}  # per (strategy, benchmark): over seeds


class SelectionError(ValueError):
    """The development runs cannot be selected from as they are (a run is missing, or nothing to select)."""


def ess(counts: Iterable[float], weights: Iterable[float]) -> float:
    """(sum_c n_c w_c)^2 / (N sum_c n_c w_c^2): the expected effective sample size of a batch, as a fraction
    of the batch (1 for equal weights; smaller the more the weights favour the rare classes)."""
    n, w = np.asarray(list(counts), dtype=np.float64), np.asarray(list(weights), dtype=np.float64)
    return float((n * w).sum() ** 2 / (n.sum() * (n * w**2).sum()))


def runs_with_ess(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """``table.runs_frame`` of metrics records, with each run's ``ess`` of its class weights on its class counts."""
    records = list(records)
    runs = table.runs_frame(records)
    by_run = {(r["benchmark"], r["strategy"], int(r["seed"])): ess(r["class_counts"], r["class_weights"])
              for r in records}
    runs["ess"] = [by_run[key] for key in runs[["benchmark", "strategy", "seed"]].itertuples(index=False, name=None)]
    return runs


@dataclass(frozen=True)
class Development:
    """The development stage summarised: ``cells``, indexed by (benchmark, strategy, group) with group one of
    ``SUMMARIZED``, the ``table.cell_summaries`` over seeds; ``scores``, one row per strategy (score: the mean
    over benchmarks of the val means; ess: the mean over benchmarks); the candidates, those within
    ``TOLERANCE`` of the highest candidate score, and the selected one."""

    cells: pd.DataFrame
    scores: pd.DataFrame
    candidates: list[str]
    within: list[str]
    selected: str


def develop(runs: pd.DataFrame, strategies: list[str], candidates: list[str], benchmarks: list[str],
            seeds: list[int]) -> Development:
    """Apply the rule to the runs (``runs_with_ess``) of ``benchmarks`` x ``strategies`` x ``seeds``; only the
    ``candidates`` (some of the ``strategies``) can be selected, the others (the baselines) are summarised beside."""
    unknown = [c for c in candidates if c not in strategies]
    if not candidates or unknown:
        raise SelectionError(f"the candidates must be some of the stage's strategies ({', '.join(strategies)});"
                             f" not: {', '.join(unknown) or 'none given'}")
    runs = runs[runs["benchmark"].isin(benchmarks) & runs["strategy"].isin(strategies) & runs["seed"].isin(seeds)]
    missing = table.missing_runs(runs, benchmarks, strategies, seeds, VALIDATION)
    if missing:
        raise SelectionError(f"{len(missing)} development run(s) missing or without a validation accuracy:"
                             f" {listing(missing)}; the rule selects only from the complete stage")
    cells = table.cell_summaries(runs, SUMMARIZED, dict.fromkeys(SUMMARIZED, 0))
    means = cells["mean"].unstack("group")
    scores = means.groupby(level="strategy")[["val", "ess"]].mean().rename(columns={"val": "score"}).loc[strategies]
    best = scores.loc[candidates, "score"].max()
    within = [c for c in candidates if scores.at[c, "score"] >= best - TOLERANCE - ROUNDING]
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
        cells = [f"{number(c['mean'])} ± {number(c['std'])}"
                 for bench in benchmarks for c in (dev.cells.loc[(bench, strategy, g)] for g in ("val", "test"))]
        rows.append([label, *cells, number(dev.scores.at[strategy, "score"]), number(dev.scores.at[strategy, "ess"], 3)])
    top = dev.scores.loc[dev.candidates, "score"]
    n = int(dev.cells["n"].max())
    over = f"{len(benchmarks)} benchmarks" if len(benchmarks) > 1 else "benchmark"
    lines = [
        "# Development stage: the selection", "",
        f"Validation accuracy (%) is each run's best class-balanced validation accuracy over the epochs; test (%) is "
        f"its best-epoch class-balanced test accuracy, shown for the report and never used to select. Mean ± sample "
        f"std over {n} seeds. Score: the mean over the {over} of the validation means. ESS: the effective sample "
        "size of a batch under the weights the runs trained with, (Σ n_c w_c)² / (N Σ n_c w_c²), averaged over the "
        "benchmarks. Only the candidates can be selected: the highest score, or among those within "
        f"{number(TOLERANCE, 1)} points of it the largest ESS (on equal ESS, the one named first).", "",
        markdown_table(header, rows), "",
        f"Highest candidate score: {number(top.max())} ({top.idxmax()}). Within {number(TOLERANCE, 1)} points of it: "
        + ", ".join(f"{c} ({number(top[c])}, ESS {number(dev.scores.at[c, 'ess'], 3)})" for c in dev.within)
        + f". Selected: **{dev.selected}**.", ""]
    return "\n".join(lines)
