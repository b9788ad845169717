"""Render the results table (``ltbench.reporting.table.Tables``) as markdown (results/table.md), as a booktabs
LaTeX table of the main results (results/table.tex), and the markdown as the report's HTML page
(results/table.html)."""

from __future__ import annotations

import html
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable

import pandas as pd

from ltbench.evaluation import stats
from ltbench.config import format_ratio
from ltbench.evaluation.shots import FEW_BELOW, MANY_ABOVE
from ltbench.evaluation.metrics import REPORTED
from ltbench.reporting.table import GROUPS, ROBUSTNESS, SHOTS, Tables

DASH = "–"
APPROX = "≈"  # marks a difference to the reference that is not distinguishable from zero
ARCH_NAMES = {"vgg16bn": "VGG-16-BN"}  # and resnet<depth> -> ResNet-<depth> (arch_name)


def arch_name(arch: str) -> str:
    """An architecture as papers write it: ``resnet32`` -> ResNet-32, ``vgg16bn`` -> VGG-16-BN, else as configured."""
    depth = re.fullmatch(r"resnet(\d+)", arch)
    return f"ResNet-{depth[1]}" if depth else ARCH_NAMES.get(arch, arch)


DATASET_NAMES = {"cifar10": "CIFAR-10-LT", "cifar100": "CIFAR-100-LT"}
STAGE_NAMES = {"posthoc": "post hoc on", "stage2": "stage 2 of"}


# The second table's columns (ltbench.evaluation.metrics.REPORTED): their markdown labels, the LaTeX table's (a
# subset, so that it prints), and those shown with more decimals than the percentages.
ROBUSTNESS_LABELS = {f"best_{name}": metric.label for name, metric in REPORTED.items()}
LATEX_ROBUSTNESS = {f"best_{name}": metric.latex for name, metric in REPORTED.items() if metric.latex}
MORE_DIGITS = {f"best_{name}": metric.extra_digits for name, metric in REPORTED.items() if metric.extra_digits}


def number(x: float, digits: int = 2, sign: bool = False) -> str:
    """``x`` with ``digits`` decimals, halves rounded away from zero as written (60.775 -> 60.78, 0.35 -> 0.4,
    whatever their binary float), the same in every format; a leading + or − with ``sign``; a dash for nan."""
    if x is None or math.isnan(x):
        return DASH
    rounded = Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    rounded = abs(rounded) if rounded == 0 else rounded  # no "-0.00"
    return f"{rounded:+.{digits}f}" if sign else f"{rounded:.{digits}f}"


def listing(names: list[str], limit: int = 6) -> str:
    """The first ``limit`` names joined by commas, then 'and k more' for the rest."""
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def mean_std(cell: pd.Series, digits: int = 2, note: str = "") -> str:
    """'mean ± std (n=k)' (sample std over seeds), ', note' added inside the parentheses; one seed:
    'mean (n=1)'; none: a dash."""
    if cell["n"] == 0:
        return DASH
    spread = f" ± {number(cell['std'], digits)}" if cell["n"] > 1 else ""
    return f"{number(cell['mean'], digits)}{spread} (n={int(cell['n'])}{note})"


def interval(lo: float, hi: float, digits: int = 2, sign: bool = False) -> str:
    """'[lo, hi]', or a dash where undefined."""
    if math.isnan(lo):
        return DASH
    return f"[{number(lo, digits, sign)}, {number(hi, digits, sign)}]"


def difference(diff: pd.Series) -> str:
    """'+mean [lo, hi] (n=k)' of a paired difference over its k paired seeds (no interval for one seed),
    then '≈' unless its interval excludes 0."""
    text = number(diff["mean"], sign=True)
    text += f" {interval(diff['lo'], diff['hi'], sign=True)}" if diff["n"] > 1 else ""
    text += f" (n={int(diff['n'])})"
    return text if diff["distinguishable"] else f"{text} {APPROX}"


def builds_on(info: pd.Series) -> str:
    """'post hoc on ce', 'stage 2 of wb_stage1', or '' for a strategy trained from scratch."""
    return f"{STAGE_NAMES[info['stage']]} {info['builds_on']}" if info["stage"] in STAGE_NAMES else ""


