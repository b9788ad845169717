"""The new weight functions of docs/novel-strategy.md: formulas against hand-computed values, their limiting cases,
the weight-only rule, the shape figures the document quotes, the protocol's config files as dry runs, and the CPU
pilot's reports (quoted word for word, and remade byte for byte from the committed runs)."""

from __future__ import annotations

import importlib
import math
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import REPO, Workflow
from ltbench import strategies
from ltbench.config import Strategy, strategy
from ltbench.datasets.data import long_tail_counts
from ltbench.reporting.selection import ess
from test_selection import PILOT  # the pilot's development config files
from test_strategies import CONTEXT, close, resolve

DEVELOPMENT = "docs/novel-strategy.yaml"
FINAL = "docs/novel-strategy-final.yaml"
CANDIDATES = yaml.safe_load((REPO / DEVELOPMENT).read_text())["strategies"]
MODULES = sorted({entry["module"] for entry in CANDIDATES.values()})
DEV_BENCHMARKS = ["resnet32-cifar10lt-val", "resnet32-cifar100lt-val"]  # with a validation hold-out
FINAL_BENCHMARKS = ["resnet32-cifar10lt", "resnet32-cifar100lt", "vgg16bn-cifar100lt"]  # vgg16bn: held out till then
BASELINES = ["ce", "inverse_freq", "sqrt_inverse", "effective_number", "balanced_softmax"]
# LDAM-DRW's long-tailed counts of the three benchmarks: (n_max, C, rho).
BENCHMARK_COUNTS = {
    "resnet32-cifar10lt": long_tail_counts(5000, 10, 100),
    "resnet32-cifar100lt": long_tail_counts(500, 100, 100),
    "vgg16bn-cifar100lt": long_tail_counts(500, 100, 50),
}


def weights_for(name: str, counts) -> torch.Tensor:
    """The weights of protocol entry (or baseline) ``name`` for ``counts``, read as the pipeline reads them."""
    spec = strategy({"strategies": {**CANDIDATES, **{b: {} for b in BASELINES}}}, name)
    return strategies.resolve(spec, counts, CONTEXT).weights.double()


def test_smoothed_inverse():
    # n̄ = 111 / 3 = 37; 37 / (n + 0.5 * 37) for n = 100, 10, 1; default smoothing 0.25: 37 / (n + 9.25)
    assert close(resolve("novel_smoothed_inverse", smoothing=0.5).weights, [0.3122363, 1.2982456, 1.8974359])
    assert close(resolve("novel_smoothed_inverse").weights, [0.3386728, 1.9220779, 3.6097561])


def test_prior_mixture():
    # 0.5 + 0.5 * 37 / n; default alpha 0.25: 0.75 + 0.25 * 37 / n
    assert close(resolve("novel_prior_mixture", alpha=0.5).weights, [0.685, 2.35, 19.0])
    assert close(resolve("novel_prior_mixture").weights, [0.8425, 1.675, 10.0])


def test_ess_power_by_hand():
    # counts 4, 1: ESS(p) = (4^(1-p) + 1)^2 / (5 (4^(1-2p) + 1)); ESS(1/2) = 9 / 10, so kappa 0.9 gives p = 1/2
    # and w = (2.5 / n)^(1/2) = 0.7905694, 1.5811388
    out = strategies.resolve(Strategy("novel_ess_power", "novel_ess_power", {"kappa": 0.9}), [4, 1], CONTEXT)
    assert close(out.weights, [0.7905694, 1.5811388])


@pytest.mark.parametrize(
    "module, params, limit",
    [
        ("novel_ess_power", {"kappa": 1.0}, "ce"),
        ("novel_ess_power", {"kappa": 0.05}, "inverse_freq"),  # kappa <= ESS(1) = 3^2 / (111 * 1.11) = 0.073
        ("novel_smoothed_inverse", {"smoothing": 0.0}, "inverse_freq"),
        ("novel_prior_mixture", {"alpha": 0.0}, "ce"),
        ("novel_prior_mixture", {"alpha": 1.0}, "inverse_freq"),
    ],
)
def test_limiting_cases_are_the_baselines(module, params, limit):
    assert close(resolve(module, **params).weights, resolve(limit).weights.tolist())


def test_large_smoothing_tends_to_ce():
    weights = resolve("novel_smoothed_inverse", smoothing=1e6).weights
    assert torch.allclose(weights / weights.mean(), torch.ones(3), atol=1e-4)


