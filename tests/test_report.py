"""The report: every figure of the tiny end-to-end run is a real PNG, `snakemake --report` builds a
self-contained HTML page from them (titled by the actual datasets, runs in config order), the figures
redraw without retraining, and each figure draws what its caption says."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.image
import pytest

from conftest import Workflow, tiny_config
from ltbench.reporting import plots
from ltbench.config import format_ratio
from ltbench.io import read_json
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
    figures += [f"results/plots/benchmarks/{b}/{name}.png" for b in benchmarks for name in ("curves", "per_class", "shots", "robustness",
                                                                                         "differences")]
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
    assert "Long-tailed tiny10, folder reweighting benchmark" in html, "title should name the actual datasets"
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
    with _edited(tiny_run.root / "scripts/ltbench/reporting/plots.py", None, SEMANTIC):
        jobs = tiny_run.planned_jobs()
    assert {rule for rule, _ in jobs} == {"plot_run", "plot_benchmark", "plot_dataset", "all"}
    assert _runs(jobs, "plot_run") == {f"benchmark={b}, strategy={s}, seed={seed}" for b, s, seed in tiny_runs()}
    assert tiny_run.planned_jobs() == set(), "restoring the content should leave nothing to do"


def test_report_lists_runs_in_config_order(tiny_run: Workflow, report: Path):
    html = report.read_text()
    for position, strategy in enumerate(tiny_config()["strategies"], start=1):
        assert f"{position}. {strategy}" in html, "a run's strategy label should lead with its config position"


# ---------------------------------------------------------------- what each figure draws

STYLE = plots.Style("#0072B2", "-", None)


def texts_inside(ax) -> bool:
    """Whether every text drawn in data coordinates lies within the axes' y range."""
    lo, hi = ax.get_ylim()
    return all(lo <= t.get_position()[1] <= hi for t in ax.texts if t.get_transform() == ax.transData)


def tiny_histories(tiny_run: Workflow, benchmark: str) -> list[dict]:
    return [read_json(tiny_run.root / f"results/runs/{b}/{s}/seed{seed}/history.json")
            for b, s, seed in tiny_runs() if b == benchmark]


def test_benchmark_curves_overlay_trained_strategies_and_mark_stage_two(tiny_run: Workflow):
    config = tiny_config()
    strategies = list(config["strategies"])
    curves, defer_epochs, left_out = plots.training_curves(tiny_histories(tiny_run, "resnet32-tiny10"), strategies)
    assert list(curves) == ["ce", "effective_number", "weight_balancing"], "post-hoc has no curves of its own"
    assert left_out == ["la_posthoc: post-hoc on ce"]
    epochs = config["recipe"]["epochs"]
    assert [e["epoch"] for e in curves["weight_balancing"][0]] == [epochs + 1], "stage 2 follows its stage 1"
    assert defer_epochs["weight_balancing"] == (epochs, f"stage 2 from epoch {epochs + 1}")
    fig = plots.benchmark_curves_figure(curves, defer_epochs, plots.strategy_styles(strategies), 10, "b", left_out)
    acc_ax, loss_ax = fig.axes
    assert acc_ax.get_ylim() == (0, 100) and acc_ax.get_legend() is None and loss_ax.get_legend() is not None


def test_defer_epoch_is_read_from_the_method():
    assert plots.defer_epoch({"method": {"defer_epoch": 160}}) == 160
    assert plots.defer_epoch({"epochs": []}) == 0, "a post-hoc history has no method"


def test_run_curves_fix_the_accuracy_axis_and_show_chance_and_learning_rate():
    epochs = [{"epoch": e, "lr": 0.1 / e, "train_loss": 2.0 / e, "test_acc": 20.0 + e} for e in range(1, 13)]
    fig = plots.learning_curves_figure(epochs, 12, 32.0, "b / drw / seed 0", STYLE, num_classes=10, defer_epoch=8)
    acc_ax, loss_ax, lr_ax = fig.axes
    assert acc_ax.get_ylim() == (0, 100)
    assert any(list(line.get_ydata()) == [10.0, 10.0] for line in acc_ax.lines), "chance line at 100 / classes"
    assert list(lr_ax.lines[0].get_ydata()) == [e["lr"] for e in epochs]
    assert all(ax.get_legend() is None for ax in fig.axes), "no legend over the data"
    assert all(any(list(line.get_xdata()) == [8.5, 8.5] for line in ax.lines) for ax in fig.axes), "defer epoch marked"


def test_per_class_figure_shows_bands_and_the_difference_to_the_reference():
    counts = [100, 50, 20, 10, 5]
    runs = {"ce": [[90, 80, 50, 20, 10], [88, 78, 52, 22, 6]], "drw": [[85, 75, 55, 40, 30], [83, 77, 57, 38, 26]]}
    styles = plots.strategy_styles(["ce", "drw"])
    acc_ax, diff_ax = plots.per_class_figure(runs, counts, styles, "b", reference="ce").axes
    assert acc_ax.collections and acc_ax.get_ylim() == (0, 100), "bands over seeds in a 0-100 axis"
    (drw,) = [line for line in diff_ax.lines if len(line.get_xdata()) == len(counts)]
    assert list(drw.get_ydata()) == pytest.approx([-5, -3, 5, 18, 20]), "drw - ce, by class size"
    labels = [t.get_text() for t in diff_ax.get_xticklabels()]
    assert labels[0] == "5\n(tail)" and labels[-1] == "100\n(head)", "ticks at the tail and head class sizes"
    assert len(plots.per_class_figure(runs, counts, styles, "b", reference="other").axes) == 1


