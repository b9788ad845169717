"""Sweep figures: accuracy across a grid's values (ltbench.grids), from the runs' metrics.json records.

- ``ratio_figure``: a benchmark grid over imbalance ratios. One panel per accuracy (all classes, then
  many / medium / few-shot), the ratio on a log axis, one line per strategy (mean over seeds, band
  min-max over seeds); with an architecture grid too, one row of panels per architecture.
- ``param_figure``: a strategy grid. One panel per benchmark, all-class accuracy against the swept
  parameter's value (the values evenly spaced, in increasing order: 0.9, 0.99, 0.999 and 0.9999 would
  crowd on any plain axis), one line per combination of the grid's other parameters, and the table's
  reference strategy (not swept) as a horizontal line with its min-max band.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from ltbench.reporting import plots
from ltbench.grids import value_tag

# What each panel of a ratio sweep shows: the record's key (best epoch) and, for a shot group, its name.
ACCURACIES = (("all classes", "best_balanced_acc", None), ("many-shot", "best_shot_acc", "many"),
              ("medium-shot", "best_shot_acc", "medium"), ("few-shot", "best_shot_acc", "few"))


def accuracy(record: dict[str, Any], key: str, group: str | None) -> float | None:
    """The record's best-epoch accuracy ``key`` (of shot ``group`` if given); None where the group is empty."""
    value = record[key]
    return value.get(group) if group else value


def by_value(records: Sequence[dict[str, Any]], x_of) -> tuple[list[float], list[list[dict[str, Any]]]]:
    """The records grouped by ``x_of(record)``, in increasing x: (xs, records at each x)."""
    groups: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[float(x_of(record))].append(record)
    xs = sorted(groups)
    return xs, [groups[x] for x in xs]


def sweep_line(ax, xs: list[float], groups: list[list[dict[str, Any]]], key: str, group: str | None,
               style: plots.Style, label: str) -> None:
    """Mean over seeds at each x with its min-max band; points where a shot group is empty are left out."""
    points = [(x, [v for r in runs if (v := accuracy(r, key, group)) is not None]) for x, runs in zip(xs, groups)]
    points = [(x, values) for x, values in points if values]
    if not points:
        return
    x = np.array([p[0] for p in points])
    mean = np.array([np.mean(p[1]) for p in points])
    lo, hi = np.array([min(p[1]) for p in points]), np.array([max(p[1]) for p in points])
    ax.fill_between(x, lo, hi, color=style.color, alpha=0.15, linewidth=0)
    ax.plot(x, mean, color=style.color, linestyle=style.linestyle, marker="o", markersize=4, label=label)


def log_axis_if_wide(ax, xs: Sequence[float]) -> str:
    """A log x axis where every value is positive and they span a factor of 10 or more; ticks at the values.
    Returns what the axis label should add: " (log scale)" or nothing."""
    wide = min(xs) > 0 and max(xs) / min(xs) >= 10
    if wide:
        ax.set_xscale("log")
    ax.set_xticks(list(xs), [value_tag(x) for x in xs])
    ax.minorticks_off()
    return " (log scale)" if wide else ""


def mark_empty(ax, title: str) -> None:
    """Say in an empty panel that no class falls in its group (a benchmark without few-shot classes)."""
    if not ax.lines[1:]:  # only the chance line
        ax.text(0.5, 0.5, f"no {title} class", transform=ax.transAxes, ha="center", va="center", color="0.4")


