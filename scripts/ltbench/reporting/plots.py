"""Figures for the Snakemake report, drawn with matplotlib's Agg backend (no display needed).

Each ``*_figure`` function takes plain data read from the pipeline's files (history.json,
predictions.npz, metrics.json, index.json) and returns a ``Figure``; ``save`` writes it as a
PNG atomically. Every strategy keeps one colour (and line style) in all figures, fixed by its
position in config.yaml (``strategy_styles``).
"""

from __future__ import annotations

import os
from typing import Any, Iterable, NamedTuple, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.colors import Normalize, PowerNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ltbench.evaluation import calibration, priors  # noqa: E402
from ltbench.io import atomic_path  # noqa: E402
from ltbench.evaluation.shots import FEW_BELOW, GROUPS, MANY_ABOVE, shot_group  # noqa: E402

# Okabe-Ito colours (distinguishable with colour-vision deficiencies; yellow left out, it fades
# on white), then five tab10 colours unlike them. Past 12 strategies the colours repeat, dashed.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
           "#9467BD", "#8C564B", "#7F7F7F", "#BCBD22", "#D62728"]
SHOT_RULES = {"many": f"> {MANY_ABOVE}", "medium": f"{FEW_BELOW}-{MANY_ABOVE}", "few": f"< {FEW_BELOW}"}
# Above this many classes, figures drop per-class labels and cell values.
LABELLED_CLASSES = 20
DPI = 120
SHORT_LEGEND = 12  # strategies a figure's legend holds at its short height; more make it taller


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
    """Log scale for a class-size axis ('x' or 'y'): tick labels at the head and tail class sizes
    (the largest and smallest class) and at the 1-2-5 values between them, and dotted lines at the
    shot-group thresholds (20 and 100 training images) that fall inside the range."""
    lo, hi = min(class_counts), max(class_counts)
    # 1-2-5 values clearly inside (a factor 1.3 from the ends), so that no label overlaps the ends'
    ticks = [m * 10**e for e in range(7) for m in (1, 2, 5) if 1.3 * lo <= m * 10**e <= hi / 1.3]
    labels = [str(t) for t in ticks]
    if hi > lo:
        sep = "\n" if axis == "x" else " "
        ticks, labels = [lo, *ticks, hi], [f"{lo}{sep}(tail)", *labels, f"{hi}{sep}(head)"]
    else:
        ticks, labels = [lo], [str(lo)]
    scale, set_ticks, line = (ax.set_xscale, ax.set_xticks, ax.axvline) if axis == "x" else (
        ax.set_yscale, ax.set_yticks, ax.axhline)
    scale("log")
    set_ticks(ticks, labels)
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


def seed_range(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, minimum and maximum over seeds (axis 0): the line and the band drawn for a strategy.
    Unlike mean ± std, the band stays within the values' own range (0-100 for accuracies)."""
    stacked = np.asarray(values, dtype=float)
    return stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)


def band_line(ax, x, values: Sequence[Any], style: Style, label: str | None = None, **line_kwargs):
    """One strategy's mean over seeds as a line and, with more than one seed, the min-max range as a
    translucent band in its colour; returns the mean."""
    mean, lo, hi = seed_range(values)
    if len(values) > 1:
        ax.fill_between(x, lo, hi, color=style.color, alpha=0.15, linewidth=0)
    ax.plot(x, mean, color=style.color, linestyle=style.linestyle, label=label, **line_kwargs)
    return mean


def plural(n: int, noun: str) -> str:
    """'no classes', '1 class', '3 classes', '1 seed', '2 seeds'."""
    word = noun if n == 1 else noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")
    return f"{'no' if n == 0 else n} {word}"


def group_by_strategy(records: Iterable[dict[str, Any]], strategies: Sequence[str], key: str | None = None
                      ) -> dict[str, list]:
    """``record[key]`` (the whole record without ``key``) of every run, grouped per strategy in config order
    (strategies without runs dropped)."""
    grouped: dict[str, list] = {name: [] for name in strategies}
    for record in records:
        grouped[record["strategy"]].append(record if key is None else record[key])
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


def defer_epoch(history: dict[str, Any]) -> int:
    """The 0-based epoch from which a deferred schedule reweights or resamples (the method's
    ``defer_epoch``), 0 if the run has none (or no ``method``: post-hoc)."""
    method = history.get("method") or {}
    return method.get("defer_epoch", 0)


