"""How far two published result sets agree (ltbench.reporting.fidelity, ``results.py fidelity``; issue 36): hand-made sets
whose answer is known (the same order, the reverse, one sign flipped, a tie), the refusals, and the command on the
committed CPU-scale and full-recipe sets, with the figures docs/cpu-protocol.md quotes."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys

import pytest

import results
from conftest import REPO
from ltbench.reporting.fidelity import FidelityError, fidelity

TEMPLATE = json.loads((REPO / "docs/results/runs/resnet32-cifar10lt/ce/seed0/metrics.json").read_text())


def write_set(root, scores: dict[str, list[float]], arch: str = "small", dataset: str = "cifar10",
              ratio: float = 100.0) -> None:
    """A published set under ``root`` as ``results.py publish`` leaves it: runs/<benchmark>/<strategy>/seed<k>/
    metrics.json, a committed run's record with benchmark ``<arch>-<dataset>lt``, data set, ratio, strategy, seed and
    best-epoch class-balanced accuracy scores[strategy][k] replaced."""
    bench = f"{arch}-{dataset}lt"
    for strategy, accs in scores.items():
        for seed, acc in enumerate(accs):
            record = copy.deepcopy(TEMPLATE)
            record.update(benchmark=bench, arch=arch, dataset=dataset, imbalance_ratio=ratio, strategy=strategy,
                          seed=seed, best_balanced_acc=acc)
            path = root / f"runs/{bench}/{strategy}/seed{seed}/metrics.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record))


def measure(tmp_path, a: dict[str, list[float]], b: dict[str, list[float]], **kwargs):
    """Sets A (arch small) and B (arch big) on CIFAR-10-LT at ratio 100, read back as the command reads them;
    their one data set's ``DataFidelity``."""
    write_set(tmp_path / "A", a)
    write_set(tmp_path / "B", b, arch="big")
    runs = [results.published_runs(tmp_path / side) for side in "AB"]
    (data,) = fidelity(*runs, ("A", "B"), **kwargs).data
    return data


def test_the_same_order_agrees_everywhere(tmp_path):
    # B is A raised by 20 points and its differences doubled: the same order, every sign, r = 1
    a = {"ce": [50, 51, 52], "x": [60, 60, 63], "y": [45, 44, 46], "z": [70, 71, 69]}
    b = {s: [2 * v - 30 for v in accs] for s, accs in a.items()}
    d = measure(tmp_path, a, b)
    assert d.tau == pytest.approx(1.0) and d.pairs == 6
    assert d.agree.to_dict() == {"z": True, "x": True, "y": True}  # by B's rank, the reference left out
    assert d.r == pytest.approx(1.0)
    assert d.benchmarks == ("small-cifar10lt", "big-cifar10lt") and d.seeds == ([0, 1, 2], [0, 1, 2])
    assert list(d.means.index) == ["z", "x", "ce", "y"] and d.means.at["ce", "rank_A"] == 3
    # paired by seed: x - ce = 10, 9, 11 at A
    assert d.differences[0].loc["x", "mean"] == pytest.approx(10.0) and d.differences[0].loc["x", "n"] == 3


def test_the_reverse_order_disagrees_everywhere(tmp_path):
    a = {"ce": [50, 50], "x": [60, 61], "y": [70, 70]}
    d = measure(tmp_path, a, {"ce": [70, 70], "x": [60, 60], "y": [50, 51]})
    assert d.tau == pytest.approx(-1.0) and d.pairs == 3
    assert not d.agree.any() and len(d.agree) == 2
    assert d.r == pytest.approx(-1.0)


def test_one_flipped_sign_is_counted(tmp_path):
    # A: x > y > ce > w; B: x > ce > y > w. y beats ce at A only: 1 discordant pair of 6, tau = (5 - 1) / 6
    d = measure(tmp_path, {"ce": [50], "x": [60], "y": [55], "w": [40]},
                {"ce": [50], "x": [70], "y": [45], "w": [30]})
    assert d.tau == pytest.approx(4 / 6)
    assert d.agree.to_dict() == {"x": True, "y": False, "w": True} and int(d.agree.sum()) == 2
    # Δ_A = 10, 5, -10 (mean 5/3) and Δ_B = 20, -5, -20 (mean -5/3): centred, times 3, (25, 10, -35) and
    # (65, -10, -55); r = Σ xy / sqrt(Σ x² Σ y²)
    assert d.r == pytest.approx(3450 / math.sqrt(1950 * 7350))


def test_ties_give_tau_b(tmp_path):
    # x and y tie at A: C = 2, D = 0, pairs 3, one tied in A: tau_b = 2 / sqrt((3 - 1) * 3)
    d = measure(tmp_path, {"ce": [50], "x": [60], "y": [60]}, {"ce": [50], "x": [60], "y": [70]})
    assert d.tau == pytest.approx(2 / math.sqrt(6))


