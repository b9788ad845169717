"""Render the results table (``ltbench.table.Tables``) as markdown (results/table.md), as a booktabs
LaTeX table of the main results (results/table.tex), and the markdown as the report's HTML page
(results/table.html)."""

from __future__ import annotations

import html
import math
import re
from typing import Any

import pandas as pd

from ltbench import stats
from ltbench.config import format_ratio
from ltbench.shots import FEW_BELOW, MANY_ABOVE
from ltbench.table import GROUPS, SHOTS, Tables

DASH = "–"
APPROX = "≈"  # marks a difference to the reference that is not distinguishable from zero
ARCH_NAMES = {"vgg16bn": "VGG-16-BN"}  # and resnet<depth> -> ResNet-<depth> (arch_name)


def arch_name(arch: str) -> str:
    """An architecture as papers write it: ``resnet32`` -> ResNet-32, ``vgg16bn`` -> VGG-16-BN, else as configured."""
    depth = re.fullmatch(r"resnet(\d+)", arch)
    return f"ResNet-{depth[1]}" if depth else ARCH_NAMES.get(arch, arch)


DATASET_NAMES = {"cifar10": "CIFAR-10-LT", "cifar100": "CIFAR-100-LT"}
STAGE_NAMES = {"posthoc": "post hoc on", "stage2": "stage 2 of"}


def number(x: float, digits: int = 2, sign: bool = False) -> str:
    """``x`` with ``digits`` decimals (a leading + or − with ``sign``); a dash for nan."""
    if x is None or math.isnan(x):
        return DASH
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


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
    """'+mean [lo, hi]' of a paired difference ('+mean (n=1)' for one seed), then '≈' unless its interval
    excludes 0."""
    text = number(diff["mean"], sign=True)
    text += f" {interval(diff['lo'], diff['hi'], sign=True)}" if diff["n"] > 1 else f" (n={diff['n']})"
    return text if diff["distinguishable"] else f"{text} {APPROX}"


def builds_on(info: pd.Series) -> str:
    """'post hoc on ce', 'stage 2 of wb_stage1', or '' for a strategy trained from scratch."""
    return f"{STAGE_NAMES[info['stage']]} {info['builds_on']}" if info["stage"] in STAGE_NAMES else ""


def strategy_label(name: str, reference: str) -> str:
    """The strategy's name; the reference strategy is labelled the baseline."""
    return f"{name} (baseline)" if name == reference else name


