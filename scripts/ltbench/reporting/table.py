"""Assemble the results table's frames from metrics records: one tidy row per run, and per
(benchmark, strategy, shot group) the summary over seeds, the paired difference to a reference
strategy and the mean rank. ``ltbench.reporting.table_text`` renders them as markdown and LaTeX."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

import pandas as pd

from ltbench.evaluation import shots, stats
from ltbench.config import NATURAL
from ltbench.evaluation.metrics import EPOCH_METRICS, PRIOR_METRICS, REPORTED

SHOTS = shots.GROUPS
# The benchmark metric: the class-balanced accuracy (the mean of the per-class accuracies), which on a
# balanced test set is the accuracy over the test images (``best_test_acc``, pooled).
HEADLINE = "best_balanced_acc"
# A table cell's group -> the run column it summarizes (all classes: the headline).
GROUPS = {"many": "many_acc", "medium": "medium_acc", "few": "few_acc", "all": HEADLINE}
# The second table's columns (its metrics at the best epoch) -> +1 where higher is better, -1 where lower is,
# 0 neither (``ltbench.evaluation.metrics.REPORTED``).
ROBUSTNESS = {f"best_{name}": metric.better for name, metric in REPORTED.items()}
# A record's epoch prefix -> its columns' prefix (the last epoch is the final one, as in final_test_acc).
EPOCHS = {"best": "best", "last": "final"}
EPOCH_COLUMNS = [f"{prefix}_{m}" for prefix in EPOCHS.values() for m in EPOCH_METRICS + PRIOR_METRICS]
RUN_COLUMNS = [
    "benchmark", "arch", "dataset", "imbalance_ratio", "strategy", "params", "type", "stage", "builds_on", "seed",
    "num_classes", "test_images", "test_balanced", "best_test_acc", "best_test_acc_lo", "best_test_acc_hi",
    "collapsed", "best_epoch", "final_test_acc", "many_acc", "medium_acc", "few_acc", "many_classes",
    "medium_classes", "few_classes", "gap_groups", *EPOCH_COLUMNS, "epochs", "epoch_images", "pass_images",
    "val_selected_epoch",
    "val_selected_val_acc", "val_selected_test_acc", "device_name", "precision", "train_seconds", "commit",
]
CLASS_COLUMN = "class_acc_{}"  # best-epoch accuracy of class c (classes in label order)
# Row groups of the table, in this order; a strategy's module declares its TYPE.
TYPE_ORDER = ["static reweighting", "logit adjustment", "loss", "resampling", "deferred", "margin", "two-stage",
              "synthesis"]


# A strategy whose epochs visit more or fewer images than one pass over the training set by more than this
# factor's distance from 1 is marked in the table (its epochs hold more or fewer SGD steps than the others').
EPOCH_LENGTH_TOLERANCE = 1.05


def epoch_images(history: dict[str, Any]) -> float:
    """The training images an epoch of the run visited, averaged over its epochs (history.json's
    ``train_images``): its sampler's epoch length, one pass over the data for most strategies."""
    return sum(e["train_images"] for e in history["epochs"]) / len(history["epochs"])


def parameters(params: dict[str, Any]) -> str:
    """A strategy entry's parameters as 'beta 0.9999, gamma 1' (keys in the entry's order; nested values as
    'recipe warmup_epochs 5'; an empty entry: '')."""
    def flat(prefix: str, value: Any) -> list[str]:
        if isinstance(value, dict):
            return [part for k, v in value.items() for part in flat(f"{prefix} {k}".strip(), v)]
        return [f"{prefix} {value:g}" if isinstance(value, float) else f"{prefix} {value}"]

    return ", ".join(part for k, v in params.items() if v is not None for part in flat(k, v))