def epoch_axis(ax, x: Sequence[int]) -> None:
    """Integer epoch ticks: one per epoch, with a margin, below 10 epochs; a light grid."""
    if len(x) < 10:
        ax.set_xticks(x)
        ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def mark_defer_epoch(ax, epoch: int, style: Style) -> None:
    """A dotted vertical line in the strategy's colour between epoch ``epoch`` (the last one without
    reweighting; epochs count from 1 in the history) and the first one with it."""
    ax.axvline(epoch + 0.5, color=style.color, linestyle=(0, (1, 2)), linewidth=1.5, zorder=1)


def accuracy_axis(ax, num_classes: int) -> None:
    """A fixed 0-100 % test-accuracy axis with a grey dashed chance line (100 / classes), labelled inside."""
    chance = 100.0 / num_classes
    ax.axhline(chance, color="0.4", linestyle="--", linewidth=1, zorder=0)
    ax.annotate(f"chance ({chance:.3g}%)", (0.01, chance), xycoords=("axes fraction", "data"),
                xytext=(0, 2), textcoords="offset points", fontsize=8, color="0.3", va="bottom")
    ax.set_ylim(0, 100)
    ax.set_ylabel("test accuracy (%)")


def learning_curves_figure(epochs: list[dict[str, Any]], best_epoch: int, best_acc: float, title: str,
                           style: Style, num_classes: int, defer_epoch: int = 0) -> Figure:
    """Three panels against the epoch: test accuracy (0-100, chance line, the run's best starred),
    mean training loss, and the learning rate. A dotted line marks a deferred schedule's start.

    The star is the run's own best accuracy, which sits off the curve for a post-hoc run (the
    per-epoch records are then its base run's, and ``title`` should say so).
    """
    x = [e["epoch"] for e in epochs]
    line = {"color": style.color, "linestyle": style.linestyle, "marker": "." if len(x) <= 50 else None}
    fig = Figure(figsize=(13, 4), layout="constrained")
    acc_ax, loss_ax, lr_ax = fig.subplots(1, 3)
    acc_ax.plot(x, [e["test_acc"] for e in epochs], **line)
    acc_ax.plot([best_epoch], [best_acc], "*", color="black", markersize=12, clip_on=False)
    accuracy_axis(acc_ax, num_classes)
    acc_ax.set_title(f"Test accuracy (balanced test set)\n\u2605 best: {best_acc:.2f}% at epoch {best_epoch}")
    loss_ax.plot(x, [e["train_loss"] for e in epochs], **line)
    loss_ax.set(ylabel="training loss (mean over the epoch)", title="Training loss")
    lr_ax.plot(x, [e["lr"] for e in epochs], **line)
    lr_ax.set(ylabel="learning rate", title="Learning rate")
    lr_ax.set_ylim(bottom=0)
    for ax in (acc_ax, loss_ax, lr_ax):
        epoch_axis(ax, x)
        if defer_epoch:
            mark_defer_epoch(ax, defer_epoch, style)
    fig.suptitle(title + (f"\ndotted line: deferred schedule from epoch {defer_epoch + 1}" if defer_epoch else ""))
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


def training_curves(histories: Iterable[dict[str, Any]], strategies: Sequence[str]
                    ) -> tuple[dict[str, list[list[dict[str, Any]]]], dict[str, tuple[int, str]], list[str]]:
    """The per-epoch records of every trained run, per strategy in config order, for overlaid curves.

    A stage-2 run's epochs are shifted to follow its stage-1 run of the same seed (its defer_epoch
    is then the stage boundary); a post-hoc strategy, whose records are its base run's, is left out.
    Returns the records, each strategy's (defer epoch, what starts there) where it has one, and a
    note per strategy left out.
    """
    histories = list(histories)
    lengths = {(h["strategy"]["name"], h["seed"]): len(h["epochs"]) for h in histories}
    curves: dict[str, list] = {name: [] for name in strategies}
    defer_epochs, left_out = {}, []
    for h in histories:
        name, params = h["strategy"]["name"], h["strategy"]["params"]
        if "base" in params:
            note = f"{name}: post-hoc on {params['base']}"
            left_out += [note] if note not in left_out else []
            continue
        offset = lengths.get((params["stage1"], h["seed"]), 0) if "stage1" in params else 0
        curves[name].append([{**e, "epoch": e["epoch"] + offset} for e in h["epochs"]])
        if "stage1" in params:
            defer_epochs[name] = (offset, f"stage 2 from epoch {offset + 1}")
        elif defer_epoch(h):
            defer_epochs[name] = (defer_epoch(h), f"deferred from epoch {defer_epoch(h) + 1}")
    return {name: runs for name, runs in curves.items() if runs}, defer_epochs, left_out


