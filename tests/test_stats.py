"""The table's statistics against values computed by hand (t quantiles from a printed t table)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ltbench.evaluation import stats

T_975_DF1 = 12.7062  # t_{0.975} with 1 degree of freedom
T_975_DF2 = 4.3027  # ... with 2
Z_975 = 1.959964


def test_t_interval_of_three_values():
    s = stats.t_interval([1.0, 2.0, 3.0])  # mean 2, s = 1
    half = T_975_DF2 * 1.0 / math.sqrt(3)  # 2.4841
    assert (s.mean, s.std, s.n) == (2.0, 1.0, 3)
    assert (s.lo, s.hi) == pytest.approx((2 - half, 2 + half), abs=1e-4)


def test_t_interval_of_two_values():
    s = stats.t_interval([10.0, 12.0])  # mean 11, s = sqrt(2), half = t * sqrt(2) / sqrt(2)
    assert s.std == pytest.approx(math.sqrt(2))
    assert (s.lo, s.hi) == pytest.approx((11 - T_975_DF1, 11 + T_975_DF1), abs=1e-4)


def test_t_interval_of_one_and_no_value():
    one = stats.t_interval([5.0, float("nan")])
    assert (one.mean, one.n) == (5.0, 1) and math.isnan(one.std) and math.isnan(one.lo) and math.isnan(one.hi)
    none = stats.t_interval([])
    assert none.n == 0 and math.isnan(none.mean)


def test_paired_difference_pairs_by_seed():
    x = {0: 10.0, 1: 12.0, 2: 11.0, 3: 99.0}  # seed 3 has no reference run
    r = {0: 9.0, 1: 10.0, 2: 11.0, 5: 50.0}
    d = stats.paired_difference(x, r)  # d = 1, 2, 0: mean 1, s = 1
    half = T_975_DF2 / math.sqrt(3)
    assert (d.mean, d.std, d.n) == (1.0, 1.0, 3)
    assert (d.lo, d.hi) == pytest.approx((1 - half, 1 + half), abs=1e-4)
    assert not stats.excludes_zero(d)


@pytest.mark.parametrize("diffs, distinguishable", [([2.0, 3.0, 4.0], True), ([-2.0, -3.0, -4.0], True),
                                                   ([1.0, 2.0, 0.0], False), ([2.0], False)])
def test_excludes_zero(diffs, distinguishable):
    summary = stats.paired_difference(dict(enumerate(diffs)), dict.fromkeys(range(len(diffs)), 0.0))
    assert stats.excludes_zero(summary) == distinguishable  # 3 +- 2.48 excludes 0; one seed has no interval


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p, z2 = k / n, Z_975 ** 2
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return 100 * (center - half), 100 * (center + half)


@pytest.mark.parametrize("k, n, expected", [(8, 10, (49.02, 94.33)), (0, 20, (0.0, 16.11)),
                                            (7000, 10000, (69.09, 70.89))])
def test_wilson_interval(k, n, expected):
    assert stats.wilson_interval(k, n) == pytest.approx(expected, abs=0.01)
    assert stats.wilson_interval(k, n) == pytest.approx(wilson_by_hand(k, n), abs=1e-4)


def test_mean_rank_averages_ties_and_skips_missing():
    scores = pd.DataFrame({"b1": [80.0, 75.0, 90.0], "b2": [70.0, 70.0, float("nan")]}, index=["A", "B", "C"])
    # b1: C 1, A 2, B 3; b2: A and B tie for 1 and 2 -> 1.5 each; C has no b2 score
    assert stats.mean_rank(scores).to_dict() == {"A": 1.75, "B": 2.25, "C": 1.0}


@pytest.mark.parametrize("acc, classes, collapsed", [(14.9, 10, True), (15.0, 10, False), (1.4, 100, True),
                                                     (1.5, 100, False), (70.0, 10, False)])
def test_collapsed_below_one_and_a_half_times_chance(acc, classes, collapsed):
    assert stats.collapsed(acc, classes) == collapsed
