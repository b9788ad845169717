"""Assemble the results table from metrics records: one CSV row per run, and a
markdown table with one row per strategy and one column per benchmark."""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

RUN_COLUMNS = [
    "benchmark", "strategy", "type", "seed", "best_test_acc", "best_epoch", "final_test_acc",
    "many_acc", "medium_acc", "few_acc", "epochs", "device_name", "train_seconds", "commit",
]


def runs_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run; shot-group accuracies are those of the best epoch."""
    rows = []
    for r in records:
        shots = r["best_shot_acc"]
        prov = r["provenance"]
        rows.append({
            **{k: r[k] for k in (
                "benchmark", "strategy", "type", "seed", "best_test_acc", "best_epoch", "final_test_acc", "epochs")},
            "many_acc": shots["many"], "medium_acc": shots["medium"], "few_acc": shots["few"],
            "device_name": prov["device_name"], "train_seconds": prov["train_seconds"], "commit": prov["commit"],
        })
    return pd.DataFrame(rows, columns=RUN_COLUMNS).sort_values(["benchmark", "strategy", "seed"], ignore_index=True)


def mean_std(values: pd.Series) -> str:
    """'mean ± std (n=k)' with the sample std (ddof=1); a single seed shows 'mean (n=1)'."""
    values = values.dropna()
    if len(values) == 0:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.2f} (n=1)"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f} (n={len(values)})"


# Row groups of the table, in this order; a strategy's module declares its TYPE.
TYPE_ORDER = ["static reweighting", "logit adjustment", "loss", "resampling", "deferred", "margin", "two-stage",
              "synthesis"]


def row_order(runs: pd.DataFrame, strategies: list[str]) -> list[str]:
    """Strategies grouped by type (``TYPE_ORDER``, unknown types last), config order within a type."""
    types = runs.groupby("strategy")["type"].first().to_dict()
    rank = {t: i for i, t in enumerate(TYPE_ORDER)}
    return sorted(strategies, key=lambda s: (rank.get(types.get(s), len(TYPE_ORDER)), strategies.index(s)))


def pivot(runs: pd.DataFrame, column: str, benchmarks: list[str], strategies: list[str]) -> pd.DataFrame:
    """Strategies x benchmarks table of ``mean_std`` of ``column``, with each strategy's type, grouped by type."""
    cells = runs.groupby(["strategy", "benchmark"])[column].apply(mean_std).unstack("benchmark")
    order = row_order(runs, strategies)
    cells = cells.reindex(index=order, columns=benchmarks).fillna("–")
    types = runs.groupby("strategy")["type"].first()
    cells.insert(0, "type", [types.get(s, "–") for s in order])
    cells.index.name = "strategy"
    return cells


def to_markdown(frame: pd.DataFrame, header: dict[str, str]) -> str:
    """A GitHub markdown table of ``frame`` (index first) with renamed column headers."""
    cols = [frame.index.name] + [header.get(c, c) for c in frame.columns]
    aligns = [" --- " if c == "type" else " ---: " for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join([" --- "] + aligns) + "|"]
    for name, row in frame.iterrows():
        lines.append("| " + " | ".join([str(name)] + [str(v) for v in row]) + " |")
    return "\n".join(lines)


def markdown_report(runs: pd.DataFrame, benchmarks: list[str], strategies: list[str]) -> str:
    """Best test accuracy (the benchmark metric), then final-epoch and shot-group tables."""
    sections = [
        ("Best test accuracy (%), mean ± std over seeds", "best_test_acc", "test acc {} ↑"),
        ("Final-epoch test accuracy (%)", "final_test_acc", "final acc {} ↑"),
        ("Many-shot accuracy at the best epoch (%; classes with > 100 training images)", "many_acc", "many {}"),
        ("Medium-shot accuracy at the best epoch (%; 20-100 images)", "medium_acc", "medium {}"),
        ("Few-shot accuracy at the best epoch (%; < 20 images)", "few_acc", "few {}"),
    ]
    out = ["# Results", ""]
    for title, column, head in sections:
        table = pivot(runs, column, benchmarks, strategies)
        out += [f"## {title}", "", to_markdown(table, {b: head.format(b) for b in benchmarks}), ""]
    return "\n".join(out)