def markdown_table(header: list[str], rows: list[list[str]], left: int = 1, align: str = "") -> str:
    """A GitHub pipe table; the first ``left`` columns left-aligned, the others right-aligned, unless
    ``align`` gives one letter per column (l or r)."""
    align = align or "l" * left + "r" * (len(header) - left)
    aligns = [" --- " if a == "l" else " ---: " for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def group_label(t: Tables, bench: str, group: str) -> str:
    """'many (4 cl.)': a shot group with the number of classes it holds in ``bench``."""
    info = t.benchmarks.loc[bench]
    classes = info["num_classes"] if group == "all" else info[f"{group}_classes"]
    return f"{group} ({classes} cl.)"


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


def main_row(t: Tables, strategy: str) -> list[str]:
    """Markdown cells of one strategy: type, builds on, per benchmark the groups (best bold, collapsed runs
    counted in 'all') and the difference to the reference, then the mean rank."""
    info = t.strategies.loc[strategy]
    row = [strategy_label(strategy, t.reference), info["type"], builds_on(info) or DASH]
    for bench in t.benchmarks.index:
        for group in GROUPS:
            summary = cell(t, bench, strategy, group)
            if summary is None or summary["n"] == 0:
                row.append(DASH)
                continue
            collapsed = summary["collapsed"] if group == "all" else 0
            text = mean_std(summary, note=f", {collapsed} collapsed" if collapsed else "")
            row.append(f"**{text}**" if summary["best"] else text)
        if has_differences(t):
            diff = t.differences.loc[(bench, strategy)] if (bench, strategy) in t.differences.index else None
            row.append("baseline" if strategy == t.reference else DASH if diff is None else difference(diff))
    return row + [number(t.ranks.get(strategy, math.nan))]


def interval_row(t: Tables, strategy: str) -> list[str]:
    """Markdown cells of one strategy: per benchmark and group, the 95% t-interval of the mean."""
    row = [strategy_label(strategy, t.reference)]
    for bench in t.benchmarks.index:
        for group in GROUPS:
            summary = cell(t, bench, strategy, group)
            row.append(DASH if summary is None else interval(summary["lo"], summary["hi"]))
    return row


def run_rows(t: Tables) -> list[list[str]]:
    """Markdown cells of every run, in table order: accuracy with its Wilson interval, shot groups, final
    accuracy, best epoch, and a note on a collapsed run."""
    order = {s: i for i, s in enumerate(t.strategies.index)}
    runs = t.runs.assign(_row=t.runs["strategy"].map(order)).sort_values(["benchmark", "_row", "seed"])
    rows = []
    for _, r in runs.iterrows():
        note = (f"collapsed (< {stats.COLLAPSE_FACTOR:g} × chance = "
                f"{number(stats.COLLAPSE_FACTOR * stats.chance_accuracy(r['num_classes']))})") if r["collapsed"] else ""
        rows.append([r["benchmark"], r["strategy"], str(r["seed"]),
                     f"{number(r['best_test_acc'])} {interval(r['best_test_acc_lo'], r['best_test_acc_hi'])}",
                     *(number(r[f"{g}_acc"]) for g in SHOTS), number(r["final_test_acc"]), str(r["best_epoch"]),
                     note])
    return rows


def legend(t: Tables) -> list[str]:
    """The lines that say how to read the tables."""
    lines = [
        "Best-epoch test accuracy (%) on the balanced test set, mean ± sample std over seeds with the number of "
        f"seeds n. Shot groups by training images per class: many > {MANY_ABOVE}, medium {FEW_BELOW}-{MANY_ABOVE}, "
        f"few < {FEW_BELOW}; 'cl.' is the number of classes a group holds. Bold: the best mean of each column. "
        "Mean rank: the all-class accuracy ranked per benchmark (1 = best), averaged over the benchmarks.",
        f"A run is collapsed when its best accuracy is below {stats.COLLAPSE_FACTOR:g} × chance (100 / classes); "
        "it stays in the mean and is counted in the all-class cell.",
    ]
    if has_differences(t):
        lines.append(f"Δ vs {t.reference}: all-class accuracy minus the baseline {t.reference}'s, paired by seed, "
                     f"with its 95% t-interval; {APPROX} marks a difference not distinguishable from zero (the "
                     "interval contains 0, or a single paired seed).")
    else:
        lines.append(f"The reference strategy {t.reference!r} has no runs in this table: no difference column.")
    return lines


def validation_section(t: Tables) -> list[str]:
    """Markdown lines of the test accuracy at the validation-selected epoch (none without validation sets)."""
    if t.validation.empty:
        return []
    rows = []
    for strategy in t.strategies.index:
        row = [strategy_label(strategy, t.reference)]
        for bench in t.benchmarks.index:
            key = (bench, strategy)
            row.append(mean_std(t.validation.loc[key]) if key in t.validation.index else DASH)
        rows.append(row)
    return ["## Test accuracy at the validation-selected epoch (%)", "",
            "Each run's epoch is chosen by its class-balanced accuracy on the held-out validation set (the test set "
            "is not looked at); mean ± std over seeds of the test accuracy at that epoch.", "",
            markdown_table(["strategy", *t.benchmarks.index], rows), ""]


def markdown_report(t: Tables) -> str:
    """table.md: the legend, the benchmarks with their shot groups, the main table (one row per strategy),
    the confidence intervals of its cells, and one row per run."""
    bench_rows = [[b, arch_name(i["arch"]), i["dataset"], format_ratio(i["imbalance_ratio"]),
                   i["epochs"], str(i["num_classes"]), str(i["test_images"]), *(str(i[f"{g}_classes"]) for g in SHOTS)]
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
                        "many-shot classes", "medium-shot classes", "few-shot classes"], bench_rows, left=3), "",
        "## Best-epoch test accuracy (%)", "",
        markdown_table(main_header + ["mean rank"], [main_row(t, s) for s in t.strategies.index], left=3), "",
        "## 95% confidence intervals of the means (t over seeds)", "",
        "The t-interval of each mean above (it needs two seeds or more; a dash otherwise).", "",
        markdown_table(["strategy"] + [group_header(t, b, g) for b, g in groups],
                       [interval_row(t, s) for s in t.strategies.index]), "",
        *validation_section(t),
        "## Runs", "",
        "Per run: best-epoch accuracy with its 95% Wilson interval over the test images, the shot groups at the "
        "best epoch, and the final-epoch accuracy. Per-class accuracy is in table.csv.", "",
        markdown_table(["benchmark", "strategy", "seed", "all [95%]", *SHOTS, "final", "best epoch", "note"],
                       run_rows(t), align="lllrrrrrrl"), "",
    ]
    return "\n".join(out)


