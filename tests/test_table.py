"""The results table: one tidy CSV row per run, the summaries over seeds, the paired differences to the
reference, the markdown and the booktabs LaTeX, from hand-made metrics records."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from ltbench.reporting import table
from ltbench.io import read_json, write_json
from ltbench.evaluation.metrics import PRIOR_METRICS, seal
from ltbench.reporting.table_text import latex_table, markdown_report
from make_table import make_table

BENCHES = ["resnet32-cifar10lt", "vgg16bn-folder"]
STRATEGIES = ["ce", "inverse_freq", "la_posthoc", "wb_stage1", "weight_balancing"]
TYPES = {"ce": "static reweighting", "inverse_freq": "static reweighting", "la_posthoc": "logit adjustment",
         "wb_stage1": "two-stage", "weight_balancing": "two-stage"}
UPSTREAM = {"la_posthoc": ("posthoc", "ce"), "weight_balancing": ("stage2", "wb_stage1")}
# best all-class accuracy per seed 0, 1, 2
ACC = {"ce": [70.0, 71.0, 72.0], "inverse_freq": [72.0, 73.0, 74.0], "la_posthoc": [71.0, 73.0, 72.0],
       "wb_stage1": [60.0, 61.0, 62.0], "weight_balancing": [75.0, 76.0, 12.0]}


def epoch_record(which: str, acc: float, seed: int) -> dict:
    """The ``epoch_metrics`` of a record's epoch ``which``: the class-balanced accuracy ``acc``, ECE 10 + seed,
    NLL 1 + seed / 10, confidence acc + 5, worst class 'c<seed % 2>' at acc - 30, gap 40, and the test priors
    acc - 5 (forward 10), acc (forward 50), acc - 10 (backward 10), acc - 20 (backward 50)."""
    metrics = {"balanced_acc": acc, "ece": 10.0 + seed, "nll": 1.0 + seed / 10, "confidence": acc + 5,
               "worst_class_acc": acc - 30, "worst_class": f"c{seed % 2}", "head_tail_gap": 40.0,
               **dict(zip(PRIOR_METRICS, (acc - 5, acc, acc - 10, acc - 20)))}
    return {f"{which}_{name}": value for name, value in metrics.items()}


def record(bench: str, strategy: str, seed: int, acc: float) -> dict:
    """A metrics record as ltbench.evaluation.metrics.extract writes it (the fields the table reads)."""
    classes, test = (10, 1000) if bench.startswith("resnet32") else (5, 500)
    stage, builds_on = UPSTREAM.get(strategy, ("train", None))
    return {
        **epoch_record("best", acc, seed), **epoch_record("last", acc - 1.0, seed),
        "test_balanced": True, "gap_groups": ["many", "few"],
        "benchmark": bench, "arch": bench.split("-")[0], "dataset": bench.split("-")[1][:-2], "imbalance_ratio": 100.0,
        "strategy": strategy, "type": TYPES[strategy], "stage": stage, "builds_on": builds_on, "seed": seed,
        "num_classes": classes, "test_images": test,
        "shot_classes": {"many": 4, "medium": 3, "few": 3} if classes == 10 else {"many": 2, "medium": 2, "few": 1},
        "best_test_acc": acc, "best_epoch": 3, "final_test_acc": acc - 1.0, "epochs": 4,
        "best_correct": round(acc * test / 100),
        "best_shot_acc": {"many": acc + 10, "medium": acc, "few": None if strategy == "wb_stage1" else acc - 20},
        "best_per_class_acc": [acc + c for c in range(classes)],
        "provenance": {"device_name": "cpu", "train_seconds": 1.5, "commit": "abc123"},
        "class_counts": [100] * classes, "strategy_params": PARAMS.get(strategy, {}),
    }


PARAMS = {"wb_stage1": {"weight_decay": 0.005}, "la_posthoc": {"base": "ce", "tau": 1.0}}


def write_run(folder, metrics: dict, epoch_images: int | None = None) -> str:
    """A run folder as the workflow leaves it: the sealed metrics.json and a history.json whose epochs each
    visit ``epoch_images`` training images (default: one pass, the sum of the class counts); returns the
    metrics' path."""
    folder.mkdir(parents=True, exist_ok=True)
    images = epoch_images or sum(metrics["class_counts"])
    write_json(folder / "history.json", {"epochs": [{"train_images": images}] * metrics["epochs"]})
    write_json(folder / "metrics.json", seal(metrics, {}))
    return str(folder / "metrics.json")


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return table.runs_frame(record(b, s, seed, ACC[s][seed]) for b in BENCHES for s in STRATEGIES for seed in range(3))