LENGTH_MARK = "‡"  # a strategy whose epochs are not one pass over the training images (table.EPOCH_LENGTH_TOLERANCE)


def strategy_label(t: Tables, name: str) -> str:
    """The strategy's name; the reference strategy is labelled the baseline, and a strategy whose epochs
    visit more or fewer images than one pass is marked ``LENGTH_MARK``."""
    mark = LENGTH_MARK if t.strategies.loc[name, "epoch_length"] else ""
    return f"{name}{mark} (baseline)" if name == t.reference else name + mark


def markdown_table(header: list[str], rows: list[list[str]], left: int = 1, align: str = "") -> str:
    """A GitHub pipe table; the first ``left`` columns left-aligned, the others right-aligned, unless
    ``align`` gives one letter per column (l or r)."""
    align = align or "l" * left + "r" * (len(header) - left)
    aligns = [" --- " if a == "l" else " ---: " for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def group_label(t: Tables, bench: str, group: str) -> str:
    """'many (4 cl.)': a shot group with the number of classes it holds in ``bench``; 'all, class-balanced'
    where the benchmark's test set is not balanced."""
    info = t.benchmarks.loc[bench]
    classes = info["num_classes"] if group == "all" else info[f"{group}_classes"]
    name = "all, class-balanced" if group == "all" and not info["test_balanced"] else group
    return f"{name} ({classes} cl.)"


def pooled_mean(t: Tables, bench: str, strategy: str) -> float | None:
    """The mean over seeds of the accuracy over all test images (pooled), shown beside the class-balanced
    headline where the benchmark's test set is not balanced; None where it is."""
    if t.benchmarks.loc[bench, "test_balanced"]:
        return None
    return t.runs.loc[(t.runs["benchmark"] == bench) & (t.runs["strategy"] == strategy), "best_test_acc"].mean()


def pooled(t: Tables, bench: str, strategy: str) -> str:
    """', pooled 68.20' (``pooled_mean``), or '' on a balanced test set."""
    mean = pooled_mean(t, bench, strategy)
    return "" if mean is None else f", pooled {number(mean)}"


def group_header(t: Tables, bench: str, group: str) -> str:
    """'<benchmark> many (4 cl.)'."""
    return f"{bench} {group_label(t, bench, group)}"


def has_differences(t: Tables) -> bool:
    """Whether the table has a difference column (the reference strategy has runs)."""
    return not t.differences.empty


def cell(t: Tables, bench: str, strategy: str, group: str) -> pd.Series | None:
    """The summary of one cell, or None where the strategy has no runs on the benchmark."""
    key = (bench, strategy, group)
    return t.cells.loc[key] if key in t.cells.index else None


def group_cell(t: Tables, bench: str, strategy: str, group: str) -> str:
    """One accuracy cell of the main table (``markdown_cell``); the all-class cell also counts the collapsed runs
    and, on an unbalanced test set, gives the pooled accuracy."""
    summary = cell(t, bench, strategy, group)
    if group != "all":
        return markdown_cell(summary)
    collapsed = summary["collapsed"] if summary is not None else 0
    return markdown_cell(summary, (f", {collapsed} collapsed" if collapsed else "") + pooled(t, bench, strategy))


def main_row(t: Tables, strategy: str) -> list[str]:
    """Markdown cells of one strategy: type, builds on, per benchmark the groups (best bold, collapsed runs
    counted in 'all') and the difference to the reference, then the mean rank."""
    info = t.strategies.loc[strategy]
    row = [strategy_label(t, strategy), info["type"], builds_on(info) or DASH]
    for bench in t.benchmarks.index:
        row += [group_cell(t, bench, strategy, group) for group in GROUPS]
        if has_differences(t):
            diff = t.differences.loc[(bench, strategy)] if (bench, strategy) in t.differences.index else None
            row.append("baseline" if strategy == t.reference else DASH if diff is None else difference(diff))
    return row + [number(t.ranks.get(strategy, math.nan))]


def robustness_label(t: Tables, bench: str, column: str) -> str:
    """A second-table column's label: 'gap many−few' names the benchmark's head and tail groups."""
    label = ROBUSTNESS_LABELS[column]
    groups = t.benchmarks.loc[bench, "gap_groups"]
    return f"{label} {groups.replace('-', '−')}" if column == "best_head_tail_gap" and isinstance(groups, str) else label


def robustness_text(t: Tables, bench: str, strategy: str, column: str, render: Callable[..., str]) -> str:
    """One second-table cell rendered by ``render(summary, note, extra_digits)``, the worst class named in its
    note, with the extra decimals of ``MORE_DIGITS``."""
    key = (bench, strategy, column)
    summary = t.robustness.loc[key] if key in t.robustness.index else None
    note = f", {t.worst[(bench, strategy)]}" if column == "best_worst_class_acc" and summary is not None else ""
    return render(summary, note, MORE_DIGITS.get(column, 0))


def markdown_cell(summary: pd.Series | None, note: str = "", extra_digits: int = 0) -> str:
    """'mean ± std (n=k, note)' (2 + ``extra_digits`` decimals) in bold where best; a dash where empty."""
    if summary is None or summary["n"] == 0:
        return DASH
    text = mean_std(summary, 2 + extra_digits, note=note)
    return f"**{text}**" if summary["best"] else text


def robustness_row(t: Tables, strategy: str) -> list[str]:
    """Markdown cells of one strategy in the second table: per benchmark, every ``ROBUSTNESS`` metric."""
    return [strategy_label(t, strategy)] + [
        robustness_text(t, bench, strategy, column, markdown_cell) for bench in t.benchmarks.index for column in ROBUSTNESS]


def interval_row(t: Tables, strategy: str, cells: pd.DataFrame, groups) -> list[str]:
    """Markdown cells of one strategy: per benchmark and group of ``cells``, the 95% t-interval of the mean."""
    row = [strategy_label(t, strategy)]
    for bench in t.benchmarks.index:
        for group in groups:
            key = (bench, strategy, group)
            row.append(interval(cells.loc[key, "lo"], cells.loc[key, "hi"]) if key in cells.index else DASH)
    return row


def run_rows(t: Tables) -> list[list[str]]:
    """Markdown cells of every run, in table order: pooled accuracy with its Wilson interval, class-balanced
    accuracy, shot groups, final accuracy, best epoch, and a note on a collapsed run."""
    order = {s: i for i, s in enumerate(t.strategies.index)}
    runs = t.runs.assign(_row=t.runs["strategy"].map(order)).sort_values(["benchmark", "_row", "seed"])
    rows = []
    for _, r in runs.iterrows():
        note = (f"collapsed (< {stats.COLLAPSE_FACTOR:g} × chance = "
                f"{number(stats.COLLAPSE_FACTOR * stats.chance_accuracy(r['num_classes']))})") if r["collapsed"] else ""
        rows.append([r["benchmark"], r["strategy"], str(r["seed"]),
                     f"{number(r['best_test_acc'])} {interval(r['best_test_acc_lo'], r['best_test_acc_hi'])}",
                     number(r["best_balanced_acc"]),
                     *(number(r[f"{g}_acc"]) for g in SHOTS), number(r["final_test_acc"]), str(r["best_epoch"]),
                     note])
    return rows


def rank_legend(t: Tables) -> str:
    """What the mean rank averages over: the benchmarks on which every strategy of the table has runs."""
    left_out = [b for b in t.benchmarks.index if b not in t.ranked]
    text = (f"Mean rank: the all-class accuracy ranked per benchmark (1 = best), averaged over the {len(t.ranked)} of "
            f"{len(t.benchmarks)} benchmarks on which every strategy has runs, so that each is ranked against the same "
            "rivals")
    return text + (f" (left out: {', '.join(left_out)})." if left_out else ".")


def legend(t: Tables) -> list[str]:
    """The lines that say how to read the tables."""
    lines = [
        "Best-epoch test accuracy (%), mean ± sample std over seeds with the number of seeds n; 'all' is the "
        "class-balanced accuracy (the mean of the per-class accuracies: on a balanced test set, the accuracy over "
        "its images; where a test set is not balanced, the header says so and the pooled accuracy over its images "
        "stands beside it). Shot groups by training images per class: many > "
        f"{MANY_ABOVE}, medium {FEW_BELOW}-{MANY_ABOVE}, few < {FEW_BELOW}, each the mean accuracy of its classes; "
        "'cl.' is the number of classes a group holds. Bold: the best mean of each column. " + rank_legend(t),
        f"A run is collapsed when its class-balanced accuracy is below {stats.COLLAPSE_FACTOR:g} × chance (100 / "
        "classes, the class-balanced accuracy of any guess that ignores the image); it stays in the mean and is "
        "counted in the all-class cell. Numbers are rounded half away from zero, as written, in every format.",
    ]
    if has_differences(t):
        lines.append(f"Δ vs {t.reference}: all-class accuracy minus the baseline {t.reference}'s, paired by seed, "
                     f"with its 95% t-interval and the number n of paired seeds (only seeds both have are paired, so "
                     f"with unequal seeds Δ can differ from the difference of the means); {APPROX} marks a difference "
                     "not distinguishable from zero (the interval contains 0, or a single paired seed).")
    else:
        lines.append(f"The reference strategy {t.reference!r} has no runs in this table: no difference column.")
    return lines + length_legend(t) + parameter_legend(t)


def length_legend(t: Tables) -> list[str]:
    """The legend line of ``LENGTH_MARK`` with each marked strategy's epoch length per benchmark (none if none)."""
    marked = [(s, lengths) for s, lengths in t.strategies["epoch_length"].items() if lengths]
    if not marked:
        return []
    each = "; ".join(f"{s}: " + ", ".join(f"{lengths[b]:.2f}× on {b}" for b in t.benchmarks.index if b in lengths)
                     for s, lengths in marked)
    return [f"{LENGTH_MARK} Its epochs visit another number of training images than one pass over the training set, "
            f"so an epoch holds that many times the SGD steps of the other rows' epochs ({each}); its row compares "
            "strategies at equal epochs, not at equal steps."]


def parameter_legend(t: Tables) -> list[str]:
    """The legend line naming the parameters each row was configured with (none if no row has any)."""
    rows = [f"{s}: {p}" for s, p in t.strategies["params"].items() if p]
    return ["Parameters of the rows (as configured; the others' defaults are in their strategy files): "
            + "; ".join(rows) + "."] if rows else []


ROBUSTNESS_LEGEND = (
    "At each run's best epoch, from the softmax of the logits the model predicts with at test time (without the "
    "offsets or margins a strategy adds in training only, a cosine head's at its loss's scale; a post-hoc "
    "strategy's adjusted logits); mean ± std over "
    "seeds (n), bold the best mean of a column. ECE: expected calibration error, sum over 15 equal-width "
    "confidence bins of (images in the bin / N) × |accuracy − mean top-1 confidence| in the bin (%; lower is "
    "better). NLL: mean negative log-likelihood of the true class (nats). Confidence: mean top-1 softmax "
    "probability (%), to read beside the accuracy (above it: over-confident). Worst class: the lowest per-class "
    "accuracy, and the class that is worst in most seeds. Gap: head minus tail shot-group accuracy (points; many − "
    "few, or many − medium where no class is few-shot; the header names the groups). Forward / backward ρ: the "
    "accuracy on a test set whose class prior is long-tailed with imbalance ratio ρ in the training order "
    "(forward) or reversed (backward), SADE's test-agnostic protocol, computed exactly as Σ_c π_c × acc_c from "
    "the per-class accuracies, π_c ∝ ρ^(−r_c / (C − 1)) with r_c the class's rank by training images "
    "(reversed backward).")


RATIO_HEADING = "All-class accuracy against the imbalance ratio (%)"


def ratio_section(t: Tables) -> list[str]:
    """Markdown lines of the ratio sweeps (none without a ratio grid): per grid, one row per strategy and one
    column per imbalance ratio, ascending, each the all-class cell of the main table."""
    if not t.ratio_grids:
        return []
    out = [f"## {RATIO_HEADING}", "",
           "The all-class cells of the table above for each ratio grid (a benchmark entry with a list of imbalance "
           "ratios, one benchmark <grid>-r<ratio> per ratio), side by side, ratios ascending; bold: the best mean "
           "of each column.", ""]
    for grid, members in t.ratio_grids.items():
        archs = list(dict.fromkeys(t.benchmarks.loc[members, "arch"]))
        for arch in archs:  # a grid over architectures too: one table per architecture
            benches = [b for b in members if t.benchmarks.loc[b, "arch"] == arch]
            header = ["strategy", *(f"ratio {format_ratio(t.benchmarks.loc[b, 'imbalance_ratio'])}" for b in benches)]
            rows = [[strategy_label(t, s), *(group_cell(t, b, s, "all") for b in benches)]
                    for s in t.strategies.index]
            title = f"{grid}, {arch_name(arch)}" if len(archs) > 1 else grid
            out += [f"### {title}", "", markdown_table(header, rows), ""]
    return out


def robustness_section(t: Tables) -> list[str]:
    """Markdown lines of the second main table (calibration and robustness) and its t-intervals."""
    header = [f"{b} {robustness_label(t, b, c)}" for b in t.benchmarks.index for c in ROBUSTNESS]
    return ["## Calibration and robustness at the best epoch", "", ROBUSTNESS_LEGEND, "",
            markdown_table(["strategy", *header], [robustness_row(t, s) for s in t.strategies.index]), "",
            "## 95% confidence intervals of calibration and robustness (t over seeds)", "",
            markdown_table(["strategy", *header], [interval_row(t, s, t.robustness, ROBUSTNESS) for s in t.strategies.index]),
            ""]


def validation_section(t: Tables) -> list[str]:
    """Markdown lines of the test accuracy at the validation-selected epoch (none without validation sets)."""
    if t.validation.empty:
        return []
    rows = []
    for strategy in t.strategies.index:
        row = [strategy_label(t, strategy)]
        for bench in t.benchmarks.index:
            key = (bench, strategy)
            row.append(mean_std(t.validation.loc[key]) if key in t.validation.index else DASH)
        rows.append(row)
    return ["## Test accuracy at the validation-selected epoch (%)", "",
            "Each run's epoch is chosen by its class-balanced accuracy on the held-out validation set (the test set "
            "is not looked at); mean ± std over seeds of the test accuracy at that epoch.", "",
            markdown_table(["strategy", *t.benchmarks.index], rows), ""]


def markdown_report(t: Tables) -> str:
    """table.md: the legend, the benchmarks with their shot groups, the main table (one row per strategy), its
    ratio sweeps, the confidence intervals of its cells, the calibration and robustness tables, the test accuracy
    at the validation-selected epoch, and one row per run."""
    bench_rows = [[b, arch_name(i["arch"]), i["dataset"], format_ratio(i["imbalance_ratio"]),
                   i["epochs"], str(i["num_classes"]), str(i["test_images"]), "yes" if i["test_balanced"] else "no",
                   *(str(i[f"{g}_classes"]) for g in SHOTS)]
                  for b, i in t.benchmarks.iterrows()]
    groups = [(b, g) for b in t.benchmarks.index for g in GROUPS]
    main_header = ["strategy", "type", "builds on"]
    for bench in t.benchmarks.index:
        main_header += [group_header(t, bench, g) for g in GROUPS]
        main_header += [f"{bench} Δ vs {t.reference}"] if has_differences(t) else []
    out = [
        "# Results", "", *legend(t), "",
        "## Benchmarks", "",
        markdown_table(["benchmark", "model", "data", "imbalance ratio", "epochs", "classes", "test images",
                        "balanced test set", "many-shot classes", "medium-shot classes", "few-shot classes"], bench_rows, left=3), "",
        "## Best-epoch test accuracy (%)", "",
        markdown_table(main_header + ["mean rank"], [main_row(t, s) for s in t.strategies.index], left=3), "",
        *ratio_section(t),
        "## 95% confidence intervals of the means (t over seeds)", "",
        "The t-interval of each mean above (it needs two seeds or more; a dash otherwise).", "",
        markdown_table(["strategy"] + [group_header(t, b, g) for b, g in groups],
                       [interval_row(t, s, t.cells, GROUPS) for s in t.strategies.index]), "",
        *robustness_section(t),
        *validation_section(t),
        "## Runs", "",
        "Per run: best-epoch accuracy over the test images (pooled) with its 95% Wilson interval, the "
        "class-balanced accuracy, the shot groups at the best epoch, and the final-epoch accuracy. Per-class "
        "accuracy, calibration and robustness at the best and the final epoch are in table.csv.", "",
        markdown_table(["benchmark", "strategy", "seed", "pooled [95%]", "class-balanced", *SHOTS, "final",
                        "best epoch", "note"], run_rows(t), align="lllrrrrrrrl"), "",
    ]
    return "\n".join(out)


def latex_escape(text: Any) -> str:
    """``text`` with LaTeX's special characters escaped."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
               LENGTH_MARK: r"$^\ddagger$"}
    return "".join(special.get(ch, ch) for ch in str(text))


def latex_cell(summary: pd.Series | None, mark_collapsed: bool, digits: int = 1) -> str:
    """'$mean \\pm std$' with ``digits`` decimals, bold where best, with ``mark_collapsed`` a dagger where a run
    collapsed; '--' if empty."""
    if summary is None or summary["n"] == 0:
        return "--"
    body = number(summary["mean"], digits) + (rf" \pm {number(summary['std'], digits)}" if summary["n"] > 1 else "")
    body = rf"\mathbf{{{body}}}" if summary["best"] else body
    return f"${body}" + (r"^\dagger" if mark_collapsed and summary["collapsed"] else "") + "$"


def latex_benchmark(info: pd.Series) -> str:
    """'ResNet-32, CIFAR-10-LT ($\\rho=100$, 200 epochs)', falling back to the configured names."""
    arch = arch_name(info["arch"])
    data = DATASET_NAMES.get(info["dataset"], info["dataset"])
    return latex_escape(f"{arch}, {data}") + rf" ($\rho={format_ratio(info['imbalance_ratio'])}$, {info['epochs']} epochs)"


def seed_count(t: Tables) -> str:
    """'3 seeds', '1 seed', or '2--3 seeds' where cells differ: the number of seeds behind the cells."""
    counts = sorted({int(n) for n in t.cells["n"] if n > 0}) or [0]
    low, high = counts[0], counts[-1]
    return f"{low} seed{'s' * (high != 1)}" if low == high else f"{low}--{high} seeds"


def latex_grid(t: Tables, caption: str, label: str, headers: Callable[[str], list[str]],
               cells: Callable[[str, str], list[str]], rank: bool) -> list[str]:
    """The lines of a booktabs table: one row per strategy, grouped by type; per benchmark the
    ``headers(benchmark)`` columns, a row's filled by ``cells(benchmark, strategy)``; with ``rank`` a last
    column of mean ranks."""
    benches = list(t.benchmarks.index)
    width = len(headers(benches[0]))
    ncols = 1 + width * len(benches) + rank
    lines = [
        r"\begin{table*}[t]", r"\centering", r"\small", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
        r"\begin{tabular}{l" + "r" * (width * len(benches) + rank) + "}", r"\toprule",
        " & ".join([""] + [rf"\multicolumn{{{width}}}{{c}}{{{latex_benchmark(t.benchmarks.loc[b])}}}" for b in benches]
                   + [""] * rank) + r" \\",
        " ".join(rf"\cmidrule(lr){{{2 + width * i}-{1 + width * (i + 1)}}}" for i in range(len(benches))),
        " & ".join(["Strategy"] + [h for b in benches for h in headers(b)] + ["Rank"] * rank) + r" \\",
    ]
    previous = None
    for strategy, info in t.strategies.iterrows():
        if info["type"] != previous:
            lines += [r"\midrule", rf"\multicolumn{{{ncols}}}{{l}}{{\textit{{{latex_escape(info['type'])}}}}} \\"]
            previous = info["type"]
        name = latex_escape(strategy_label(t, strategy))
        name += f" ({latex_escape(builds_on(info))})" if builds_on(info) else ""
        row = [name, *(c for b in benches for c in cells(b, strategy))]
        row += [number(t.ranks.get(strategy, math.nan), 1)] * rank
        lines.append(" & ".join(row) + r" \\")
    return lines + [r"\bottomrule", r"\end{tabular}", r"\end{table*}", ""]


def latex_accuracy(t: Tables, bench: str, strategy: str) -> list[str]:
    """A strategy's main-table cells on one benchmark: the groups, the pooled accuracy in parentheses after the
    class-balanced one where the test set is not balanced."""
    out = [latex_cell(cell(t, bench, strategy, g), mark_collapsed=g == "all") for g in GROUPS]
    mean = pooled_mean(t, bench, strategy)
    return out[:-1] + [out[-1] + ("" if mean is None else f" ({number(mean, 1)})")]


def latex_table(t: Tables) -> str:
    """Booktabs tables (need ``\\usepackage{booktabs}``): the main results (per benchmark the many/medium/few/all
    columns, the mean rank) and calibration and robustness (``LATEX_ROBUSTNESS``), one row per strategy."""
    benches = list(t.benchmarks.index)
    collapsed = bool(t.runs["collapsed"].any())
    unbalanced = not t.benchmarks["test_balanced"].all()
    ranked = "across benchmarks" if len(t.ranked) == len(benches) else (
        f"across the {len(t.ranked)} benchmarks on which every strategy has runs")
    caption = (rf"Best-epoch test accuracy (\%), class-balanced, mean $\pm$ std over {seed_count(t)}. "
               rf"Shot groups by training images per class: many $>{MANY_ABOVE}$, medium {FEW_BELOW}--{MANY_ABOVE}, "
               rf"few $<{FEW_BELOW}$ (number of classes in parentheses). Bold: best mean per column. Rank: mean rank "
               f"of the all-class accuracy {ranked}."
               + (" Where a test set is not balanced, the pooled accuracy over its images follows in parentheses."
                  if unbalanced else "")
               + (rf" $^\dagger$: a seed collapsed (all-class accuracy below {stats.COLLAPSE_FACTOR:g}$\times$ chance)."
                  if collapsed else "")
               + (r" $^\ddagger$: epochs of another number of images than one pass over the training set (more or"
                  r" fewer steps per epoch than the other rows)." if t.strategies["epoch_length"].map(bool).any() else ""))
    main = latex_grid(t, caption, "tab:main-results", lambda b: [latex_escape(group_label(t, b, g).capitalize())
                                                                 for g in GROUPS],
                      lambda b, s: latex_accuracy(t, b, s), rank=True)
    caption = (rf"Calibration and robustness at the best epoch, mean $\pm$ std over {seed_count(t)}: expected "
               r"calibration error (\%, 15 confidence bins), negative log-likelihood, the worst class's accuracy "
               r"(\%), the head-to-tail gap (many- minus few-shot accuracy, or minus medium-shot without few-shot "
               r"classes) and the accuracy (\%) on forward and backward long-tailed test priors of imbalance ratio "
               r"50 (SADE's protocol, exact from per-class accuracies). Bold: best mean per column.")
    robust = latex_grid(t, caption, "tab:calibration-robustness", lambda b: list(LATEX_ROBUSTNESS.values()),
                        lambda b, s: [robustness_text(t, b, s, c, lambda x, _, more: latex_cell(x, False, 1 + more))
                                      for c in LATEX_ROBUSTNESS], rank=False)
    head = "% Made by rule table (scripts/make_table.py) from every run's metrics.json; needs \\usepackage{booktabs}."
    return "\n".join([head, *main, *robust]).replace(DASH, "--")


def inline_html(text: str) -> str:
    """Markdown inline marks as HTML, after escaping: **bold** -> <strong>, `code` -> <code>."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def table_html(markdown: str, title: str) -> str:
    """A standalone HTML page of results/table.md: its '#' headings, pipe tables and text lines, with
    bold and code marks rendered."""
    body, rows = [], []

    def flush_table():
        if not rows:
            return
        header, align, *data = rows
        right = ["right" if cell.endswith(":") else "left" for cell in align]
        out = ["<table>", "<tr>" + "".join(f"<th>{inline_html(c)}</th>" for c in header) + "</tr>"]
        for row in data:
            out.append("<tr>" + "".join(f'<td style="text-align:{a}">{inline_html(c)}</td>'
                                        for c, a in zip(row, right)) + "</tr>")
        body.append("\n".join(out + ["</table>"]))
        rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        flush_table()
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            body.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{inline_html(line)}</p>")
    flush_table()
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}"
             "th,td{border:1px solid #ccc;padding:.3em .7em}th{background:#f2f2f2}h2{font-size:1.1em}")
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
