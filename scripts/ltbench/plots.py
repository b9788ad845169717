"""Figures for the Snakemake report, drawn with matplotlib's Agg backend (no display needed).

Each ``*_figure`` function takes plain data read from the pipeline's files (history.json,
predictions.npz, metrics.json, index.json) and returns a ``Figure``; ``save`` writes it as a
PNG atomically. Every strategy keeps one colour (and line style) in all figures, fixed by its
position in config.yaml (``strategy_styles``). ``table_html`` renders results/table.md for the report.
"""

from __future__ import annotations

import html
import os
from typing import Any, Iterable, NamedTuple, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.colors import Normalize, PowerNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ltbench.io import atomic_path  # noqa: E402
from ltbench.metrics import FEW_BELOW, MANY_ABOVE, shot_group  # noqa: E402

# Okabe-Ito colours (distinguishable with colour-vision deficiencies; yellow left out, it fades
# on white), then five tab10 colours unlike them. Past 12 strategies the colours repeat, dashed.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
           "#9467BD", "#8C564B", "#7F7F7F", "#BCBD22", "#D62728"]
SHOT_GROUPS = ("many", "medium", "few")
SHOT_RULES = {"many": f"> {MANY_ABOVE}", "medium": f"{FEW_BELOW}-{MANY_ABOVE}", "few": f"< {FEW_BELOW}"}
# Above this many classes, figures drop per-class labels and cell values.
LABELLED_CLASSES = 20
DPI = 120


# ---------------------------------------------------------------- shared helpers


class Style(NamedTuple):
    """How one strategy is drawn: colour, line style (lines) and hatch (bars)."""

    color: str
    linestyle: str
    hatch: str | None


def strategy_styles(strategies: Sequence[str]) -> dict[str, Style]:
    """One style per strategy, by its position in config order: 12 colours, then the same colours dashed."""
    styles = {}
    for i, name in enumerate(strategies):
        repeat = i // len(PALETTE) % 2
        styles[name] = Style(PALETTE[i % len(PALETTE)], "--" if repeat else "-", "//" if repeat else None)
    return styles


def size_order(class_counts: Sequence[int]) -> np.ndarray:
    """Class indices by training-set size, largest first (ties keep class order)."""
    return np.argsort(-np.asarray(class_counts), kind="stable")