def benchmark_curves_figure(curves: dict[str, list[list[dict[str, Any]]]], defer_epochs: dict[str, tuple[int, str]],
                            styles: dict[str, Style], num_classes: int, title: str,
                            left_out: Sequence[str] = ()) -> Figure:
    """Test accuracy (0-100, chance line) and training loss against the epoch, all strategies overlaid:
    mean over seeds as a line, min-max over seeds as a band; a dotted line in the strategy's colour
    marks where its deferred schedule (or stage 2) starts."""
    fig = Figure(figsize=(13, 4.8 if len(curves) <= SHORT_LEGEND else 6.5), layout="constrained")
    acc_ax, loss_ax = fig.subplots(1, 2)
    all_x: set[int] = set()
    for name, runs in curves.items():
        length = min(len(run) for run in runs)  # runs of one strategy share a recipe; guard anyway
        x = [e["epoch"] for e in runs[0][:length]]
        all_x.update(x)
        marker = {"marker": "." if len(x) <= 20 else None, "linewidth": 1.6}
        label = f"{name} ({plural(len(runs), 'seed')})"
        if name in defer_epochs:
            epoch, what = defer_epochs[name]
            label += f"\n  {what}"
            for ax in (acc_ax, loss_ax):
                mark_defer_epoch(ax, epoch, styles[name])
        band_line(acc_ax, x, [[e["test_acc"] for e in run[:length]] for run in runs], styles[name], label, **marker)
        band_line(loss_ax, x, [[e["train_loss"] for e in run[:length]] for run in runs], styles[name], **marker)
    accuracy_axis(acc_ax, num_classes)
    acc_ax.set_title("Test accuracy (balanced test set)")
    loss_ax.set(ylabel="training loss (mean over the epoch)", title="Training loss (each strategy's own loss)")
    for ax in (acc_ax, loss_ax):
        epoch_axis(ax, sorted(all_x))
    note = "lines: mean over seeds\nbands: min-max over seeds\ndotted: deferred schedule\nor stage 2 begins"
    if left_out:
        note += "\nnot drawn (no curves of its own):\n" + "\n".join(left_out)
    handles, labels = acc_ax.get_legend_handles_labels()
    loss_ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=9, title_fontsize=8,
                   alignment="left", title=note)
    fig.suptitle(f"{title}: learning curves")
    return fig


def by_size(acc: np.ndarray, counts: np.ndarray, sizes: np.ndarray, window: int) -> np.ndarray:
    """Per-class values averaged over classes of each size in ``sizes``, then smoothed over ``window`` sizes."""
    return rolling_mean(np.array([acc[counts == s].mean() for s in sizes]), window)


def per_class_figure(per_class: dict[str, list[list[float]]], class_counts: Sequence[int],
                     styles: dict[str, Style], title: str, reference: str | None = None) -> Figure:
    """Top: per-class test accuracy against training-set size (log axis, head on the left), one line per
    strategy with a band over seeds. Bottom, where ``reference`` has runs: each other strategy's per-class
    accuracy minus the reference's (mean over seeds), so tail gains and head losses read off the zero line.

    Lines average the classes of equal size and, above 20 classes, smooth over ``smoothing_window``
    neighbouring sizes (the band is the min-max over seeds of each seed's line); dots are single classes.
    """
    counts = np.asarray(class_counts, dtype=float)
    sizes = np.unique(counts)[::-1]
    window = smoothing_window(len(counts))
    dot_alpha = 0.35 if len(per_class) <= 6 else 0.15
    with_diff = reference in per_class and len(per_class) > 1
    fig = Figure(figsize=(9.5, (8 if with_diff else 5) + (1.5 if len(per_class) > 12 else 0)), layout="constrained")
    axes = fig.subplots(2 if with_diff else 1, 1, sharex=True, squeeze=False,
                        height_ratios=[3, 2] if with_diff else [1])[:, 0]
    acc_ax = axes[0]
    line = {"linewidth": 2, "marker": "o" if window == 1 else None, "markersize": 4}
    means = {name: np.mean(runs, axis=0) for name, runs in per_class.items()}
    for name, runs in per_class.items():
        acc_ax.scatter(counts, means[name], s=12, color=styles[name].color, alpha=dot_alpha, linewidths=0)
        band_line(acc_ax, sizes, [by_size(np.asarray(r), counts, sizes, window) for r in runs], styles[name],
                  f"{name} ({plural(len(runs), 'seed')})", **line)
    acc_ax.set_ylim(0, 100)
    acc_ax.set(ylabel="test accuracy of the class (%)", title=f"{title}\nper-class accuracy at the best epoch")
    if with_diff:
        diff_panel(axes[1], means, reference, counts, sizes, window, styles, dot_alpha, line)
    size_axis(axes[-1], "x", class_counts)
    axes[-1].invert_xaxis()
    axes[-1].set_xlabel("training images of the class (log scale; head on the left, tail on the right)")
    for ax in axes:
        ax.grid(alpha=0.3)
    note = "dots: classes, mean over seeds\nlines: " + (
        "mean over classes of a size" if window == 1 else f"moving average over\n{window} class sizes")
    outside_legend(acc_ax, title=note + "\nbands: min-max over seeds")
    return fig