def run_row(r: dict[str, Any]) -> dict[str, Any]:
    """One run's row: its metrics at the best epoch, the Wilson 95% interval of its accuracy over the
    test images, whether it collapsed (``stats.collapsed`` of the headline), the head and tail groups of the
    gap ('many-few'), the ``EPOCH_COLUMNS`` of the best and the final epoch, the strategy's ``parameters``,
    the images a training epoch visited (``epoch_images``, where the record carries it) against one pass
    over the training set, and one column per class."""
    lo, hi = stats.wilson_interval(r["best_correct"], r["test_images"])
    prov = r["provenance"]
    return {
        **{k: r[k] for k in ("benchmark", "arch", "dataset", "imbalance_ratio", "strategy", "type", "stage",
                             "builds_on", "seed", "num_classes", "test_images", "test_balanced", "best_test_acc")},
        "params": parameters(r.get("strategy_params") or {}),
        "epoch_images": r.get("epoch_images"), "pass_images": sum(r["class_counts"]),
        "best_test_acc_lo": lo, "best_test_acc_hi": hi,
        "collapsed": stats.collapsed(r["best_balanced_acc"], r["num_classes"]),
        "gap_groups": "-".join(r["gap_groups"] or ()) or None,
        **{f"{prefix}_{m}": r[f"{which}_{m}"] for which, prefix in EPOCHS.items() for m in EPOCH_METRICS + PRIOR_METRICS},
        **{k: r[k] for k in ("best_epoch", "final_test_acc", "epochs")},
        **{f"val_selected_{k}": (r.get("val_selected") or {}).get(k) for k in ("epoch", "val_acc", "test_acc")},
        **{f"{g}_acc": r["best_shot_acc"][g] for g in SHOTS},
        **{f"{g}_classes": r["shot_classes"][g] for g in SHOTS},
        "device_name": prov["device_name"], "precision": prov.get("precision"), "train_seconds": prov["train_seconds"],
        "commit": prov["commit"],
        **{CLASS_COLUMN.format(c): acc for c, acc in enumerate(r["best_per_class_acc"])},
    }