def test_shot_bars_keep_points_and_labels_inside_0_100():
    counts = [200, 150, 50, 5]  # 2 many, 1 medium, 1 few
    runs = {"ce": [{"many": 100.0, "medium": 40.0, "few": 0.0}, {"many": 96.0, "medium": 50.0, "few": 10.0}]}
    ax = plots.shot_figure(runs, counts, plots.strategy_styles(["ce"]), "b").axes[0]
    assert ax.get_ylim() == (0, 100) and not ax.containers[1:], "no error bars that could leave 0-100"
    assert [list(c.get_offsets()[:, 1]) for c in ax.collections] == [[100, 40, 0], [96, 50, 10]], "seed points"
    assert texts_inside(ax)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[1].endswith("\n1 class") and ticks[0].endswith("\n2 classes")


def test_difference_figure_draws_the_paired_means_intervals_and_seeds():
    def run(strategy, seed, acc):
        return {"strategy": strategy, "seed": seed, "best_balanced_acc": acc}

    runs = {"ce": [run("ce", s, a) for s, a in enumerate([50.0, 52.0, 54.0])],
            "iw": [run("iw", s, a) for s, a in enumerate([45.0, 48.0, 48.0])],  # d = -5, -4, -6
            "bs": [run("bs", 1, 60.0)]}  # one paired seed: a mean, no interval
    fig = plots.difference_figure(runs, "ce", plots.strategy_styles(list(runs)), "bench")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("iw  -5.00 [") and labels[0].endswith("(n=3)") and labels[1] == "bs  +8.00 (n=1)"
    diamonds = [line for line in ax.lines if line.get_marker() == "D"]
    assert [float(d.get_xdata()[0]) for d in diamonds] == [-5.0, 8.0]
    seeds = sorted(x for c in ax.collections for x, _ in c.get_offsets())
    assert seeds == [-6.0, -5.0, -4.0, 8.0]
    lone = plots.difference_figure({"iw": runs["iw"]}, "ce", plots.strategy_styles(["iw"]), "bench")
    assert "no runs of ce to compare with" in [t.get_text() for t in lone.axes[0].texts]


def test_plural():
    assert [plots.plural(n, "class") for n in (0, 1, 2)] == ["no classes", "1 class", "2 classes"]
    assert plots.plural(1, "seed") == "1 seed"


def test_table_html_renders_bold_and_code_marks():
    from ltbench.reporting.table_text import table_html

    page = table_html("# T\n\nBest of `ce` in **bold**.\n\n| a | b |\n| --- | ---: |\n| **1.00** | 2 <3 |\n", "t")
    assert "<strong>1.00</strong>" in page and "<code>ce</code>" in page and "2 &lt;3" in page
    assert "**" not in page


def calibrated_run():
    """A run's best-epoch per-class accuracies and reliability (two confident bins), ECE 5%."""
    reliability = {"count": [0] * 13 + [2, 2], "accuracy": [None] * 13 + [50.0, 100.0],
                   "confidence": [None] * 13 + [90.0, 97.0]}
    return {"best_per_class_acc": [90.0, 50.0, 0.0], "best_reliability": reliability, "best_ece": 5.0}


def test_robustness_figure_draws_test_priors_and_reliability():
    from ltbench.evaluation import priors

    run = calibrated_run()
    diverged = {"best_per_class_acc": [100.0, 0.0, 0.0], "best_reliability": None, "best_ece": None}
    styles = plots.strategy_styles(["ce", "wb"])
    fig = plots.robustness_figure({"ce": [run, run], "wb": [diverged]}, [500, 50, 10], styles, "b")
    prior_ax, rel_ax = fig.axes[:2]
    assert [t.get_text() for t in prior_ax.get_xticklabels()] == [plots.prior_label(r) for r in priors.SWEEP]
    ce_line = next(line for line in prior_ax.get_lines() if len(line.get_xdata()) == len(priors.SWEEP))
    assert ce_line.get_ydata()[list(priors.SWEEP).index(1)] == pytest.approx(140 / 3)  # uniform: balanced accuracy
    assert ce_line.get_ydata()[-1] > ce_line.get_ydata()[0]  # the head-heavy forward prior favours this run
    labels = [t.get_text() for t in rel_ax.get_legend().get_texts()]
    assert labels == ["ce (2 seeds)\n  ECE 5.0%", "wb (1 seed)\n  no finite logits"]


def test_robustness_figure_keeps_its_axes_tall_with_every_strategy():
    """21 two-line legend entries (config.yaml's strategies) once squeezed the axes to a sliver."""
    run = calibrated_run()
    names = [f"strategy_{i}" for i in range(21)]
    fig = plots.robustness_figure({name: [run] for name in names}, [500, 50, 10], plots.strategy_styles(names), "b")
    fig.canvas.draw()
    legend = fig.axes[1].get_legend().get_window_extent()
    assert all(ax.get_position().height > 0.5 for ax in fig.axes[:2])
    assert legend.y0 >= 0 and legend.y1 <= fig.bbox.height  # the whole legend on the figure