@pytest.mark.parametrize(
    "module, params, message",
    [
        ("novel_ess_power", {"kappa": 0.0}, "kappa must be in"),
        ("novel_ess_power", {"kappa": 1.5}, "kappa must be in"),
        ("novel_smoothed_inverse", {"smoothing": -1.0}, "smoothing must be >= 0"),
        ("novel_prior_mixture", {"alpha": 1.5}, "alpha must be in"),
    ],
)
def test_bad_parameters_stop_the_run(module, params, message):
    with pytest.raises(strategies.StrategyError, match=f"'{module}' failed .*{message}"):
        resolve(module, **params)


@pytest.mark.parametrize("module", MODULES)
def test_candidates_are_weight_functions_only(module):
    """The rules of the game: a static weight function of the counts and config, nothing else."""
    loaded = importlib.import_module(f"ltbench.strategies.{module}")
    assert [hook for hook in strategies.HOOKS if hasattr(loaded, hook)] == ["compute_class_weights"]
    assert loaded.TYPE == "static reweighting" and "w_c = " in loaded.compute_class_weights.__doc__


@pytest.mark.parametrize("kappa", [0.5, 0.75])
@pytest.mark.parametrize("benchmark", BENCHMARK_COUNTS)
def test_ess_power_spends_exactly_its_budget(benchmark, kappa):
    counts = BENCHMARK_COUNTS[benchmark]
    weights = weights_for(f"novel_ess_power_k{round(kappa * 100)}", counts)
    assert ess(counts, weights.tolist()) == pytest.approx(kappa, abs=1e-5)
    # a power law: log w_c - log w_0 = -p (log n_c - log n_0) with one p in (0, 1) for every class
    log_n, log_w = torch.tensor(counts, dtype=torch.float64).log(), weights.log()
    slopes = -(log_w[1:] - log_w[0]) / (log_n[1:] - log_n[0])
    assert 0 < float(slopes.min()) and float(slopes.max()) < 1 and float(slopes.max() - slopes.min()) < 1e-4


# What docs/novel-strategy.md quotes: per configuration and benchmark, ESS and the largest weight ratio w_max / w_min,
# computed from the counts alone.
SHAPES = {
    "ce": [(1.0, 1.0), (1.0, 1.0), (1.0, 1.0)],
    "inverse_freq": [(0.162, 100.0), (0.202, 100.0), (0.306, 50.0)],
    "sqrt_inverse": [(0.673, 10.0), (0.703, 10.0), (0.763, 7.07)],
    "effective_number": [(0.180, 78.9), (0.204, 97.6), (0.308, 48.8)],
    "novel_ess_power_k50": [(0.500, 18.2), (0.500, 21.5), (0.500, 19.7)],
    "novel_ess_power_k75": [(0.750, 7.56), (0.750, 8.31), (0.750, 7.47)],
    "novel_smoothed_inverse_s25": [(0.509, 14.7), (0.534, 16.4), (0.591, 12.8)],
    "novel_smoothed_inverse_s100": [(0.776, 4.84), (0.791, 5.36), (0.823, 4.60)],
    "novel_prior_mixture_a50": [(0.436, 20.7), (0.503, 18.6), (0.638, 10.9)],
    "novel_prior_mixture_a25": [(0.756, 8.56), (0.802, 7.68), (0.876, 4.80)],
}


def test_every_configuration_has_documented_shapes():
    assert set(SHAPES) == set(CANDIDATES) | (set(BASELINES) - {"balanced_softmax"})  # its weights are all 1


@pytest.mark.parametrize("name", SHAPES)
def test_the_documented_shapes(name):
    for counts, (quoted_ess, quoted_ratio) in zip(BENCHMARK_COUNTS.values(), SHAPES[name]):
        weights = weights_for(name, counts)
        assert torch.isfinite(weights).all() and (weights > 0).all()
        assert ess(counts, weights.tolist()) == pytest.approx(quoted_ess, abs=6e-4)
        assert float(weights.max() / weights.min()) == pytest.approx(quoted_ratio, rel=6e-3)


def test_ess_power_exponents_follow_the_imbalance():
    """The exponent kappa 0.5 picks: larger for rho 50 than for rho 100 (the document quotes 0.63, 0.67, 0.76)."""
    exponents = []
    for counts in BENCHMARK_COUNTS.values():
        weights = weights_for("novel_ess_power_k50", counts)
        exponents.append(math.log(weights[-1] / weights[0]) / math.log(counts[0] / counts[-1]))
    assert exponents == pytest.approx([0.630, 0.666, 0.762], abs=1e-3)