def runs_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One tidy row per run (``RUN_COLUMNS``, then ``class_acc_0`` ... for the largest class count;
    empty where a benchmark has fewer classes), sorted by benchmark, strategy and seed."""
    rows = [run_row(r) for r in records]
    classes = max((r["num_classes"] for r in rows), default=0)
    columns = RUN_COLUMNS + [CLASS_COLUMN.format(c) for c in range(classes)]
    return pd.DataFrame(rows, columns=columns).sort_values(["benchmark", "strategy", "seed"], ignore_index=True)


def missing_runs(runs: pd.DataFrame, benchmarks: list[str], strategies: list[str], seeds: list[int],
                 column: str = HEADLINE) -> list[str]:
    """'benchmark/strategy/seed<k>' of every run of benchmarks x strategies x seeds that ``runs`` lacks or
    holds without a value in ``column``."""
    have = set(runs.dropna(subset=[column])[["benchmark", "strategy", "seed"]].itertuples(index=False, name=None))
    return [f"{b}/{s}/seed{k}" for b in benchmarks for s in strategies for k in seeds if (b, s, k) not in have]


def row_order(runs: pd.DataFrame, strategies: list[str]) -> list[str]:
    """Strategies grouped by type (``TYPE_ORDER``, unknown types last), config order within a type."""
    types = runs.groupby("strategy")["type"].first().to_dict()
    rank = {t: i for i, t in enumerate(TYPE_ORDER)}
    return sorted(strategies, key=lambda s: (rank.get(types.get(s), len(TYPE_ORDER)), strategies.index(s)))


def strategy_info(runs: pd.DataFrame, strategies: list[str]) -> pd.DataFrame:
    """Per strategy, in table order: its type, stage (train, stage2, posthoc), the strategy it builds on, its
    parameters, and ``epoch_length``: {benchmark: mean over its runs of epoch images / one pass} where that
    differs from 1 by more than ``EPOCH_LENGTH_TOLERANCE`` (empty for most strategies)."""
    info = runs.groupby("strategy")[["type", "stage", "builds_on", "params"]].first()
    scale = (runs["epoch_images"].astype(float) / runs["pass_images"]).groupby([runs["strategy"], runs["benchmark"]]).mean()
    off = scale[(scale > EPOCH_LENGTH_TOLERANCE) | (scale < 1 / EPOCH_LENGTH_TOLERANCE)]
    info["epoch_length"] = [{b: float(v) for (_, b), v in off[off.index.get_level_values(0) == s].items()}
                            for s in info.index]
    return info.reindex(row_order(runs, strategies))


def benchmark_info(runs: pd.DataFrame, benchmarks: list[str]) -> pd.DataFrame:
    """Per benchmark: model, data, ratio, classes, test images (and whether balanced), the head and tail groups
    of the gap, the classes of each shot group, and the training epochs of its runs (the scale of its numbers; distinct values joined by ``/``)."""
    columns = (["arch", "dataset", "imbalance_ratio", "num_classes", "test_images", "test_balanced", "gap_groups"]
               + [f"{g}_classes" for g in SHOTS])
    info = runs.groupby("benchmark")[columns].first()
    info["epochs"] = runs.groupby("benchmark")["epochs"].agg(lambda e: "/".join(str(v) for v in sorted(set(e))))
    return info.reindex(benchmarks)


def cell_summaries(runs: pd.DataFrame, columns: dict[str, str], better: dict[str, int]) -> pd.DataFrame:
    """Per (benchmark, strategy, group) of ``columns`` (group -> run column): ``stats.t_interval`` over seeds
    (mean, std, n, lo, hi), the number of collapsed runs, the per-seed values {seed: value}, and ``best``: the
    best mean of its (benchmark, group) column, the highest where ``better[group]`` is +1, the lowest where it
    is -1, none where 0 (ties all marked)."""
    rows = []
    for (bench, strategy), runs_of in runs.groupby(["benchmark", "strategy"]):
        for group, column in columns.items():
            values = runs_of.set_index("seed")[column].dropna().astype(float)
            rows.append({"benchmark": bench, "strategy": strategy, "group": group,
                         **asdict(stats.t_interval(values)), "collapsed": int(runs_of["collapsed"].sum()),
                         "seeds": values.to_dict()})
    cells = pd.DataFrame(rows, columns=["benchmark", "strategy", "group", "mean", "std", "n", "lo", "hi",
                                        "collapsed", "seeds"])
    signed = cells["mean"] * cells["group"].map(better)
    cells["best"] = (cells["group"].map(better) != 0) & (
        signed == signed.groupby([cells["benchmark"], cells["group"]]).transform("max"))
    return cells.set_index(["benchmark", "strategy", "group"])


def worst_classes(runs: pd.DataFrame) -> pd.Series:
    """Per (benchmark, strategy): the class that is worst at the best epoch in most seeds, as 'name' or
    'name in k/n seeds' where the seeds disagree (ties: the first by name)."""
    def most_often(names: pd.Series) -> str:
        counts = names.value_counts(sort=False).sort_index()
        name, k = counts.idxmax(), int(counts.max())
        return name if k == len(names) else f"{name} in {k}/{len(names)} seeds"

    return runs.groupby(["benchmark", "strategy"])["best_worst_class"].agg(most_often)


def reference_differences(runs: pd.DataFrame, reference: str, column: str = HEADLINE) -> pd.DataFrame:
    """Per (benchmark, strategy other than ``reference``): ``stats.paired_difference`` of the run column
    ``column`` (the headline accuracy) to the reference's, seed by seed, and ``distinguishable`` (its interval
    excludes 0). Empty when the reference has no runs."""
    rows = []
    for bench, runs_of in runs.groupby("benchmark"):
        by_seed = runs_of.pivot_table(index="seed", columns="strategy", values=column)
        if reference not in by_seed:
            continue
        for strategy in by_seed.columns.drop(reference):
            diff = stats.paired_difference(by_seed[strategy].dropna().to_dict(), by_seed[reference].dropna().to_dict())
            rows.append({"benchmark": bench, "strategy": strategy, **asdict(diff),
                         "distinguishable": stats.excludes_zero(diff)})
    columns = ["benchmark", "strategy", "mean", "std", "n", "lo", "hi", "distinguishable"]
    return pd.DataFrame(rows, columns=columns).set_index(["benchmark", "strategy"])


def validation_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (benchmark, strategy) with validation runs: ``stats.t_interval`` over seeds of the test accuracy at
    the validation-selected epoch. Empty when no run held out a validation set."""
    rows = [{"benchmark": bench, "strategy": strategy, **asdict(stats.t_interval(values.dropna()))}
            for (bench, strategy), values in runs.groupby(["benchmark", "strategy"])["val_selected_test_acc"]
            if values.notna().any()]
    columns = ["benchmark", "strategy", "mean", "std", "n", "lo", "hi"]
    return pd.DataFrame(rows, columns=columns).set_index(["benchmark", "strategy"])