@pytest.fixture(scope="module")
def tables(runs) -> table.Tables:
    return table.tables(runs, BENCHES, STRATEGIES, "ce")


def test_runs_frame_is_tidy_one_row_per_run(runs):
    assert len(runs) == 2 * 5 * 3
    assert list(runs.columns) == table.RUN_COLUMNS + [f"class_acc_{c}" for c in range(10)]
    ce0 = runs[(runs.benchmark == "resnet32-cifar10lt") & (runs.strategy == "ce") & (runs.seed == 0)].iloc[0]
    assert (ce0.arch, ce0.dataset, ce0.imbalance_ratio, ce0.num_classes, ce0.test_images) == (
        "resnet32", "cifar10", 100.0, 10, 1000)
    assert (ce0.many_classes, ce0.medium_classes, ce0.few_classes) == (4, 3, 3)
    assert (ce0.best_test_acc_lo, ce0.best_test_acc_hi) == pytest.approx((67.09, 72.76), abs=0.01)  # Wilson 700/1000
    assert ce0.class_acc_9 == 79.0
    small = runs[runs.benchmark == "vgg16bn-folder"]
    assert small["class_acc_4"].notna().all() and small["class_acc_5"].isna().all()
    wb = runs[runs.strategy == "weight_balancing"].set_index(["benchmark", "seed"])
    assert wb["collapsed"].to_dict() == {(b, s): s == 2 for b in BENCHES for s in range(3)}
    assert set(wb["builds_on"]) == {"wb_stage1"} and set(wb["stage"]) == {"stage2"}


def test_csv_round_trip(tmp_path, runs):
    path = tmp_path / "table.csv"
    runs.to_csv(path, index=False)
    back = pd.read_csv(path)
    assert back.shape == runs.shape
    assert back.filter(regex=r"^class_acc_").shape[1] == 10


def test_cell_summaries(tables):
    cell = tables.cells.loc[("resnet32-cifar10lt", "ce", "all")]
    half = 4.3027 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert (cell["mean"], cell["std"], cell["n"]) == (71.0, 1.0, 3)
    assert (cell["lo"], cell["hi"]) == pytest.approx((71 - half, 71 + half), abs=1e-4)
    assert cell["seeds"] == {0: 70.0, 1: 71.0, 2: 72.0}
    assert tables.cells.loc[("resnet32-cifar10lt", "wb_stage1", "few"), "n"] == 0  # an empty shot group
    assert tables.cells.loc[("resnet32-cifar10lt", "weight_balancing", "all"), "collapsed"] == 1


def test_best_per_column(tables):
    best = tables.cells[tables.cells["best"]].reset_index()
    assert set(best.loc[best.group == "all", "strategy"]) == {"inverse_freq"}  # 73.0
    assert set(best.loc[best.group == "many", "strategy"]) == {"inverse_freq"}
    assert not tables.cells.loc[(slice(None), "wb_stage1", "few"), "best"].any()


