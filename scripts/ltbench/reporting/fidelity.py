"""How far the verdicts of one published result set agree with another's (issue 36): per data set and imbalance
ratio, the benchmark of each set on it (their architectures and schedules may differ), over the strategies both
sets ran there, every one with every seed its set has for them.

- A strategy's score is its mean over seeds of the best-epoch class-balanced test accuracy (``table.HEADLINE``).
- Kendall's τ-b of the two sets' scores (``scipy.stats.kendalltau``, variant b): over the P = n(n−1)/2 pairs of
  the n strategies, τ_b = (C − D) / sqrt((P − T_A)(P − T_B)), C and D the pairs ordered the same and the opposite
  way, T_A and T_B the pairs tied in one set (without ties τ_b = (C − D) / P).
- Each other strategy's paired difference to the reference strategy, Δ = mean over seeds s of (x_s − r_s), within
  each set (``table.reference_differences``); the signs agree where sign(Δ_A) = sign(Δ_B) (a zero agrees only
  with a zero), counted over the n − 1 strategies.
- Pearson's r of the n − 1 pairs (Δ_A, Δ_B) (``scipy.stats.pearsonr``): Σ (Δ_A − mean)(Δ_B − mean) /
  sqrt(Σ (Δ_A − mean)² Σ (Δ_B − mean)²); undefined (nan) below 2 pairs or where the Δ of one set are all
  equal.

A strategy that only one set has on a data set is left out and named, as is a data set only one set has.
``FidelityError`` refuses sets that share no data set, a data set with fewer than 2 shared strategies or without
the reference in a set, a compared strategy that lacks a seed, and a set with two benchmarks on one data set
and ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from ltbench.evaluation import stats
from ltbench.reporting import table
from ltbench.config import NATURAL, format_ratio
from ltbench.reporting.table_text import DASH, DATASET_NAMES, difference, listing, markdown_table, number

REFERENCE = "ce"  # the strategy every difference is taken to, unless named
DATA = ["dataset", "imbalance_ratio"]  # what matches a benchmark of one set with a benchmark of the other
SIDES = ("A", "B")


class FidelityError(ValueError):
    """The two result sets cannot be compared as they are; the message names the set and what is missing."""


@dataclass(frozen=True)
class DataFidelity:
    """One data set and ratio: the benchmark and seeds of each set, the strategies compared (ordered by B's
    score), those of one set only, per strategy ``means`` (``mean_A``, ``rank_A``, ``mean_B``, ``rank_B``) and
    ``differences`` (per side, the ``table.reference_differences`` row of every strategy but the reference), and
    the figures: τ-b, the signs that agree, Pearson's r of the differences."""

    dataset: str
    ratio: float | str
    benchmarks: tuple[str, str]
    seeds: tuple[list[int], list[int]]
    strategies: list[str]
    only: tuple[list[str], list[str]]
    means: pd.DataFrame
    differences: tuple[pd.DataFrame, pd.DataFrame]
    tau: float
    agree: pd.Series
    r: float

    @property
    def label(self) -> str:
        """'CIFAR-10-LT at ratio 100'."""
        return data_label(self.dataset, self.ratio)

    @property
    def pairs(self) -> int:
        """n(n−1)/2: the pairs of strategies τ rests on."""
        return len(self.strategies) * (len(self.strategies) - 1) // 2


@dataclass(frozen=True)
class Fidelity:
    """Set A against set B (``names``: how each is called, its folder), per shared data set; ``only``: the data
    sets ('CIFAR-10-LT at ratio 100 (benchmark)') of one set only."""

    names: tuple[str, str]
    reference: str
    data: list[DataFidelity]
    only: tuple[list[str], list[str]]


def data_label(dataset: str, ratio: float | str) -> str:
    """'CIFAR-10-LT at ratio 100', 'mydata as it is' (ratio ``natural``); a data set without a paper name as
    configured."""
    name = DATASET_NAMES.get(dataset, dataset)
    return f"{name} as it is" if ratio == NATURAL else f"{name} at ratio {format_ratio(ratio)}"


def benchmarks_by_data(runs: pd.DataFrame, name: str) -> dict[tuple[str, float | str], str]:
    """{(dataset, ratio): the set's benchmark on it}, by data set, then ratio (``table.ratio_order``);
    ``FidelityError`` where two benchmarks of the set share one."""
    found = runs.groupby(DATA, sort=False)["benchmark"].unique()
    found = dict(sorted(found.items(), key=lambda item: (item[0][0], table.ratio_order(item[0][1]))))
    shared = {key: list(benches) for key, benches in found.items() if len(benches) > 1}
    if shared:
        raise FidelityError(f"{name}: several benchmarks on one data set and ratio, which to compare is ambiguous: "
                            + "; ".join(f"{data_label(*key)}: {', '.join(b)}" for key, b in shared.items()))
    return {key: benches[0] for key, benches in found.items()}


