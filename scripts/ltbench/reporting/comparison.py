"""One strategy against each baseline, as the research protocol's final stage reports it (docs/novel-strategy.md,
"Win"): per benchmark and shot group the paired-by-seed difference to every baseline with its 95% t interval,
and per benchmark whether the strategy's mean beats the best baseline's (W2), by how much, and how that
margin compares with the seed spread of the paired difference."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ltbench.reporting import table
from ltbench.reporting.table_text import DASH, difference, interval, listing, markdown_table, number

PAIRED = ["mean", "std", "n", "lo", "hi", "distinguishable"]
# The means table's columns -> the run column each summarizes: the best epoch's shot groups and all classes,
# then all classes at the final epoch.
MEANS = {**table.GROUPS, "all, final epoch": "final_balanced_acc"}


class ComparisonError(ValueError):
    """The runs cannot be compared as asked (the strategy or a baseline has no run on a benchmark)."""


@dataclass(frozen=True)
class Comparison:
    """``differences``: per (benchmark, baseline, group) the paired difference strategy − baseline (``PAIRED``;
    absent where the group has no classes); ``verdict``: per benchmark the strategy's all-class mean, the best
    baseline and its mean, the margin between the means, the paired difference to that baseline and whether
    the strategy beats it by mean (W2) and distinguishably (interval above 0); ``means``: per (benchmark,
    strategy, column of ``MEANS``) the ``stats.t_interval`` of the seeds' values (mean, std, n, lo, hi)."""

    strategy: str
    baselines: list[str]
    benchmarks: list[str]
    seeds: list[int]
    differences: pd.DataFrame
    verdict: pd.DataFrame
    means: pd.DataFrame


def group_differences(runs: pd.DataFrame, strategy: str, baselines: list[str]) -> pd.DataFrame:
    """``table.reference_differences`` of ``strategy`` to each baseline, for every column of ``table.GROUPS``,
    indexed by (benchmark, baseline, group)."""
    frames = []
    for baseline in baselines:
        pair = runs[runs["strategy"].isin([strategy, baseline])]
        for group, column in table.GROUPS.items():
            diff = table.reference_differences(pair, baseline, column)
            if strategy in diff.index.get_level_values("strategy"):
                frames.append(diff.xs(strategy, level="strategy").assign(baseline=baseline, group=group))
    if not frames:
        return pd.DataFrame(columns=PAIRED, index=pd.MultiIndex.from_tuples([], names=["benchmark", "baseline", "group"]))
    return pd.concat(frames).reset_index().set_index(["benchmark", "baseline", "group"])[PAIRED]


def compare(runs: pd.DataFrame, strategy: str, baselines: list[str], benchmarks: list[str],
            seeds: list[int]) -> Comparison:
    """The comparison of ``strategy`` with ``baselines`` on ``benchmarks`` over ``seeds`` (runs:
    ``table.runs_frame``); raises ``ComparisonError`` without baselines, with the strategy among them, or naming
    every run of the comparison that is missing (so that every mean and every paired difference has all seeds)."""
    if not baselines or strategy in baselines:
        raise ComparisonError(f"{strategy} needs baselines other than itself; given: {', '.join(baselines) or 'none'}")
    runs = runs[runs["benchmark"].isin(benchmarks) & runs["strategy"].isin([strategy, *baselines])
                & runs["seed"].isin(seeds)]
    missing = table.missing_runs(runs, benchmarks, [strategy, *baselines], seeds)
    if missing:
        raise ComparisonError(f"{len(missing)} run(s) of the comparison missing: {listing(missing)}")
    summaries = table.cell_summaries(runs, MEANS, dict.fromkeys(MEANS, 0))
    cells = summaries.xs("all", level="group")
    differences = group_differences(runs, strategy, baselines)
    rows = []
    for bench in benchmarks:
        means = cells.loc[bench, "mean"]
        best = means[baselines].idxmax()
        paired = differences.loc[(bench, best, "all")]
        rows.append({"benchmark": bench, "mean": means[strategy], "best_baseline": best, "best_mean": means[best],
                     "margin": means[strategy] - means[best], **{f"paired_{k}": paired[k] for k in PAIRED},
                     "beats": means[strategy] > means[best], "beats_distinguishably": bool(paired["lo"] > 0)})
    return Comparison(strategy, baselines, benchmarks, seeds, differences, pd.DataFrame(rows).set_index("benchmark"),
                      summaries[["mean", "std", "n", "lo", "hi"]])