def diff_panel(ax, means: dict[str, np.ndarray], reference: str, counts: np.ndarray, sizes: np.ndarray,
               window: int, styles: dict[str, Style], dot_alpha: float, line: dict[str, Any]) -> None:
    """Per-class accuracy minus the reference strategy's (both means over seeds), one line per other
    strategy, with a black zero line; the y range is symmetric so gains and losses look alike."""
    ax.axhline(0, color="black", linewidth=1.2, zorder=1)
    spread = 5.0
    for name, mean in means.items():
        if name == reference:
            continue
        diff = mean - means[reference]
        spread = max(spread, float(np.abs(diff).max()))
        ax.scatter(counts, diff, s=12, color=styles[name].color, alpha=dot_alpha, linewidths=0)
        ax.plot(sizes, by_size(diff, counts, sizes, window), color=styles[name].color,
                linestyle=styles[name].linestyle, **line)
    ax.set_ylim(-1.08 * spread, 1.08 * spread)
    ax.set(ylabel=f"accuracy \u2212 {reference} (points)",
           title=f"difference to {reference} per class (above 0: better than {reference})")
    ax.text(0.99, 0.97, f"gains over {reference}", transform=ax.transAxes, ha="right", va="top", fontsize=8,
            color="0.3")
    ax.text(0.99, 0.03, f"losses to {reference}", transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            color="0.3")


