"""Assemble the results table from metrics records: one CSV row per run, and a
markdown table with one row per strategy and one column per benchmark."""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

RUN_COLUMNS = [
    "benchmark", "strategy", "seed", "best_test_acc", "best_epoch", "final_test_acc",
    "many_acc", "medium_acc", "few_acc", "epochs", "device_name", "train_seconds", "commit",
]


def runs_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run; shot-group accuracies are those of the best epoch."""
    rows = []
    for r in records:
        shots = r["best_shot_acc"]
        prov = r["provenance"]
        rows.append({
            **{k: r[k] for k in ("benchmark", "strategy", "seed", "best_test_acc", "best_epoch", "final_test_acc", "epochs")},
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


def pivot(runs: pd.DataFrame, column: str, benchmarks: list[str], strategies: list[str]) -> pd.DataFrame:
    """Strategies x benchmarks table of ``mean_std`` of ``column``, in config order."""
    cells = runs.groupby(["strategy", "benchmark"])[column].apply(mean_std).unstack("benchmark")
    cells = cells.reindex(index=strategies, columns=benchmarks).fillna("–")
    cells.index.name = "strategy"
    return cells


def to_markdown(frame: pd.DataFrame, header: dict[str, str]) -> str:
    """A GitHub markdown table of ``frame`` (index first) with renamed column headers."""
    cols = [frame.index.name] + [header.get(c, c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join([" --- "] + [" ---: "] * len(frame.columns)) + "|"]
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