def test_paired_differences_to_the_reference(tables):
    diff = tables.differences.loc[("resnet32-cifar10lt", "inverse_freq")]
    assert (diff["mean"], diff["std"], diff["n"]) == (2.0, 0.0, 3)  # d = 2, 2, 2 by seed
    assert diff["distinguishable"]
    la = tables.differences.loc[("resnet32-cifar10lt", "la_posthoc")]  # d = 1, 2, 0: 1 +- 2.48
    assert la["mean"] == 1.0 and not la["distinguishable"]
    assert ("resnet32-cifar10lt", "ce") not in tables.differences.index


def test_mean_ranks(tables):
    # per benchmark by mean all-class accuracy: inverse_freq 73, la_posthoc 72, ce 71, wb_stage1 61, wb 54.3
    assert tables.ranks.to_dict() == {"ce": 3.0, "inverse_freq": 1.0, "la_posthoc": 2.0, "wb_stage1": 4.0,
                                      "weight_balancing": 5.0}


def sections(md: str) -> dict[str, list[str]]:
    """The lines of each '## ' section of table.md by heading."""
    return {part.split("\n", 1)[0]: part.splitlines()[1:] for part in md.split("\n## ")[1:]}


def test_markdown(tables):
    md = sections(markdown_report(tables))
    assert list(md) == ["Benchmarks", "Best-epoch test accuracy (%)",
                        "95% confidence intervals of the means (t over seeds)", "Calibration and robustness at the best epoch",
                        "95% confidence intervals of calibration and robustness (t over seeds)", "Runs"]
    header, _, *lines = [line for line in md["Best-epoch test accuracy (%)"] if line.startswith("|")]
    assert "| resnet32-cifar10lt many (4 cl.) | resnet32-cifar10lt medium (3 cl.) | resnet32-cifar10lt few (3 cl.) |" \
           " resnet32-cifar10lt all (10 cl.) | resnet32-cifar10lt Δ vs ce |" in header
    assert header.endswith("| vgg16bn-folder all (5 cl.) | vgg16bn-folder Δ vs ce | mean rank |")
    rows = {line.split(" | ")[0][2:]: line for line in lines}
    assert list(rows) == ["ce (baseline)", "inverse_freq", "la_posthoc", "wb_stage1", "weight_balancing"]
    assert rows["ce (baseline)"].startswith("| ce (baseline) | static reweighting | – | 81.00 ± 1.00 (n=3) |")
    assert "| baseline |" in rows["ce (baseline)"] and rows["ce (baseline)"].endswith("| 3.00 |")
    assert "| **73.00 ± 1.00 (n=3)** | +2.00 [+2.00, +2.00] (n=3) |" in rows["inverse_freq"]
    assert "| logit adjustment | post hoc on ce |" in rows["la_posthoc"]
    assert "| +1.00 [-1.48, +3.48] (n=3) ≈ |" in rows["la_posthoc"]
    assert "| two-stage | stage 2 of wb_stage1 |" in rows["weight_balancing"]
    assert "| 54.33 ± 36.67 (n=3, 1 collapsed) |" in rows["weight_balancing"]  # s of 75, 76, 12
    assert "| 61.00 ± 1.00 (n=3) | – | 61.00 ± 1.00 (n=3) |" in rows["wb_stage1"]  # no few-shot value
    ci = "\n".join(md["95% confidence intervals of the means (t over seeds)"])
    assert "| ce (baseline) | [78.52, 83.48] | [68.52, 73.48] | [48.52, 53.48] | [68.52, 73.48] |" in ci
    runs = "\n".join(md["Runs"])
    assert "| resnet32-cifar10lt | weight_balancing | 2 | 12.00 [10.13, 14.16] | 12.00 | 22.00 | 12.00 | -8.00 | 11.00 |" \
           " 3 | collapsed (< 1.5 × chance = 15.00) |" in runs
    assert "| 1000 | yes | 4 | 3 | 3 |" in "\n".join(md["Benchmarks"])
    robust = [line for line in md["Calibration and robustness at the best epoch"] if line.startswith("|")]
    assert "| resnet32-cifar10lt ECE (%) | resnet32-cifar10lt NLL | resnet32-cifar10lt confidence (%) |" in robust[0]
    assert "| resnet32-cifar10lt gap many−few | resnet32-cifar10lt forward 10 |" in robust[0]
    ce = next(line for line in robust if line.startswith("| ce (baseline)"))
    # ECE 10, 11, 12; NLL 1.0, 1.1, 1.2; worst class c0 in seeds 0 and 2; forward 10: acc - 5
    assert ce.startswith("| ce (baseline) | **11.00 ± 1.00 (n=3)** | **1.100 ± 0.100 (n=3)** | 76.00 ± 1.00 (n=3) |"
                         " 41.00 ± 1.00 (n=3, c0 in 2/3 seeds) | 40.00 ± 0.00 (n=3) | 66.00 ± 1.00 (n=3) |")