def ratio_figure(records: Sequence[dict[str, Any]], strategies: Sequence[str], grid: str) -> Figure:
    """The ratio sweep of benchmark grid ``grid`` (see the module docstring) from its runs' records; runs at
    the ``natural`` ratio (no number) are left out."""
    records = [r for r in records if isinstance(r["imbalance_ratio"], (int, float))]
    archs = list(dict.fromkeys(r["arch"] for r in records))
    styles = plots.strategy_styles(strategies)
    fig = Figure(figsize=(16, 3.8 * len(archs) + 0.8), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(archs), len(ACCURACIES), sharex=True, squeeze=False))
    ratios = sorted({float(r["imbalance_ratio"]) for r in records})
    for row, arch in zip(axes, archs):
        for ax, (title, key, group) in zip(row, ACCURACIES):
            for name in strategies:
                mine = [r for r in records if r["strategy"] == name and r["arch"] == arch]
                if mine:
                    xs, groups = by_value(mine, lambda r: r["imbalance_ratio"])
                    sweep_line(ax, xs, groups, key, group, styles[name], name)
            plots.accuracy_axis(ax, records[0]["num_classes"])
            mark_empty(ax, title)
            scale = log_axis_if_wide(ax, ratios)
            ax.set(title=f"{arch}: {title}" if len(archs) > 1 else title, xlabel=f"imbalance ratio{scale}")
            ax.grid(alpha=0.3)
        row[0].set_ylabel("best-epoch test accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=9, title="mean over seeds,\nband min-max")
    fig.suptitle(f"{grid}: accuracy across imbalance ratios (shot groups from each ratio's class counts)")
    return fig


def param_figure(records: Sequence[dict[str, Any]], sweeps: dict[str, dict[str, Any]], benchmarks: Sequence[str],
                 reference: str | None, grid: str) -> Figure:
    """The parameter sweep of strategy grid ``grid`` (see the module docstring): ``records`` are its entries'
    runs and the reference strategy's; ``sweeps`` maps each entry to its ``{"params": {key: value}}``."""
    entries = [name for name, origin in sweeps.items() if origin["grid"] == grid]
    swept = list(sweeps[entries[0]]["params"])
    x_key, others = swept[0], swept[1:]
    lines: dict[str, list[str]] = defaultdict(list)  # a line per combination of the other parameters
    for name in entries:
        rest = sweeps[name]["params"]
        lines[", ".join(f"{k}={value_tag(rest[k])}" for k in others) or grid].append(name)
    styles = plots.strategy_styles(list(lines))
    benchmarks = [b for b in benchmarks if any(r["benchmark"] == b for r in records)]
    fig = Figure(figsize=(5.2 * len(benchmarks) + 2.5, 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(benchmarks), squeeze=False)[0])
    # the swept values in increasing order (numbers) or as the grid lists them (anything else), evenly spaced
    values = list(dict.fromkeys(value_tag(sweeps[n]["params"][x_key]) for n in entries))
    if all(isinstance(sweeps[n]["params"][x_key], (int, float)) and not isinstance(sweeps[n]["params"][x_key], bool)
           for n in entries):
        values.sort(key=float)
    for ax, bench in zip(axes, benchmarks):
        mine = [r for r in records if r["benchmark"] == bench]
        for label, names in lines.items():
            runs = [r for r in mine if r["strategy"] in names]
            if runs:  # x: the value's position among the grid's values
                xs, groups = by_value(runs, lambda r: values.index(value_tag(sweeps[r["strategy"]]["params"][x_key])))
                sweep_line(ax, xs, groups, "best_balanced_acc", None, styles[label], label)
        base = [r["best_balanced_acc"] for r in mine if r["strategy"] == reference]
        if base:
            ax.axhspan(min(base), max(base), color="0.5", alpha=0.15, linewidth=0)
            ax.axhline(float(np.mean(base)), color="0.3", linestyle="--", linewidth=1.2,
                       label=f"{reference} (not swept; {plots.plural(len(base), 'seed')})")
        plots.accuracy_axis(ax, mine[0]["num_classes"])
        ax.set_xticks(range(len(values)), values)
        ax.set_xlim(-0.3, len(values) - 0.7)
        ax.set(title=bench, xlabel=f"{x_key} (values evenly spaced)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("best-epoch test accuracy, all classes (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=9, title="mean over seeds,\nband min-max")
    fig.suptitle(f"{grid}: accuracy against {x_key}", x=0.01, ha="left")  # clear of the legend at the right
    return fig