def latex_escape(text: Any) -> str:
    """``text`` with LaTeX's special characters escaped."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(special.get(ch, ch) for ch in str(text))


def latex_cell(summary: pd.Series | None, mark_collapsed: bool) -> str:
    """'$mean \\pm std$' with one decimal, bold where best, with ``mark_collapsed`` a dagger where a run
    collapsed; '--' if empty."""
    if summary is None or summary["n"] == 0:
        return "--"
    body = number(summary["mean"], 1) + (rf" \pm {number(summary['std'], 1)}" if summary["n"] > 1 else "")
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


def latex_table(t: Tables) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``) of the main results: one row per strategy, grouped
    by type; per benchmark the many/medium/few/all columns; the mean rank."""
    benches = list(t.benchmarks.index)
    ncols = 1 + 4 * len(benches) + 1
    collapsed = bool(t.runs["collapsed"].any())
    caption = (rf"Best-epoch test accuracy (\%) on the balanced test sets, mean $\pm$ std over {seed_count(t)}. "
               rf"Shot groups by training images per class: many $>{MANY_ABOVE}$, medium {FEW_BELOW}--{MANY_ABOVE}, "
               rf"few $<{FEW_BELOW}$ (number of classes in parentheses). Bold: best mean per column. Rank: mean rank "
               "of the all-class accuracy across benchmarks."
               + (rf" $^\dagger$: a seed collapsed (all-class accuracy below {stats.COLLAPSE_FACTOR:g}$\times$ chance)."
                  if collapsed else ""))
    lines = [
        "% Made by rule table (scripts/make_table.py) from every run's metrics.json; needs \\usepackage{booktabs}.",
        r"\begin{table*}[t]", r"\centering", r"\small", rf"\caption{{{caption}}}", r"\label{tab:main-results}",
        r"\begin{tabular}{l" + "rrrr" * len(benches) + "r}", r"\toprule",
        " & ".join([""] + [rf"\multicolumn{{4}}{{c}}{{{latex_benchmark(t.benchmarks.loc[b])}}}" for b in benches]
                   + [""]) + r" \\",
        " ".join(rf"\cmidrule(lr){{{2 + 4 * i}-{5 + 4 * i}}}" for i in range(len(benches))),
        " & ".join(["Strategy"] + [latex_escape(group_label(t, b, g).capitalize())
                                   for b in benches for g in GROUPS] + ["Rank"]) + r" \\",
    ]
    previous = None
    for strategy, info in t.strategies.iterrows():
        if info["type"] != previous:
            lines += [r"\midrule", rf"\multicolumn{{{ncols}}}{{l}}{{\textit{{{latex_escape(info['type'])}}}}} \\"]
            previous = info["type"]
        label = latex_escape(strategy_label(strategy, t.reference))
        label += f" ({latex_escape(builds_on(info))})" if builds_on(info) else ""
        cells = [latex_cell(cell(t, b, strategy, g), mark_collapsed=g == "all") for b in benches for g in GROUPS]
        lines.append(" & ".join([label, *cells, number(t.ranks.get(strategy, math.nan), 1)]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table*}", ""]
    return "\n".join(lines).replace(DASH, "--")


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