def mean_cell(summary: pd.Series) -> str:
    """'mean [lo, hi]' of a seed mean with its 95% t interval, a dash where there is no value."""
    if summary["n"] == 0:
        return DASH
    if summary["n"] == 1:
        return number(summary["mean"])
    return f"{number(summary['mean'])} {interval(summary['lo'], summary['hi'])}"


def spread_ratio(margin: float, std: float) -> str:
    """The margin in units of the seed std of the paired difference ('1.3 ×'), a dash without a std."""
    return DASH if not std or pd.isna(std) else f"{number(margin / std, 1, sign=True)} ×"


def summary_line(c: Comparison) -> str:
    """Whether the strategy beats every baseline on every benchmark (by mean, and with intervals above 0)."""
    v = c.verdict
    wins, sure = int(v["beats"].sum()), int(v["beats_distinguishably"].sum())
    verdict = ("beats the best baseline's mean on every benchmark" if wins == len(v)
               else f"beats the best baseline's mean on {wins} of {len(v)} benchmarks")
    return (f"{c.strategy} {verdict}; its paired difference to that baseline lies above 0 (95% interval) on "
            f"{sure} of {len(v)}.")


def markdown(c: Comparison) -> str:
    """The comparison as markdown: the verdict per benchmark, then per benchmark every strategy's means with
    their 95% t intervals and the paired differences to every baseline in every shot group."""
    v = c.verdict
    head = ["benchmark", c.strategy, "best baseline", "its mean", "margin", "paired Δ [95% CI] (n)",
            "std of Δ", "margin / std of Δ", "beats by mean"]
    rows = [[bench, number(r["mean"]), r["best_baseline"], number(r["best_mean"]), number(r["margin"], sign=True),
             difference(pd.Series({k: r[f"paired_{k}"] for k in PAIRED})), number(r["paired_std"]),
             spread_ratio(r["margin"], r["paired_std"]), "yes" if r["beats"] else "no"]
            for bench, r in v.iterrows()]
    lines = [
        f"# {c.strategy} against each baseline", "",
        "Best-epoch class-balanced test accuracy (%). Margin: the strategy's mean minus the best baseline's mean "
        "(W2 of docs/novel-strategy.md holds where it is above 0). Paired Δ: the strategy minus the baseline, seed by "
        "seed, with its 95% t interval and the number n of paired seeds; ≈ marks a difference whose interval "
        "contains 0. Std of Δ: the sample std over seeds of the paired difference, the seed spread the margin is "
        "measured against. Mean [95% CI]: the mean over seeds with its 95% t interval; a shot group without classes "
        "is left out.", "",
        summary_line(c), "",
        "## Against the best baseline of each benchmark (all classes)", "",
        markdown_table(head, rows, left=1, align="lrlrrrrrl"), ""]
    for bench in c.benchmarks:
        groups = [g for g in table.GROUPS if (bench, c.baselines[0], g) in c.differences.index]
        columns = [g for g in MEANS if g in groups or g not in table.GROUPS]
        means = [[name, *[mean_cell(c.means.loc[(bench, name, g)]) for g in columns]]
                 for name in [c.strategy, *c.baselines]]
        rows = [[base, *[difference(c.differences.loc[(bench, base, g)]) for g in groups]] for base in c.baselines]
        lines += [f"## {bench}: mean [95% CI] over seeds {', '.join(map(str, c.seeds))}", "",
                  markdown_table(["strategy", *columns], means), "",
                  f"## {bench}: paired Δ to each baseline, per shot group", "",
                  markdown_table(["baseline", *groups], rows), ""]
    return "\n".join(lines)
