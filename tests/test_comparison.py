"""One strategy against each baseline (ltbench.reporting.comparison, docs/novel-strategy.md "Win"): paired differences per
benchmark and shot group by hand, the verdict against the best baseline, a refusal naming missing runs, and
``results.py compare`` on the committed CPU pilot runs, checked against the published table's Δ."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO
from ltbench.reporting.comparison import ComparisonError, compare, markdown, summary_line

T975_2 = 4.302652729911275  # t quantile 0.975 with 2 degrees of freedom
SEEDS = [0, 1, 2]


def runs(values: dict[tuple[str, str], list[float]], few: bool = False) -> pd.DataFrame:
    """Runs with all-class accuracy values[(benchmark, strategy)][seed]; many = all + 10, medium = all - 10,
    few = all - 20 where ``few`` (else no few-shot classes: nan), all at the final epoch = all - 1."""
    rows = [{"benchmark": b, "strategy": s, "seed": k, "stage": "train", "collapsed": False,
             "best_balanced_acc": acc, "final_balanced_acc": acc - 1, "many_acc": acc + 10, "medium_acc": acc - 10,
             "few_acc": acc - 20 if few else math.nan}
            for (b, s), accs in values.items() for k, acc in enumerate(accs)]
    return pd.DataFrame(rows)


def test_paired_differences_and_the_verdict_by_hand():
    # the best baseline is b on b1 and a on b2, neither named first
    frame = runs({("b1", "new"): [60, 62, 64], ("b1", "a"): [50, 50, 50], ("b1", "b"): [58, 59, 63],
                  ("b2", "new"): [40, 40, 40], ("b2", "a"): [41, 42, 43], ("b2", "b"): [30, 30, 30]})
    c = compare(frame, "new", ["a", "b"], ["b1", "b2"], SEEDS)
    d = c.differences.loc[("b1", "b", "all")]  # differences 2, 3, 1: mean 2, std 1
    assert (d["mean"], d["std"], d["n"]) == (pytest.approx(2.0), pytest.approx(1.0), 3)
    assert d["lo"] == pytest.approx(2 - T975_2 / math.sqrt(3)) and not d["distinguishable"]
    assert c.differences.loc[("b1", "a", "many"), "mean"] == pytest.approx(12.0)  # shot groups move with all
    assert ("b1", "a", "few") not in c.differences.index  # no few-shot classes, no difference
    v = c.verdict
    assert v.loc["b1", "best_baseline"] == "b" and v.loc["b1", "margin"] == pytest.approx(2.0) and v.loc["b1", "beats"]
    assert v.loc["b2", "best_baseline"] == "a" and v.loc["b2", "margin"] == pytest.approx(-2.0) and not v.loc["b2", "beats"]
    assert summary_line(c).startswith("new beats the best baseline's mean on 1 of 2 benchmarks")
    text = markdown(c)
    assert "| b1 | 62.00 | b | 60.00 | +2.00 | +2.00 [-0.48, +4.48] (n=3) ≈ | 1.00 | +2.0 × | yes |" in text
    assert "| baseline | many | medium | all |" in text
    m = c.means.loc[("b1", "new", "all")]  # 60, 62, 64: mean 62, std 2
    assert (m["mean"], m["std"], m["lo"]) == (pytest.approx(62.0), pytest.approx(2.0), pytest.approx(62 - 2 * T975_2 / math.sqrt(3)))
    assert c.means.loc[("b2", "a", "all, final epoch"), "mean"] == pytest.approx(41.0)
    assert "## b1: mean [95% CI] over seeds 0, 1, 2" in text
    assert "| strategy | many | medium | all | all, final epoch |" in text  # no few-shot classes, no column
    assert "| new | 72.00 [67.03, 76.97] | 52.00 [47.03, 56.97] | 62.00 [57.03, 66.97] | 61.00 [56.03, 65.97] |" in text


def test_a_few_shot_group_is_compared_where_it_has_classes():
    c = compare(runs({("b1", "new"): [60, 61], ("b1", "a"): [50, 50]}, few=True), "new", ["a"], ["b1"], [0, 1])
    assert c.differences.loc[("b1", "a", "few"), "mean"] == pytest.approx(10.5)
    assert summary_line(c) == ("new beats the best baseline's mean on every benchmark; its paired difference to that"
                               " baseline lies above 0 (95% interval) on 1 of 1.")


def test_missing_runs_and_bad_baselines_are_named():
    with pytest.raises(ComparisonError, match="1 run.* missing: b2/b/seed0"):
        compare(runs({("b1", "new"): [1], ("b1", "b"): [1], ("b2", "new"): [1]}), "new", ["b"], ["b1", "b2"], [0])
    with pytest.raises(ComparisonError, match="b1/b/seed2"):  # a seed missing: means and pairs would differ
        compare(runs({("b1", "new"): [1, 2, 3], ("b1", "b"): [1, 2]}), "new", ["b"], ["b1"], SEEDS)
    for baselines in ([], ["new", "b"]):
        with pytest.raises(ComparisonError, match="baselines other than itself"):
            compare(runs({("b1", "new"): [1], ("b1", "b"): [1]}), "new", baselines, ["b1"], [0])


def test_compare_on_the_committed_pilot_runs(tmp_path):
    """sqrt_inverse against ce and inverse_freq on resnet8-cifar10lt-val: its Δ to ce is the published table's."""
    shutil.copytree(REPO / "docs/results/pilot-cpu/runs", tmp_path / "docs/runs")
    (tmp_path / "part.yaml").write_text("matrix: {benchmarks: [resnet8-cifar10lt-val], strategies: [ce, inverse_freq]}\n")
    proc = subprocess.run(
        [sys.executable, "scripts/results.py", "--config", "configs/cpu.yaml", "--config", "docs/novel-strategy.yaml",
         "--config", "configs/pilot-cpu.yaml", "--config", str(tmp_path / "part.yaml"),
         "compare", "--docs", str(tmp_path / "docs"), "--strategy", "sqrt_inverse"],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sqrt_inverse beats the best baseline's mean on every benchmark")
    text = (tmp_path / "docs/comparison-sqrt_inverse.md").read_text()
    published = (REPO / "docs/results/pilot-cpu/table.md").read_text()
    assert "+13.17 [+9.50, +16.84] (n=3)" in published
    means, paired = text.split("paired Δ to each baseline")
    assert "+13.17 [+9.50, +16.84] (n=3) |" in paired.split("| ce | ")[1].splitlines()[0]
    assert "[47.81, 49.44]" in published  # ce's mean and its interval, as the published table has them
    assert means.split("| ce | ")[1].splitlines()[0].split(" | ")[2] == "48.63 [47.81, 49.44]"
