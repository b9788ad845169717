"""The report: every figure of the tiny end-to-end run is a real PNG, `snakemake --report` builds a
self-contained HTML page from them, and the figures redraw without retraining."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.image
import pytest

from conftest import Workflow, tiny_config
from ltbench.config import format_ratio
from test_pipeline import SEMANTIC, _edited, _runs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_runs() -> list[tuple[str, str, int]]:
    """(benchmark, strategy, seed) of every run of the tiny config's matrix."""
    config = tiny_config()
    matrix = config.get("matrix", {})
    benchmarks = matrix.get("benchmarks", list(config["benchmarks"]))
    strategies = matrix.get("strategies", list(config["strategies"]))
    return [(b, s, seed) for b in benchmarks for s in strategies for seed in config["seeds"]]


def expected_figures() -> list[str]:
    """Every figure the tiny config should produce, relative to the workflow root."""
    config = tiny_config()
    benchmarks = sorted({b for b, _, _ in tiny_runs()})
    figures = [f"results/plots/runs/{b}/{s}/seed{seed}/{name}.png"
               for b, s, seed in tiny_runs() for name in ("curves", "confusion")]
    figures += [f"results/plots/benchmarks/{b}/{name}.png" for b in benchmarks for name in ("per_class", "shots")]
    subsets = {(config["benchmarks"][b]["dataset"], config["benchmarks"][b]["imbalance_ratio"]) for b in benchmarks}
    figures += sorted(f"results/plots/data/{dataset}-lt{format_ratio(ratio)}.png" for dataset, ratio in subsets)
    return figures


@pytest.fixture(scope="module")
def report(tiny_run: Workflow) -> Path:
    """The report of the finished tiny run."""
    tiny_run.snakemake("--report", "results/report.html")
    return tiny_run.root / "results/report.html"


@pytest.mark.parametrize("figure", expected_figures())
def test_figure_is_a_valid_png(tiny_run: Workflow, figure: str):
    path = tiny_run.root / figure
    assert path.is_file(), f"{figure} was not made"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > len(PNG_SIGNATURE)
    height, width, _ = matplotlib.image.imread(path).shape
    assert height > 200 and width > 200


def test_report_holds_every_figure_and_the_table(tiny_run: Workflow, report: Path):
    html = report.read_text()
    assert len(html) > 100_000, "the figures should be embedded in the report"
    assert "Long-tailed CIFAR reweighting benchmark" in html, "workflow description (report/workflow.rst) missing"
    for name in {Path(f).name for f in expected_figures()} | {"table.html"}:
        assert name in html, f"{name} missing from the report"
    assert "Confusion matrix of run" in html, "captions (report/*.rst) missing"


def test_table_html_shows_the_numbers_of_table_md(tiny_run: Workflow):
    md = (tiny_run.root / "results/table.md").read_text()
    page = (tiny_run.root / "results/table.html").read_text()
    cells = re.findall(r"\d+\.\d\d(?: ± \d+\.\d\d)? \(n=\d+\)", md)
    assert cells, "table.md has no numbers"
    assert re.findall(r"\d+\.\d\d(?: ± \d+\.\d\d)? \(n=\d+\)", page) == cells


def test_plot_code_change_redraws_without_training(tiny_run: Workflow):
    assert tiny_run.planned_jobs() == set(), "the finished run should be up to date"
    with _edited(tiny_run.root / "scripts/ltbench/plots.py", None, SEMANTIC):
        jobs = tiny_run.planned_jobs()
    assert {rule for rule, _ in jobs} == {"plot_run", "plot_benchmark", "plot_dataset", "table_html", "all"}
    assert _runs(jobs, "plot_run") == {f"benchmark={b}, strategy={s}, seed={seed}" for b, s, seed in tiny_runs()}
    assert tiny_run.planned_jobs() == set(), "restoring the content should leave nothing to do"