def test_latex_is_booktabs_with_one_cell_per_column(tables):
    tex, robust = latex_table(tables).split(r"\label{tab:calibration-robustness}")
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 1 and r"\begin{tabular}{lrrrrrrrrr}" in tex
    body = tex.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
    data = [line for line in body.splitlines() if line.endswith(r"\\") and r"\multicolumn" not in line]
    assert len(data) == 5 and all(line.count(" & ") == 9 for line in data)
    assert r"\multicolumn{4}{c}{ResNet-32, CIFAR-10-LT ($\rho=100$, 4 epochs)}" in tex
    assert "weight\\_balancing (stage 2 of wb\\_stage1) &" in tex and "ce (baseline) &" in tex
    assert r"$\mathbf{73.0 \pm 1.0}$" in tex and r"$54.3 \pm 36.7^\dagger$" in tex
    assert r"\textit{logit adjustment}" in tex and "\u2013" not in tex  # no unicode dash in LaTeX
    assert "std over 3 seeds." in tex
    assert r"\begin{tabular}{lrrrrrrrrrrrr}" in robust and "Strategy & ECE & NLL & Worst & Gap & Fwd 50 & Bwd 50 & ECE" in robust
    assert r"ce (baseline) & $\mathbf{11.0 \pm 1.0}$ & $\mathbf{1.10 \pm 0.10}$ & $41.0 \pm 1.0$ &" in robust

def test_reference_without_runs_gives_no_difference_column(runs):
    t = table.tables(runs, BENCHES, ["inverse_freq", "la_posthoc"], "ce")  # ce not in the matrix
    assert t.differences.empty
    md = markdown_report(t)
    assert "Δ" not in md.split("## Benchmarks")[1] and "has no runs in this table" in md
    assert t.ranks.to_dict() == {"inverse_freq": 1.0, "la_posthoc": 2.0}  # ranked among the matrix only
    assert r"\bottomrule" in latex_table(t)


def test_make_table_writes_csv_markdown_and_latex(tmp_path):
    paths = [write_run(tmp_path / s / f"seed{seed}", record("resnet32-cifar10lt", s, seed, ACC[s][seed]))
             for s in ("ce", "inverse_freq") for seed in range(2)]
    out = {ext: tmp_path / f"table.{ext}" for ext in ("csv", "md", "tex")}
    make_table(paths, str(out["csv"]), str(out["md"]), str(out["tex"]), ["resnet32-cifar10lt"], ["ce", "inverse_freq"],
               "ce")
    assert len(pd.read_csv(out["csv"])) == 4
    assert re.search(r"\| inverse_freq \| .* \| \+2\.00 \[\+2\.00, \+2\.00\] \(n=2\) \|", out["md"].read_text())
    assert out["tex"].read_text().startswith("% Made by rule table")