def ranked_benchmarks(cells: pd.DataFrame) -> list[str]:
    """The benchmarks on which every strategy of the table has an all-class mean: the columns of the rank."""
    scores = cells.xs("all", level="group")["mean"].unstack("benchmark")
    return [b for b in scores.columns if scores[b].notna().all()]


def mean_ranks(cells: pd.DataFrame) -> pd.Series:
    """Per strategy: ``stats.mean_rank`` of its mean all-class accuracy over the ``ranked_benchmarks`` only,
    so that every strategy is ranked against the same rivals on the same benchmarks (nan where none)."""
    scores = cells.xs("all", level="group")["mean"].unstack("benchmark")
    return stats.mean_rank(scores[ranked_benchmarks(cells)]).reindex(scores.index)


@dataclass(frozen=True)
class Tables:
    """Everything the renderers need, rows in table order: the runs, per strategy ``strategy_info``, per
    benchmark ``benchmark_info``, the ``cell_summaries`` of the accuracy (``GROUPS``), ``reference_differences``
    (empty without the reference's runs), ``mean_ranks`` and the ``ranked_benchmarks``, the reference strategy's
    name, ``validation_cells`` (empty without validation sets), the second table's: the
    ``cell_summaries`` of ``ROBUSTNESS`` and the ``worst_classes``, and the ratio sweeps: {grid: its
    benchmarks with runs, by ascending imbalance ratio} (empty without a ratio grid)."""

    runs: pd.DataFrame
    strategies: pd.DataFrame
    benchmarks: pd.DataFrame
    cells: pd.DataFrame
    differences: pd.DataFrame
    ranks: pd.Series
    ranked: list[str]
    reference: str
    validation: pd.DataFrame
    robustness: pd.DataFrame
    worst: pd.Series
    ratio_grids: dict[str, list[str]]


def ratio_order(ratio: float | str) -> tuple[bool, float]:
    """Sort key of an imbalance ratio: numbers ascending, then ``natural`` (the data as it is)."""
    return (ratio == NATURAL, 0.0 if ratio == NATURAL else float(ratio))


def by_ratio(info: pd.DataFrame, grids: dict[str, list[str]]) -> dict[str, list[str]]:
    """{grid: its benchmarks that have runs (rows of ``benchmark_info``), by ``ratio_order``}, only the grids left
    with two ratios or more."""
    present = {grid: sorted((b for b in members if b in info.index and pd.notna(info.loc[b, "arch"])),
                            key=lambda b: ratio_order(info.loc[b, "imbalance_ratio"])) for grid, members in grids.items()}
    return {grid: members for grid, members in present.items()
            if len({info.loc[b, "imbalance_ratio"] for b in members}) > 1}


def tables(runs: pd.DataFrame, benchmarks: list[str], strategies: list[str], reference: str,
           ratio_grids: dict[str, list[str]] | None = None) -> Tables:
    """The ``Tables`` of the runs of ``benchmarks`` x ``strategies`` (strategies without runs left out; no
    differences when the reference is not among them), with the ratio grids {grid: its benchmarks} among them."""
    runs = runs[runs["benchmark"].isin(benchmarks) & runs["strategy"].isin(strategies)]
    cells = cell_summaries(runs, GROUPS, dict.fromkeys(GROUPS, 1))
    robustness = cell_summaries(runs, {column: column for column in ROBUSTNESS}, ROBUSTNESS)
    present = [s for s in strategies if s in set(runs["strategy"])]
    info = benchmark_info(runs, benchmarks)
    return Tables(runs, strategy_info(runs, present), info, cells,
                  reference_differences(runs, reference), mean_ranks(cells), ranked_benchmarks(cells), reference,
                  validation_cells(runs), robustness, worst_classes(runs), by_ratio(info, ratio_grids or {}))