def class_ticks(ax, axis: str, class_counts: Sequence[int], classes: Sequence[str] | None) -> None:
    """Tick labels for classes in ``size_order``: 'name (n)' for few classes, else about ten ticks 'n=...'.

    ``axis`` is 'x' or 'y'; the labels name the training-set size of the class at each tick.
    """
    order = size_order(class_counts)
    counts = np.asarray(class_counts)[order]
    if len(order) <= LABELLED_CLASSES:
        positions = np.arange(len(order))
        names = [classes[i] if classes else str(i) for i in order]
        labels = [f"{name} ({n})" for name, n in zip(names, counts)]
    else:
        positions = np.arange(0, len(order), max(1, len(order) // 10))
        labels = [f"n={counts[p]}" for p in positions]
    if axis == "x":
        small = len(order) <= LABELLED_CLASSES
        ax.set_xticks(positions, labels, rotation=45 if small else 0, ha="right" if small else "center")
    else:
        ax.set_yticks(positions, labels)


def size_axis(ax, axis: str, class_counts: Sequence[int]) -> None:
    """Log scale for a class-size axis ('x' or 'y'): plain 1-2-5 tick labels within the data's range,
    and dotted lines at the shot-group thresholds (20 and 100 training images) that fall inside it."""
    lo, hi = min(class_counts), max(class_counts)
    ticks = [m * 10**e for e in range(7) for m in (1, 2, 5) if lo <= m * 10**e <= hi]
    if len(ticks) < 3:
        ticks = sorted(set(ticks) | {lo, hi})
    scale, set_ticks, line = (ax.set_xscale, ax.set_xticks, ax.axvline) if axis == "x" else (
        ax.set_yscale, ax.set_yticks, ax.axhline)
    scale("log")
    set_ticks(ticks, [str(t) for t in ticks])
    set_ticks([], minor=True)
    for value in (FEW_BELOW, MANY_ABOVE):
        if lo < value <= hi:
            line(value, color="0.5", linestyle=":", linewidth=1, zorder=0)


def outside_legend(ax, **kwargs) -> None:
    """The axes' legend to the right of it, so it never hides data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=9, title_fontsize=9, alignment="left", **kwargs)


def mean_std(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean over seeds (axis 0) and the sample std (ddof=1), or None for a single seed."""
    stacked = np.asarray(values, dtype=float)
    if len(stacked) < 2:
        return stacked.mean(axis=0), None
    return stacked.mean(axis=0), stacked.std(axis=0, ddof=1)


def group_by_strategy(records: Iterable[dict[str, Any]], strategies: Sequence[str], key: str) -> dict[str, list]:
    """``record[key]`` of every run, grouped per strategy in config order (strategies without runs dropped)."""
    grouped: dict[str, list] = {name: [] for name in strategies}
    for record in records:
        grouped[record["strategy"]].append(record[key])
    return {name: values for name, values in grouped.items() if values}


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` (odd) values, shrinking at the ends (window 1: unchanged)."""
    if window <= 1:
        return values
    half = window // 2
    return np.array([values[max(0, i - half): i + half + 1].mean() for i in range(len(values))])


def smoothing_window(num_classes: int) -> int:
    """Class sizes averaged per point of the per-class line: 1 up to 20 classes, else about a tenth
    of the number of classes, made odd so that the window is centred (11 for 100 classes)."""
    return 1 if num_classes <= LABELLED_CLASSES else (num_classes // 10) | 1


def save(fig: Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` as a PNG, atomically, without a version stamp (same data -> same bytes)."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})


# ---------------------------------------------------------------- per run


def learning_curves_figure(epochs: list[dict[str, Any]], best_epoch: int, best_acc: float, title: str,
                           style: Style) -> Figure:
    """Test accuracy and mean training loss against the epoch, side by side; a star marks the run's best.

    The star is the run's own best accuracy, which sits off the curve for a post-hoc run (the
    per-epoch records are then its base run's, and ``title`` should say so).
    """
    x = [e["epoch"] for e in epochs]
    marker = "." if len(x) <= 50 else None
    fig = Figure(figsize=(10, 4), layout="constrained")
    acc_ax, loss_ax = fig.subplots(1, 2)
    acc_ax.plot(x, [e["test_acc"] for e in epochs], color=style.color, linestyle=style.linestyle, marker=marker)
    acc_ax.plot([best_epoch], [best_acc], "*", color="black", markersize=12,
                label=f"best: {best_acc:.2f}% at epoch {best_epoch}")
    acc_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy (balanced test set)")
    acc_ax.legend(loc="lower right")
    loss_ax.plot(x, [e["train_loss"] for e in epochs], color=style.color, linestyle=style.linestyle, marker=marker)
    loss_ax.set(xlabel="epoch", ylabel="training loss (mean over the epoch)", title="Training loss")
    for ax in (acc_ax, loss_ax):
        if len(x) < 10:  # a few epochs: one tick each, with a margin
            ax.set_xticks(x)
            ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Row-normalized confusion matrix: m[t, p] = #(label t, predicted p) / #(label t)."""
    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (labels, pred), 1)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def confusion_figure(labels: np.ndarray, pred: np.ndarray, class_counts: Sequence[int],
                     classes: Sequence[str] | None, title: str) -> Figure:
    """Heatmap of the row-normalized confusion matrix, classes ordered by training size (largest first).

    Up to 20 classes each cell shows its value; with more, a square-root colour scale keeps
    the small off-diagonal fractions visible.
    """
    num_classes = len(class_counts)
    order = size_order(class_counts)
    matrix = confusion_matrix(labels, pred, num_classes)[np.ix_(order, order)]
    small = num_classes <= LABELLED_CLASSES
    side = 6.5 if small else 8.5
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = fig.subplots()
    norm = Normalize(vmin=0, vmax=1) if small else PowerNorm(gamma=0.5, vmin=0, vmax=1)
    image = ax.imshow(matrix, cmap="Blues", norm=norm, interpolation="nearest")
    if small:
        for (t, p), value in np.ndenumerate(matrix):
            if value >= 0.005:  # shown as .01 or more
                ax.text(p, t, f"{value:.2f}".lstrip("0"), ha="center", va="center", fontsize=8,
                        color="white" if value > 0.5 else "black")
    class_ticks(ax, "x", class_counts, classes)
    class_ticks(ax, "y", class_counts, classes)
    ax.set(xlabel="predicted class (training images)", ylabel="true class (training images)", title=title)
    fig.colorbar(image, ax=ax, shrink=0.8,
                 label="fraction of the true class's test images" + ("" if small else " (sqrt scale)"))
    return fig


# ---------------------------------------------------------------- per benchmark


def per_class_figure(per_class: dict[str, list[list[float]]], class_counts: Sequence[int],
                     styles: dict[str, Style], title: str) -> Figure:
    """Per-class test accuracy against training-set size (log axis), one line per strategy.

    Each line is the mean over seeds, averaged over classes of equal size and, above 20
    classes, smoothed over ``smoothing_window`` neighbouring sizes; dots are single classes.
    """
    counts = np.asarray(class_counts, dtype=float)
    sizes = np.unique(counts)[::-1]
    window = smoothing_window(len(counts))
    dot_alpha = 0.35 if len(per_class) <= 6 else 0.15
    fig = Figure(figsize=(9, 5 if len(per_class) <= 12 else 6.5), layout="constrained")
    ax = fig.subplots()
    for name, runs in per_class.items():
        acc, _ = mean_std(runs)
        by_size = np.array([acc[counts == s].mean() for s in sizes])
        ax.scatter(counts, acc, s=12, color=styles[name].color, alpha=dot_alpha, linewidths=0)
        ax.plot(sizes, rolling_mean(by_size, window), color=styles[name].color, linestyle=styles[name].linestyle,
                linewidth=2, marker="o" if window == 1 else None, markersize=4,
                label=f"{name} (n={len(runs)} seed{'s' if len(runs) > 1 else ''})")
    size_axis(ax, "x", class_counts)
    ax.invert_xaxis()
    ax.set_ylim(-3, 103)
    ax.set(xlabel="training images of the class (log scale; head on the left)",
           ylabel="test accuracy of the class (%)", title=f"{title}\nper-class accuracy at the best epoch")
    ax.grid(alpha=0.3)
    note = "dots: classes, mean over seeds\nlines: " + (
        "mean over classes of a size" if window == 1 else f"moving average over\n{window} class sizes")
    outside_legend(ax, title=note)
    return fig


def shot_figure(shots: dict[str, list[dict[str, float | None]]], class_counts: Sequence[int],
                styles: dict[str, Style], title: str) -> Figure:
    """Grouped bars of many/medium/few-shot accuracy per strategy: mean over seeds, std as error bar.

    Up to 6 strategies each bar is labelled with its mean.
    """
    groups = [shot_group(c) for c in class_counts]
    labelled = len(shots) <= 6
    fig = Figure(figsize=(9 if labelled else 12, 4.5 if len(shots) <= 12 else 6.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(shots))
    x = np.arange(len(SHOT_GROUPS))
    for i, (name, runs) in enumerate(shots.items()):
        values = [[np.nan if r[g] is None else r[g] for g in SHOT_GROUPS] for r in runs]
        mean, std = mean_std(values)
        offset = (i - (len(shots) - 1) / 2) * width
        has = ~np.isnan(mean)  # a group without classes gets no bar
        err = None if std is None else std[has]
        ax.bar(x[has] + offset, mean[has], width, yerr=err, capsize=3 if labelled else 1, color=styles[name].color,
               hatch=styles[name].hatch, edgecolor="white", linewidth=0, label=f"{name} (n={len(runs)})")
        if labelled:
            tops = mean[has] + (0 if err is None else err)
            for xi, top, value in zip(x[has] + offset, tops, mean[has]):
                ax.text(xi, top + 1, f"{value:.1f}", ha="center", va="bottom", fontsize=7)
    tick_labels = []
    for g in SHOT_GROUPS:
        n = groups.count(g)
        tick_labels.append(f"{g}-shot\n({SHOT_RULES[g]} images)\n" + (f"{n} classes" if n else "no classes"))
    ax.set_xticks(x, tick_labels)
    ax.set_xlim(-0.5, len(SHOT_GROUPS) - 0.5)
    ax.set_ylim(0, 108)
    ax.set(ylabel="test accuracy at the best epoch (%)", title=f"{title}\nshot-group accuracy (mean ± std over seeds)")
    ax.grid(alpha=0.3, axis="y")
    outside_legend(ax)
    return fig


# ---------------------------------------------------------------- per dataset


def class_histogram_figure(class_counts: Sequence[int], classes: Sequence[str], title: str) -> Figure:
    """Training images per class (log axis) in class order, coloured by shot group."""
    group_colors = {"many": "#4C72B0", "medium": "#8C8C8C", "few": "#DD8452"}
    groups = [shot_group(c) for c in class_counts]
    fig = Figure(figsize=(10 if len(classes) > LABELLED_CLASSES else 7, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.bar(np.arange(len(class_counts)), class_counts, width=0.85, color=[group_colors[g] for g in groups])
    legend = [Patch(color=group_colors[g], label=f"{g}-shot ({SHOT_RULES[g]} images): {groups.count(g)} classes")
              for g in SHOT_GROUPS]
    size_axis(ax, "y", class_counts)
    if len(classes) <= LABELLED_CLASSES:
        ax.set_xticks(np.arange(len(classes)), classes, rotation=45, ha="right")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(10, integer=True, steps=[1, 2, 5, 10]))
    ax.set(xlabel="class" + ("" if len(classes) <= LABELLED_CLASSES else " index"),
           ylabel="training images (log scale)", title=title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(handles=legend, fontsize=9, loc="upper right")
    return fig


# ---------------------------------------------------------------- results table


def table_html(markdown: str, title: str) -> str:
    """A standalone HTML page of results/table.md: its '#' headings, pipe tables and text lines, verbatim."""
    body, rows = [], []

    def flush_table():
        if not rows:
            return
        header, align, *data = rows
        right = ["right" if cell.endswith(":") else "left" for cell in align]
        out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in header) + "</tr>"]
        for row in data:
            out.append("<tr>" + "".join(f'<td style="text-align:{a}">{html.escape(c)}</td>'
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
            body.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}"
             "th,td{border:1px solid #ccc;padding:.3em .7em}th{background:#f2f2f2}h2{font-size:1.1em}")
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