def test_a_row_whose_epochs_are_not_one_pass_is_marked_and_every_row_names_its_parameters(tmp_path):
    """Oversampling's epochs hold several passes' steps: the table says so in the row and the legend."""
    paths = [write_run(tmp_path / s / f"seed{seed}", record("resnet32-cifar10lt", s, seed, ACC[s][seed]),
                       epoch_images={"inverse_freq": 4000, "wb_stage1": 1030}.get(s))
             for s in ("ce", "inverse_freq", "wb_stage1") for seed in range(2)]
    out = {ext: tmp_path / f"table.{ext}" for ext in ("csv", "md", "tex")}
    make_table(paths, str(out["csv"]), str(out["md"]), str(out["tex"]), ["resnet32-cifar10lt"],
               ["ce", "inverse_freq", "wb_stage1"], "ce")
    md, tex = out["md"].read_text(), out["tex"].read_text()
    assert "| inverse_freq‡ |" in md and "| ce (baseline) |" in md and "| wb_stage1 |" in md  # 1.03 passes: within
    assert "‡ Its epochs visit another number of training images than one pass" in md
    assert "(inverse_freq: 4.00× on resnet32-cifar10lt)" in md
    assert "Parameters of the rows (as configured; the others' defaults are in their strategy files): wb_stage1:" \
           " weight_decay 0.005." in md
    assert r"inverse\_freq$^\ddagger$" in tex and r"$^\ddagger$: epochs of another number" in tex
    assert pd.read_csv(out["csv"]).groupby("strategy")["epoch_images"].first().to_dict() == {
        "ce": 1000, "inverse_freq": 4000, "wb_stage1": 1030}


def test_parameters_read_as_words():
    assert table.parameters({}) == ""
    assert table.parameters({"beta": 0.9999, "defer_epoch": None, "form": "sigmoid"}) == "beta 0.9999, form sigmoid"
    assert table.parameters({"reduction": "batch_mean", "recipe": {"warmup_epochs": 5, "weight_decay": 0.0002}}) == \
        "reduction batch_mean, recipe warmup_epochs 5, recipe weight_decay 0.0002"


def test_latex_caption_counts_seeds(runs):
    one = table.tables(runs[runs.seed == 0], BENCHES, STRATEGIES, "ce")
    assert "std over 1 seed." in latex_table(one)
    uneven = table.tables(runs[(runs.seed < 2) | (runs.strategy == "ce")], BENCHES, STRATEGIES, "ce")
    assert "std over 2--3 seeds." in latex_table(uneven)