def shot_figure(shots: dict[str, list[dict[str, float | None]]], class_counts: Sequence[int],
                styles: dict[str, Style], title: str) -> Figure:
    """Grouped bars of many/medium/few-shot accuracy per strategy: the mean over seeds, with each seed's
    value as a black dot (more than one seed). The axis is 0-100, so nothing leaves it.

    Up to 6 strategies each bar is labelled with its mean, inside the axes.
    """
    groups = [shot_group(c) for c in class_counts]
    labelled = len(shots) <= 6
    fig = Figure(figsize=(9 if labelled else 12, 4.5 if len(shots) <= SHORT_LEGEND else 6.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(shots))
    x = np.arange(len(GROUPS))
    for i, (name, runs) in enumerate(shots.items()):
        values = np.array([[np.nan if r[g] is None else r[g] for g in GROUPS] for r in runs], dtype=float)
        mean = values.mean(axis=0)
        has = ~np.isnan(mean)  # a group without classes gets no bar
        xs = x[has] + (i - (len(shots) - 1) / 2) * width
        ax.bar(xs, mean[has], width, color=styles[name].color, hatch=styles[name].hatch, edgecolor="white",
               linewidth=0, label=f"{name} ({plural(len(runs), 'seed')})")
        if len(runs) > 1:
            for seed_values in values[:, has]:
                ax.scatter(xs, seed_values, s=10, color="black", zorder=3, linewidths=0, clip_on=False)
        if labelled:
            bar_labels(ax, xs, mean[has], np.nanmax(values[:, has], axis=0))
    tick_labels = [f"{g}-shot\n({SHOT_RULES[g]} images)\n{plural(groups.count(g), 'class')}" for g in GROUPS]
    ax.set_xticks(x, tick_labels)
    ax.set_xlim(-0.5, len(GROUPS) - 0.5)
    ax.set_ylim(0, 100)
    dots = " (dots: seeds)" if any(len(runs) > 1 for runs in shots.values()) else ""
    ax.set(ylabel="test accuracy at the best epoch (%)", title=f"{title}\nshot-group accuracy, mean over seeds{dots}")
    ax.grid(alpha=0.3, axis="y")
    outside_legend(ax)
    return fig


def difference_figure(runs: dict[str, list[dict[str, Any]]], reference: str, styles: dict[str, Style],
                      title: str) -> Figure:
    """Per strategy other than ``reference`` (one row each, in config order): its class-balanced accuracy minus
    the reference's, paired by seed, d_s = x_s - r_s over the seeds both have (``best_balanced_acc`` of the
    metrics records ``runs`` {strategy: records}); the mean of d_s with its 95% t-interval
    (``stats.paired_difference``) as a bar, each d_s as a dot, and a zero line. Without the reference's runs
    the figure says so."""
    from ltbench.evaluation import stats

    def by_seed(name: str) -> dict[int, float]:
        return {int(r["seed"]): float(r["best_balanced_acc"]) for r in runs.get(name, [])}

    others = [name for name in runs if name != reference]
    fig = Figure(figsize=(8, 1.2 + 0.45 * max(1, len(others))), layout="constrained")
    ax = fig.subplots()
    fig.suptitle(f"{title}: class-balanced accuracy minus {reference}'s, paired by seed\n"
                 "diamond: mean, bar: 95% t-interval, dots: seeds", fontsize=10)
    ax.set(xlabel=f"difference to {reference}, points (above 0: better)")
    if reference not in runs or not others:
        ax.text(0.5, 0.5, f"no runs of {reference} to compare with" if others else "no other strategy",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return fig
    ref = by_seed(reference)
    ax.axvline(0, color="black", linewidth=1.2, zorder=1)
    labels = []
    for y, name in enumerate(others):
        mine = by_seed(name)
        diff = stats.paired_difference(mine, ref)
        seeds = [mine[s] - ref[s] for s in sorted(set(mine) & set(ref))]
        color = styles[name].color
        if not np.isnan(diff.lo):
            ax.plot([diff.lo, diff.hi], [y, y], color=color, linewidth=3, solid_capstyle="butt", alpha=0.6)
        ax.plot([diff.mean], [y], marker="D", color=color, markersize=7)
        ax.scatter(seeds, [y] * len(seeds), s=14, color="black", zorder=3, linewidths=0)
        labels.append(f"{name}  {diff.mean:+.2f}" + ("" if np.isnan(diff.lo) else f" [{diff.lo:+.2f}, {diff.hi:+.2f}]")
                      + f" (n={diff.n})")
    ax.set_yticks(range(len(others)), labels, fontsize=8)
    ax.set_ylim(len(others) - 0.5, -0.5)
    ax.grid(alpha=0.3, axis="x")
    return fig


def bar_labels(ax, xs: np.ndarray, means: np.ndarray, tops: np.ndarray) -> None:
    """Each bar's mean as text above its highest point, or just inside the bar's top where that would
    leave the 0-100 axis."""
    for xi, value, top in zip(xs, means, tops):
        above = top <= 92
        ax.text(xi, top + 1 if above else value - 1.5, f"{value:.1f}", ha="center", va="bottom" if above else "top",
                fontsize=7, bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "alpha": 0.7, "linewidth": 0})


def prior_label(signed_ratio: int) -> str:
    """A ``priors.SWEEP`` point's tick: its imbalance ratio ('50'), 'uniform' for ratio 1."""
    return "uniform" if signed_ratio == 1 else str(abs(signed_ratio))


# A reliability line joins only bins holding at least this share of the images: a bin of one or two images
# has an accuracy of 0 or 100% that says nothing and would dominate the line (it is still drawn as a point).
LINE_BIN_SHARE = 0.001


def pooled_reliability(diagrams: Sequence[dict[str, list]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seeds' reliability diagrams (``calibration.reliability``) merged: per bin the images summed and the
    accuracy and confidence averaged weighted by images (nan for an empty bin)."""
    count = np.sum([d["count"] for d in diagrams], axis=0).astype(float)

    def weighted(key: str) -> np.ndarray:
        values = np.array([[np.nan if v is None else v for v in d[key]] for d in diagrams], dtype=float)
        weights = np.array([d["count"] for d in diagrams], dtype=float)
        with np.errstate(invalid="ignore"):
            return np.nansum(values * weights, axis=0) / count

    return count, weighted("confidence"), weighted("accuracy")


def robustness_figure(records: dict[str, list[dict[str, Any]]], class_counts: Sequence[int],
                      styles: dict[str, Style], title: str) -> Figure:
    """Left: best-epoch accuracy on test sets whose class prior runs from backward long-tailed (ratio 50, the
    tail most frequent) through uniform to forward (ratio 50, the training order), exact from the per-class
    accuracies (``priors.prior_accuracy``), one line per strategy (mean over seeds, band min-max). Right: the
    reliability diagrams overlaid (accuracy against mean confidence per confidence bin, seeds pooled; points
    sized by images; the line skips bins under ``LINE_BIN_SHARE`` of the images), the diagonal perfect
    calibration, the mean ECE in the legend."""
    columns = 1 if len(records) <= SHORT_LEGEND else 2  # two-line entries: a second column keeps the axes tall
    fig = Figure(figsize=(13 + 3 * (columns - 1), 5 if columns == 1 else 6.5), layout="constrained")
    prior_ax, rel_ax = fig.subplots(1, 2)
    x = np.arange(len(priors.SWEEP))
    sweep = [priors.signed_prior(class_counts, r) for r in priors.SWEEP]
    rel_ax.plot([0, 100], [0, 100], color="0.4", linestyle="--", linewidth=1, zorder=0)
    for name, runs in records.items():
        values = [[priors.prior_accuracy(r["best_per_class_acc"], prior) for prior in sweep] for r in runs]
        band_line(prior_ax, x, values, styles[name], marker="o", markersize=4, linewidth=1.6)
        calibrated = [r for r in runs if r["best_reliability"] is not None]  # none where the logits diverged
        label = f"{name} ({plural(len(runs), 'seed')})"
        if not calibrated:
            prior_ax.plot([], [], color=styles[name].color, label=f"{label}\n  no finite logits")
            continue
        count, conf, acc = pooled_reliability([r["best_reliability"] for r in calibrated])
        seen, full = count > 0, count >= LINE_BIN_SHARE * count.sum()
        ece = np.mean([r["best_ece"] for r in calibrated])
        rel_ax.plot(conf[full], acc[full], color=styles[name].color, linestyle=styles[name].linestyle,
                    linewidth=1.2, label=f"{label}\n  ECE {ece:.1f}%" + (
                        f" ({len(calibrated)} with finite logits)" if len(calibrated) < len(runs) else ""))
        rel_ax.scatter(conf[seen], acc[seen], s=8 + 150 * count[seen] / count.sum(), color=styles[name].color,
                       alpha=0.7, linewidths=0)
    prior_ax.axvline(x[list(priors.SWEEP).index(1)], color="0.5", linestyle=":", linewidth=1, zorder=0)
    prior_ax.set_xticks(x, [prior_label(r) for r in priors.SWEEP], fontsize=8)
    prior_ax.set_xlim(x[0] - 0.3, x[-1] + 0.3)
    accuracy_axis(prior_ax, len(class_counts))
    prior_ax.set(xlabel="imbalance ratio of the test prior\n\u2190 backward: tail most frequent    "
                        "forward: head most frequent (training order) \u2192",
                 title="Accuracy under long-tailed test priors (best epoch)")
    prior_ax.grid(alpha=0.3)
    rel_ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="mean top-1 confidence in the bin (%)",
               ylabel="accuracy in the bin (%)",
               title=f"Reliability ({calibration.BINS} confidence bins, seeds pooled)")
    rel_ax.grid(alpha=0.3)
    rel_ax.text(98, 2, "below the diagonal: over-confident", ha="right", va="bottom", fontsize=8, color="0.3")
    handles, labels = [sum(pair, []) for pair in zip(rel_ax.get_legend_handles_labels(), prior_ax.get_legend_handles_labels())]
    rel_ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=9, title_fontsize=9,
                  alignment="left", ncols=columns, title="left: mean over seeds,\nband min-max over seeds\nright: points sized by images,\nlines skip bins under 0.1% of them")
    fig.suptitle(f"{title}: accuracy across test distributions, and calibration")
    return fig


# ---------------------------------------------------------------- per dataset


def class_histogram_figure(class_counts: Sequence[int], classes: Sequence[str], title: str) -> Figure:
    """Training images per class (log axis) in class order, coloured by shot group."""
    group_colors = {"many": "#4C72B0", "medium": "#8C8C8C", "few": "#DD8452"}
    groups = [shot_group(c) for c in class_counts]
    fig = Figure(figsize=(10 if len(classes) > LABELLED_CLASSES else 7, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.bar(np.arange(len(class_counts)), class_counts, width=0.85, color=[group_colors[g] for g in groups])
    legend = [Patch(color=group_colors[g], label=f"{g}-shot ({SHOT_RULES[g]} images): {plural(groups.count(g), 'class')}")
              for g in GROUPS]
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