def test_two_strategies_rest_on_one_pair_without_a_correlation(tmp_path):
    d = measure(tmp_path, {"ce": [50], "x": [60]}, {"ce": [50], "x": [40]})
    assert (d.tau, d.pairs, int(d.agree.sum()), len(d.agree)) == (pytest.approx(-1.0), 1, 0, 1)
    assert math.isnan(d.r)


def test_a_strategy_or_data_set_of_one_set_only_is_left_out(tmp_path):
    write_set(tmp_path / "A", {"ce": [50], "x": [60], "only_a": [70]})
    write_set(tmp_path / "A", {"ce": [20], "x": [30]}, dataset="cifar100")
    write_set(tmp_path / "B", {"ce": [50], "x": [60], "only_b": [10]}, arch="big")
    f = fidelity(*(results.published_runs(tmp_path / side) for side in "AB"), ("A", "B"))
    (d,) = f.data
    assert d.strategies == ["x", "ce"] and d.only == (["only_a"], ["only_b"])
    assert f.only == (["CIFAR-100-LT at ratio 100 (small-cifar100lt)"], [])


@pytest.mark.parametrize("a, b, kwargs, message", [
    ({"ce": [50], "x": [60]}, {"ce": [50], "y": [60]}, {},
     r"A \(small-cifar10lt\) and B \(big-cifar10lt\) have fewer than 2 strategies in common on CIFAR-10-LT at ratio"
     r" 100 \(ce\)"),
    ({"ce": [50, 51], "x": [60, 61]}, {"ce": [50, 51], "x": [60]}, {},
     r"B: 1 run\(s\) of the strategies compared missing, every one needs seeds 0, 1: big-cifar10lt/x/seed1"),
    ({"ce": [50], "x": [60]}, {"ce": [50], "x": [60]}, {"reference": "x2"},
     r"A: no run of the reference strategy x2 on small-cifar10lt \(CIFAR-10-LT at ratio 100\)"),
])
def test_refusals_name_the_set_and_what_is_missing(tmp_path, a, b, kwargs, message):
    with pytest.raises(FidelityError, match=message):
        measure(tmp_path, a, b, **kwargs)


def test_sets_without_a_common_data_set_or_with_an_ambiguous_one_are_refused(tmp_path):
    write_set(tmp_path / "A", {"ce": [50], "x": [60]})
    write_set(tmp_path / "B", {"ce": [50], "x": [60]}, arch="big", dataset="cifar100")
    runs = [results.published_runs(tmp_path / side) for side in "AB"]
    with pytest.raises(FidelityError, match="A and B share no data set and ratio: A has CIFAR-10-LT at ratio 100;"
                                            " B has CIFAR-100-LT at ratio 100"):
        fidelity(*runs, ("A", "B"))
    write_set(tmp_path / "B", {"ce": [50], "x": [60]}, arch="big")
    write_set(tmp_path / "B", {"ce": [50], "x": [60]}, arch="huge")
    runs = [results.published_runs(tmp_path / side) for side in "AB"]
    with pytest.raises(FidelityError, match="B: several benchmarks on one data set and ratio.*CIFAR-10-LT at ratio"
                                            " 100: big-cifar10lt, huge-cifar10lt"):
        fidelity(*runs, ("A", "B"))


def results_fidelity(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/results.py", "fidelity", *args], cwd=REPO, capture_output=True,
                          text=True)


def test_the_command_refuses_in_one_line(tmp_path):
    write_set(tmp_path / "A", {"ce": [50], "x": [60]})
    proc = results_fidelity(str(tmp_path / "A"), str(tmp_path / "empty"))
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: {tmp_path / 'empty'}: no published run")


# Issue 36's figures for the six strategies with full-recipe runs (3-seed means of the committed tables).
ISSUE = {"CIFAR-10-LT at ratio 100": ("0.60 (15)", "2 of 5"), "CIFAR-100-LT at ratio 100": ("0.73 (15)", "4 of 5")}


def test_the_committed_cpu_scale_against_the_full_recipe(tmp_path):
    """The command on docs/results/cpu against docs/results gives the issue's τ and signs, its markdown has a
    per-strategy table for each data set, and docs/cpu-protocol.md quotes its summary table as printed."""
    out = tmp_path / "fidelity.md"
    proc = results_fidelity("docs/results/cpu", "docs/results", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.split("\n", 1)[1].strip()
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in printed.splitlines()[2:]}
    assert {label: (row[5], row[6]) for label, row in rows.items()} == ISSUE
    text = out.read_text()
    assert printed in text
    # on CIFAR-10-LT inverse_freq beats ce at the CPU scale and loses to it at the full recipe
    assert re.search(r"\| inverse_freq \| 56\.15 \| 5\.0 \| \+7\.71 .*\| 66\.43 \| 6\.0 \| -5\.58 .*\| \*\*no\*\* \|",
                     text)
    readme = (REPO / "docs/cpu-protocol.md").read_text()
    (quoted,) = re.findall(r"<!-- fidelity: docs/results/cpu docs/results -->\n(.*?)<!-- /fidelity -->", readme, re.S)
    assert quoted.strip() == printed