def test_an_edited_or_damaged_metrics_record_never_reaches_the_table(tmp_path):
    path = tmp_path / "metrics.json"
    out = [str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex")]
    write_run(tmp_path, record("resnet32-cifar10lt", "ce", 0, 50.0))
    make_table([str(path)], *out, ["resnet32-cifar10lt"], ["ce"], "ce")  # sealed: accepted
    edited = read_json(path)
    edited["best_test_acc"] = 99.0
    write_json(path, edited)
    with pytest.raises(ValueError, match=rf"{path} does not match its checksum"):
        make_table([str(path)], *out, ["resnet32-cifar10lt"], ["ce"], "ce")
    path.write_text('{"best_test_acc": 5')
    with pytest.raises(ValueError, match=rf"{path} is not valid JSON"):
        make_table([str(path)], *out, ["resnet32-cifar10lt"], ["ce"], "ce")


def test_the_difference_names_its_pairs_where_seeds_are_unequal(runs):
    uneven = table.tables(runs[(runs.seed < 2) | (runs.strategy != "inverse_freq")], BENCHES, STRATEGIES, "ce")
    md = markdown_report(uneven)
    assert "| +2.00 [+2.00, +2.00] (n=2) |" in md  # inverse_freq has seeds 0, 1 only: 2 pairs with ce
    assert "| −" not in md


def test_mean_rank_only_over_benchmarks_every_strategy_has(runs):
    # la_posthoc has no run on vgg16bn-folder: rank over resnet32-cifar10lt alone, and say so
    partial = table.tables(runs[(runs.benchmark == BENCHES[0]) | (runs.strategy != "la_posthoc")], BENCHES,
                           STRATEGIES, "ce")
    assert partial.ranked == [BENCHES[0]]
    assert partial.ranks.to_dict() == {"ce": 3.0, "inverse_freq": 1.0, "la_posthoc": 2.0, "wb_stage1": 4.0,
                                       "weight_balancing": 5.0}
    assert "averaged over the 1 of 2 benchmarks on which every strategy has runs" in markdown_report(partial)
    assert "(left out: vgg16bn-folder)" in markdown_report(partial)
    assert "across the 1 benchmarks on which every strategy has runs" in latex_table(partial)


@pytest.mark.parametrize("x, digits, sign, text", [
    (60.775, 2, False, "60.78"), (0.35, 1, False, "0.4"), (53.05, 1, False, "53.1"), (2.675, 2, False, "2.68"),
    (-0.35, 1, True, "-0.4"), (-0.001, 2, True, "+0.00"), (0.125, 2, True, "+0.13"), (float("nan"), 2, False, "–")])
def test_numbers_round_half_away_from_zero_as_written(x, digits, sign, text):
    from ltbench.reporting.table_text import number

    assert number(x, digits, sign) == text


def test_an_unbalanced_test_set_heads_with_the_class_balanced_accuracy(runs):
    unbalanced = runs.assign(test_balanced=runs.benchmark != BENCHES[1],
                             best_test_acc=runs.best_test_acc.where(runs.benchmark != BENCHES[1], runs.best_test_acc + 5))
    t = table.tables(unbalanced, BENCHES, STRATEGIES, "ce")
    md = markdown_report(t)
    assert "| vgg16bn-folder all, class-balanced (5 cl.) |" in md and "| resnet32-cifar10lt all (10 cl.) |" in md
    assert "| 71.00 ± 1.00 (n=3, pooled 76.00) | baseline |" in md  # headline class-balanced, pooled beside it
    assert "| 500 | no |" in md
    tex = latex_table(t)
    assert r"$71.0 \pm 1.0$ (76.0)" in tex and "pooled accuracy over its images follows in parentheses" in tex


def test_a_ratio_grid_gets_its_cells_side_by_side_ratios_ascending():
    # grid r8 over ratios 100, 10, 50 (config order), strategy acc = base - ratio / 10; r50 lacks ce seed 2
    base = {"ce": 70.0, "inverse_freq": 75.0}
    records = [{**record(f"r8-r{ratio}", s, seed, base[s] + seed - ratio / 10), "imbalance_ratio": float(ratio)}
               for ratio in (100, 10, 50) for s in base for seed in range(3) if (ratio, s, seed) != (50, "ce", 2)]
    benches = ["r8-r100", "r8-r10", "r8-r50"]
    t = table.tables(table.runs_frame(records), benches, list(base), "ce", {"r8": benches, "single": ["r8-r10"]})
    assert t.ratio_grids == {"r8": ["r8-r10", "r8-r50", "r8-r100"]}  # one ratio is no sweep
    md = sections(markdown_report(t))
    assert list(md)[:3] == ["Benchmarks", "Best-epoch test accuracy (%)", "All-class accuracy against the imbalance ratio (%)"]
    lines = [line for line in md["All-class accuracy against the imbalance ratio (%)"] if line.startswith(("|", "#"))]
    assert lines == ["### r8", "| strategy | ratio 10 | ratio 50 | ratio 100 |", "| --- | ---: | ---: | ---: |",
                     "| ce (baseline) | 70.00 ± 1.00 (n=3) | 65.50 ± 0.71 (n=2) | 61.00 ± 1.00 (n=3) |",
                     "| inverse_freq | **75.00 ± 1.00 (n=3)** | **71.00 ± 1.00 (n=3)** | **66.00 ± 1.00 (n=3)** |"]
    assert "All-class accuracy against" not in markdown_report(table.tables(table.runs_frame(records), benches,
                                                                              list(base), "ce"))