def complete_seeds(runs: pd.DataFrame, name: str, benchmark: str, strategies: list[str]) -> list[int]:
    """The seeds any of ``strategies`` has on ``benchmark``; ``FidelityError`` naming every run of benchmark x
    strategies x those seeds that the set lacks (a mean over other seeds than its rivals' is no fair score)."""
    seeds = sorted(int(s) for s in runs.loc[runs["strategy"].isin(strategies), "seed"].unique())
    missing = table.missing_runs(runs, [benchmark], strategies, seeds)
    if missing:
        raise FidelityError(f"{name}: {len(missing)} run(s) of the strategies compared missing, every one needs "
                            f"seeds {', '.join(map(str, seeds))}: {listing(missing)}")
    return seeds


def scores(runs: pd.DataFrame) -> pd.Series:
    """Per strategy: the mean over seeds of ``table.HEADLINE``."""
    return runs.groupby("strategy")[table.HEADLINE].mean()


def kendall_tau(a: pd.Series, b: pd.Series) -> float:
    """Kendall's τ-b of two scores of the same strategies (nan where one set ties them all)."""
    return float(sps.kendalltau(a.to_numpy(), b.loc[a.index].to_numpy(), variant="b").statistic)


def same_sign(a: pd.Series, b: pd.Series) -> pd.Series:
    """Per strategy: sign(a) = sign(b)."""
    return pd.Series(np.sign(a.to_numpy()) == np.sign(b.loc[a.index].to_numpy()), index=a.index)