def planned_trainings(*args: str) -> set[tuple[str, str, int]]:
    """(benchmark, strategy, seed) of every training a dry run of the real workflow with these arguments plans
    (``--forceall``: results already in the tree hide none)."""
    jobs = Workflow(REPO, dict(os.environ)).planned_jobs("--forceall", *args)
    runs = (dict(item.split("=") for item in wildcards.split(", ")) for rule, wildcards in jobs if rule == "train")
    return {(run["benchmark"], run["strategy"], int(run["seed"])) for run in runs}


def matrix(benchmarks, strategy_names, seeds) -> set[tuple[str, str, int]]:
    return {(b, s, seed) for b in benchmarks for s in strategy_names for seed in seeds}


def test_development_stage_trains_66_runs_without_the_held_out_benchmark():
    planned = planned_trainings("--configfile", DEVELOPMENT)
    assert planned == matrix(DEV_BENCHMARKS, BASELINES + list(CANDIDATES), [0, 1, 2]) and len(planned) == 66


def test_development_benchmarks_are_the_resnet32_ones_with_a_validation_hold_out():
    """Selection looks at validation accuracy only: each development benchmark is a ResNet-32 benchmark of the
    results table, the same source format and ratio, with a class-balanced validation set held out."""
    from ltbench import cli

    config = cli.load_config(REPO / "config.yaml", REPO / DEVELOPMENT)
    for dev, published in zip(DEV_BENCHMARKS, FINAL_BENCHMARKS):
        bench, ref = config["benchmarks"][dev], config["benchmarks"][published]
        assert (bench["arch"], bench["imbalance_ratio"]) == (ref["arch"], ref["imbalance_ratio"]) == ("resnet32", 100)
        dataset, ref_dataset = config["datasets"][bench["dataset"]], config["datasets"][ref["dataset"]]
        assert dataset["format"] == ref_dataset["format"] and "validation_per_class" not in ref_dataset
        assert dataset["validation_per_class"] > 0 and dataset["validation_from_subset"] is True


@pytest.mark.parametrize("selected", [[], ["novel_smoothed_inverse_s25"]], ids=["baselines-only", "with-selection"])
def test_final_stage_trains_fresh_seeds_on_every_benchmark(selected):
    """Without the selection on the command line only the baselines run: no candidate meets the held-out benchmark."""
    extra = ["--config", "matrix={strategies: [" + ", ".join(BASELINES + selected) + "]}"] if selected else []
    planned = planned_trainings("--configfile", DEVELOPMENT, FINAL, *extra)
    assert planned == matrix(FINAL_BENCHMARKS, BASELINES + selected, [3, 4, 5])
    assert len(planned) == (54 if selected else 45)


def quoted(path: str) -> str:
    """How docs/novel-strategy.md quotes a published file: its text without its title line, its sections
    ('## ') one level below the report's ('#### ')."""
    lines = (REPO / path).read_text().strip().splitlines()
    body = lines[1:] if lines[0].startswith("# ") else lines
    return "\n".join("#### " + line[3:] if line.startswith("## ") else line for line in body).strip()


def test_the_pilot_report_quotes_the_published_files():
    """The report's tables (blocks ``<!-- quote: PATH -->``) are the files the results tooling wrote from the
    committed runs, word for word."""
    text = (REPO / "docs/novel-strategy.md").read_text()
    blocks = re.findall(r"<!-- quote: (\S+) -->\n(.*?)<!-- /quote -->", text, re.S)
    assert [path for path, _ in blocks] == [
        "docs/results/pilot-cpu/selection.md",
        "docs/results/pilot-cpu-final/comparison-novel_ess_power_k75.md",
    ]
    for path, shown in blocks:
        assert shown.strip() == quoted(path), path


PILOT_REPORTS = {  # published file: the results.py arguments that wrote it from the runs beside it
    "docs/results/pilot-cpu/selection.md":
        [*PILOT, "select", "--candidates", *CANDIDATES],
    "docs/results/pilot-cpu-final/comparison-novel_ess_power_k75.md":
        [*PILOT, "--config", "configs/pilot-cpu-final.yaml", "compare", "--strategy", "novel_ess_power_k75"],
}


@pytest.mark.parametrize("path", PILOT_REPORTS)
def test_the_pilot_reports_are_remade_from_the_committed_runs(path, tmp_path):
    """Each report the pilot quotes is what ``results.py`` writes, byte for byte, from the committed runs beside it
    (so a run edited by hand, or a change to the selection or comparison code, shows here)."""
    published = REPO / path
    shutil.copytree(published.parent / "runs", tmp_path / "runs")
    proc = subprocess.run([sys.executable, "scripts/results.py", *PILOT_REPORTS[path], "--docs", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / published.name).read_text() == published.read_text()
