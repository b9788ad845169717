"""The results table's statistics, each a small function of per-run metrics (accuracies in %)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95  # confidence level of every interval in the table
COLLAPSE_FACTOR = 1.5  # a run whose best accuracy is below 1.5 x chance has collapsed


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation, count and confidence interval [lo, hi] of n values
    (nan where undefined: everything for n = 0, std and interval for n = 1)."""

    mean: float
    std: float
    n: int
    lo: float
    hi: float


def t_interval(values: Iterable[float], level: float = LEVEL) -> Summary:
    """Mean ± t_{(1+level)/2, n-1} * s / sqrt(n), with s the sample std (ddof=1) of the non-nan values."""
    x = np.asarray(list(values), dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(mean, math.nan, 1, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    return Summary(mean, std, n, mean - half, mean + half)


def paired_difference(values: Mapping[int, float], reference: Mapping[int, float], level: float = LEVEL) -> Summary:
    """``t_interval`` of d_s = x_s - r_s over the seeds s present in both (a paired-by-seed difference)."""
    return t_interval([values[s] - reference[s] for s in sorted(set(values) & set(reference))], level)


def excludes_zero(summary: Summary) -> bool:
    """True iff the interval is defined and lo > 0 or hi < 0: the difference is distinguishable from zero."""
    return summary.lo > 0 or summary.hi < 0  # nan compares False


def wilson_interval(correct: int, total: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of an accuracy over ``total`` test images, in %:
    (p + z²/2N ± z sqrt(p(1-p)/N + z²/4N²)) / (1 + z²/N), p = correct / N, z = Φ⁻¹((1+level)/2)."""
    ci = stats.binomtest(correct, total).proportion_ci(confidence_level=level, method="wilson")
    return 100.0 * float(ci.low), 100.0 * float(ci.high)


def mean_rank(scores: pd.DataFrame) -> pd.Series:
    """Rows (strategies) x columns (benchmarks) of scores -> each row's mean rank over the columns, where
    rank 1 is the highest score of a column, tied scores share their average rank, missing scores are skipped."""
    return scores.rank(axis=0, ascending=False, method="average").mean(axis=1)


def chance_accuracy(num_classes: int) -> float:
    """100 / C: the accuracy of a constant or random guess on a balanced test set."""
    return 100.0 / num_classes


def collapsed(accuracy: float, num_classes: int, factor: float = COLLAPSE_FACTOR) -> bool:
    """accuracy < factor * 100 / C: the run learned (almost) nothing beyond chance."""
    return accuracy < factor * chance_accuracy(num_classes)