def pearson(a: pd.Series, b: pd.Series) -> float:
    """Pearson's r of the pairs (a, b) over the strategies; nan below 2 pairs or where either is constant."""
    x, y = a.to_numpy(dtype=float), b.loc[a.index].to_numpy(dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(sps.pearsonr(x, y).statistic)


def differences(runs: pd.DataFrame, reference: str) -> pd.DataFrame:
    """``table.reference_differences`` of one benchmark's runs, indexed by strategy."""
    return table.reference_differences(runs, reference).droplevel("benchmark")


def data_fidelity(a: pd.DataFrame, b: pd.DataFrame, names: tuple[str, str], reference: str) -> DataFidelity:
    """The figures of one data set and ratio from each set's runs on its benchmark there."""
    sides = (a, b)
    benchmarks = tuple(runs["benchmark"].iloc[0] for runs in sides)
    have = [set(runs["strategy"]) for runs in sides]
    label = data_label(*a[DATA].iloc[0])
    for name, bench, strategies in zip(names, benchmarks, have):
        if reference not in strategies:
            raise FidelityError(f"{name}: no run of the reference strategy {reference} on {bench} ({label})")
    shared = sorted(have[0] & have[1])
    if len(shared) < 2:
        raise FidelityError(f"{names[0]} ({benchmarks[0]}) and {names[1]} ({benchmarks[1]}) have fewer than 2 "
                            f"strategies in common on {label} ({', '.join(shared) or 'none'}): nothing to rank")
    sides = tuple(runs[runs["strategy"].isin(shared)] for runs in sides)
    seeds = tuple(complete_seeds(runs, name, bench, shared) for runs, name, bench in zip(sides, names, benchmarks))
    means = pd.DataFrame({f"mean_{side}": scores(runs) for side, runs in zip(SIDES, sides)})
    for side in SIDES:
        means[f"rank_{side}"] = stats.mean_rank(means[[f"mean_{side}"]])
    means = means.sort_values(["rank_B", "rank_A"])
    diffs = tuple(differences(runs, reference) for runs in sides)
    delta_a, delta_b = (d["mean"].reindex([s for s in means.index if s != reference]) for d in diffs)
    return DataFidelity(a["dataset"].iloc[0], a["imbalance_ratio"].iloc[0], benchmarks, seeds, list(means.index),
                        (sorted(have[0] - have[1]), sorted(have[1] - have[0])), means, diffs,
                        kendall_tau(means["mean_A"], means["mean_B"]), same_sign(delta_a, delta_b),
                        pearson(delta_a, delta_b))


def fidelity(a: pd.DataFrame, b: pd.DataFrame, names: tuple[str, str], reference: str = REFERENCE) -> Fidelity:
    """Set A (``table.runs_frame`` of its runs) against set B, per data set and ratio both have."""
    found = [benchmarks_by_data(runs, name) for runs, name in zip((a, b), names)]
    shared = [key for key in found[0] if key in found[1]]
    if not shared:
        raise FidelityError(f"{names[0]} and {names[1]} share no data set and ratio: "
                            + "; ".join(f"{name} has {', '.join(data_label(*k) for k in keys) or 'no runs'}"
                                        for name, keys in zip(names, found)))
    only = tuple([f"{data_label(*key)} ({mine[key]})" for key in mine if key not in other]
                 for mine, other in ((found[0], found[1]), (found[1], found[0])))
    data = [data_fidelity(a[a["benchmark"] == found[0][key]], b[b["benchmark"] == found[1][key]], names, reference)
            for key in shared]
    return Fidelity(names, reference, data, only)


# ---------------------------------------------------------------- markdown


def figure(value: float, n: int) -> str:
    """'0.60 (15)': a figure and the count it rests on; a dash for an undefined figure."""
    return f"{number(value)} ({n})" if not np.isnan(value) else f"{DASH} ({n})"


def summary_table(f: Fidelity) -> str:
    """One row per data set and ratio: the benchmarks, the strategies compared and left out, τ-b with its pairs,
    the signs that agree, Pearson's r with its pairs."""
    header = ["data set", "A", "B", "strategies", "left out (A only, B only)", "Kendall's τ-b (pairs)",
              f"same sign of Δ vs {f.reference}", "Pearson r of Δ (n)"]
    rows = [[d.label, d.benchmarks[0], d.benchmarks[1], str(len(d.strategies)), f"{len(d.only[0])}, {len(d.only[1])}",
             figure(d.tau, d.pairs), f"{int(d.agree.sum())} of {len(d.agree)}", figure(d.r, len(d.agree))]
            for d in f.data]
    return markdown_table(header, rows, left=3)


def detail_table(d: DataFidelity, reference: str) -> str:
    """Per strategy compared, by B's rank: each set's mean and rank and its Δ to the reference, and whether the
    signs agree."""
    rows = []
    for strategy, m in d.means.iterrows():
        cells = [strategy]
        for side, diff in zip(SIDES, d.differences):
            delta = "reference" if strategy == reference else difference(diff.loc[strategy])
            cells += [number(m[f"mean_{side}"]), number(m[f"rank_{side}"], 1), delta]
        cells.append(DASH if strategy == reference else "yes" if d.agree[strategy] else "**no**")
        rows.append(cells)
    header = ["strategy", *[f"{side} {what}" for side in SIDES for what in ("mean", "rank", f"Δ vs {reference}")],
              "same sign"]
    return markdown_table(header, rows, align="lrrrrrrl")


def markdown(f: Fidelity) -> str:
    """The comparison as markdown: what A and B are and how each figure is computed, the summary table, data sets
    of one set only, then per data set the detail table and the strategies left out."""
    lines = [
        "# Fidelity of one result set to another", "",
        f"A: `{f.names[0]}`; B: `{f.names[1]}`. Per data set and imbalance ratio, over the strategies both sets have "
        "there, with every seed: a strategy's score is its mean over seeds of the best-epoch class-balanced test "
        "accuracy (%), rank 1 the highest. Kendall's τ-b compares the two rankings over the n(n−1)/2 pairs of the n "
        f"strategies (1: the same order, −1: reversed). Δ vs {f.reference}: a strategy's difference to "
        f"{f.reference}, paired by seed, with its 95% t interval and the number n of paired seeds (≈: the interval "
        f"contains 0); its sign is the verdict 'does it beat {f.reference}?', and the signs of A and B are counted "
        "where they agree. Pearson r: the correlation of the Δ of A and B across those strategies.", "",
        summary_table(f), ""]
    for side, only in zip(SIDES, f.only):
        if only:
            lines += [f"Data sets of {side} only, left out: {', '.join(only)}.", ""]
    for d in f.data:
        seeds = "; ".join(f"{side} {', '.join(map(str, s))}" for side, s in zip(SIDES, d.seeds))
        lines += [f"## {d.label}: {d.benchmarks[0]} (A) against {d.benchmarks[1]} (B)", "",
                  f"Seeds: {seeds}.", "", detail_table(d, f.reference), ""]
        for side, only in zip(SIDES, d.only):
            if only:
                lines += [f"Left out, in {side} only: {', '.join(only)}.", ""]
    return "\n".join(lines)
