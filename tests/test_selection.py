"""The research protocol's selection rule (ltbench.reporting.selection, docs/novel-strategy.md "Protocol" step 2): the
score is the mean over benchmarks of seed means of the validation accuracy; within 0.5 points of the highest,
the largest ESS; test accuracy and the baselines never decide; an incomplete stage is refused. Then
``results.py select`` on the committed CPU pilot runs."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO
from ltbench.reporting.selection import SelectionError, develop, ess

BENCHMARKS = ["b10", "b100"]
SEEDS = [0, 1, 2]
GENTLE, STEEP = 0.9, 0.64  # the ESS of weights 1, 2 and of 1, 4 on counts 4, 1 (test_ess_by_hand)


def run(bench, strategy, seed, val, test=50.0, gentleness=GENTLE):
    """A run's row with what the rule reads (table.runs_frame's columns, and ess)."""
    return {"benchmark": bench, "strategy": strategy, "seed": seed, "val_selected_val_acc": val,
            "best_balanced_acc": test, "ess": gentleness, "collapsed": False}


def stage(vals: dict[str, float], gentleness: dict[str, float] | None = None, tests: dict[str, float] | None = None):
    """Every benchmark x strategy x seed, with validation accuracy vals[strategy] (+ seed - 1, mean unchanged)."""
    return [run(b, s, k, v + k - 1, (tests or {}).get(s, 50.0), (gentleness or {}).get(s, GENTLE))
            for b in BENCHMARKS for s, v in vals.items() for k in SEEDS]


def select(rows, strategies, candidates):
    return develop(pd.DataFrame(rows), strategies, candidates, BENCHMARKS, SEEDS)


def test_ess_by_hand():
    assert ess([4, 1], [1, 1]) == pytest.approx(1.0)
    assert ess([4, 1], [1, 4]) == pytest.approx(STEEP)  # (4 + 4)^2 / (5 (4 + 16)) = 64 / 100
    assert ess([4, 1], [1, 2]) == pytest.approx(GENTLE)  # (4 + 2)^2 / (5 (4 + 4)) = 36 / 40


def test_the_highest_score_wins_when_no_other_is_close():
    dev = select(stage({"a": 60.0, "b": 59.0}, {"a": STEEP}), ["a", "b"], ["a", "b"])
    assert dev.selected == "a" and dev.within == ["a"]
    assert dev.scores.at["a", "score"] == pytest.approx(60.0)


@pytest.mark.parametrize("b_val, selected", [(59.6, "b"), (59.5, "b"), (59.49, "a")])
def test_within_half_a_point_the_gentlest_wins(b_val, selected):
    dev = select(stage({"a": 60.0, "b": b_val}, {"a": STEEP, "b": GENTLE}), ["a", "b"], ["a", "b"])
    assert dev.selected == selected
    assert dev.scores.at["b", "ess"] == pytest.approx(GENTLE)


def test_on_equal_ess_the_first_named_wins():
    dev = select(stage({"a": 60.0, "b": 60.2, "c": 60.1}, {"b": STEEP}), ["a", "b", "c"], ["c", "a", "b"])
    assert dev.within == ["c", "a", "b"] and dev.selected == "c"


def test_the_score_is_the_mean_over_benchmarks_of_seed_means():
    # a: 70 on b10 and 30 on b100 (score 50); b: 52 on both: b wins, though a is best on b10
    rows = [run("b10", "a", k, 70.0) for k in SEEDS] + [run("b100", "a", k, 30.0) for k in SEEDS]
    rows += [run(bench, "b", k, 52.0) for bench in BENCHMARKS for k in SEEDS]
    dev = select(rows, ["a", "b"], ["a", "b"])
    assert dev.scores.at["a", "score"] == pytest.approx(50.0) and dev.selected == "b"


def test_test_accuracy_and_baselines_never_decide():
    # the baseline has the highest validation score and b the highest test accuracy: a is selected
    dev = select(stage({"base": 80.0, "a": 60.0, "b": 55.0}, tests={"b": 99.0}), ["base", "a", "b"], ["a", "b"])
    assert dev.selected == "a"
    assert dev.cells.loc[("b10", "b", "test"), "mean"] == pytest.approx(99.0)


def test_an_incomplete_stage_is_refused_naming_the_run():
    rows = [r for r in stage({"base": 50.0, "a": 60.0}) if (r["benchmark"], r["strategy"], r["seed"]) != ("b100", "base", 2)]
    with pytest.raises(SelectionError, match="1 development run.*b100/base/seed2"):
        select(rows, ["base", "a"], ["a"])
    rows = stage({"base": 50.0, "a": 60.0})
    rows[0]["val_selected_val_acc"] = math.nan  # no validation set
    with pytest.raises(SelectionError, match="b10/base/seed0"):
        select(rows, ["base", "a"], ["a"])
    with pytest.raises(SelectionError, match="not: z"):
        select(stage({"a": 60.0}), ["a"], ["z"])


PILOT = ["--config", "configs/cpu.yaml", "--config", "docs/novel-strategy.yaml", "--config", "configs/pilot-cpu.yaml"]


def results_select(tmp_path, *args):
    return subprocess.run([sys.executable, "scripts/results.py", *PILOT, "--config", str(tmp_path / "part.yaml"),
                           "select", "--docs", str(tmp_path / "docs"), *args],
                          cwd=REPO, capture_output=True, text=True)


def test_select_on_the_committed_pilot_runs(tmp_path):
    """The first four strategies of the committed CPU pilot on resnet8-cifar10lt-val: the rule's choice
    among three of them, and a refusal while a run of the matrix is missing."""
    shutil.copytree(REPO / "docs/results/pilot-cpu/runs", tmp_path / "docs/runs")
    (tmp_path / "part.yaml").write_text("matrix: {benchmarks: [resnet8-cifar10lt-val],"
                                        " strategies: [ce, inverse_freq, sqrt_inverse, effective_number]}\n")
    proc = results_select(tmp_path, "--candidates", "ce", "inverse_freq", "effective_number")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "effective_number"  # 57.47 validation against 55.60 and 49.13
    text = (tmp_path / "docs/selection.md").read_text()
    assert "| sqrt_inverse (baseline) | 60.93 ± 1.43 | 61.79 ± 1.16 | 60.93 | 0.675 |" in text
    assert "Selected: **effective_number**" in text

    shutil.rmtree(tmp_path / "docs/runs/resnet8-cifar10lt-val/ce/seed1")
    (tmp_path / "docs/selection.md").unlink()
    proc = results_select(tmp_path, "--candidates", "ce", "inverse_freq")
    assert proc.returncode == 1 and "resnet8-cifar10lt-val/ce/seed1" in proc.stderr
    assert not (tmp_path / "docs/selection.md").exists()
