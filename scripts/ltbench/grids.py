"""Grids in the config: a list where one value is expected expands into one named entry per value.

- A benchmark whose ``imbalance_ratio`` and/or ``arch`` is a list becomes one benchmark per combination,
  named ``<name>[-<arch>][-r<ratio>]`` (the parts that are lists): ``resnet8-cifar10lt: {imbalance_ratio:
  [10, 100]}`` gives ``resnet8-cifar10lt-r10`` and ``resnet8-cifar10lt-r100``.
- A strategy with list-valued parameters becomes one strategy per combination, named
  ``<name>-<param><value>...``, the parameters in alphabetical order: ``effective_number: {beta: [0.9, 0.99]}`` gives
  ``effective_number-beta0.9`` and ``effective_number-beta0.99``. (No strategy parameter takes a list:
  ``ltbench.params``.) A post-hoc or stage-2 grid builds every entry on the same upstream strategy.
- ``matrix`` entries that name a grid stand for all its entries, in order.

Each entry is then an ordinary benchmark or strategy: checked at ``snakemake --dry-run`` under its own
name (so an error names the entry and its value), trained by its own jobs, in the table and the report.
Names depend only on the values, so adding a value adds only its runs and removing one retrains nothing.
``config["sweeps"]`` records what each entry came from, for the sweep figures.
"""

from __future__ import annotations

import itertools
from typing import Any

from ltbench.config import ConfigError, format_ratio

BENCHMARK_AXES = ("arch", "imbalance_ratio")


def value_tag(value: Any) -> str:
    """A value as it appears in an entry's name: ``0.99 -> '0.99'``, ``1.0 -> '1'``, ``True -> 'true'``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return format_ratio(value)
    return str(value)


def _values(kind: str, name: str, key: str, values: list) -> list:
    """``values`` after checking that the list is non-empty, holds no list and no value twice."""
    where = f"{kind} {name!r}: {key}"
    if not values:
        raise ConfigError(f"{where} is an empty list; a grid needs at least one value")
    if any(isinstance(v, (list, dict)) for v in values):
        raise ConfigError(f"{where}: a grid's values must be single values, got {values!r}")
    tags = [value_tag(v) for v in values]
    twice = sorted({t for t in tags if tags.count(t) > 1})
    if twice:
        raise ConfigError(f"{where} lists {', '.join(twice)} more than once")
    return values


def _add(kind: str, grid: str, out: dict[str, Any], configured: dict[str, Any], name: str, entry: Any) -> None:
    """Put the expanded ``entry`` under ``name``, unless the config already defines that name."""
    if name in configured or name in out:
        raise ConfigError(f"{kind} grid {grid!r} expands to {name!r}, which the config defines already")
    out[name] = entry


def expand_benchmarks(benchmarks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(benchmarks with every grid expanded, {expanded name: {"grid": name, "arch": ..., "imbalance_ratio": ...}})."""
    out: dict[str, Any] = {}
    sweeps: dict[str, dict[str, Any]] = {}
    for name, entry in benchmarks.items():
        axes = [key for key in BENCHMARK_AXES if isinstance(entry.get(key), list)]
        if not axes:
            out[name] = entry
            continue
        lists = {key: _values("benchmark", name, key, entry[key]) if key in axes else [entry[key]]
                 for key in BENCHMARK_AXES}
        for arch, ratio in itertools.product(lists["arch"], lists["imbalance_ratio"]):
            new = name + (f"-{arch}" if "arch" in axes else "") + (f"-r{value_tag(ratio)}" if "imbalance_ratio" in axes else "")
            _add("benchmark", name, out, benchmarks, new, {**entry, "arch": arch, "imbalance_ratio": ratio})
            sweeps[new] = {"grid": name, "arch": arch, "imbalance_ratio": ratio}
    return out, sweeps


def expand_strategies(strategies: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(strategies with every grid expanded, {expanded name: {"grid": name, "params": {key: value}}})."""
    out: dict[str, Any] = {}
    sweeps: dict[str, dict[str, Any]] = {}
    for name, entry in strategies.items():
        entry = entry or {}
        axes = sorted(key for key, value in entry.items() if isinstance(value, list))  # names: not the keys' order
        if not axes:
            out[name] = entry
            continue
        for values in itertools.product(*(_values("strategy", name, key, entry[key]) for key in axes)):
            chosen = dict(zip(axes, values))
            new = name + "".join(f"-{key}{value_tag(value)}" for key, value in chosen.items())
            _add("strategy", name, out, strategies, new, {**entry, **chosen, **({} if "module" in entry else {"module": name})})
            sweeps[new] = {"grid": name, "params": chosen}
    return out, sweeps


def _members(grids: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """{grid name: its expanded entries, in order}."""
    members: dict[str, list[str]] = {}
    for name, origin in grids.items():
        members.setdefault(origin["grid"], []).append(name)
    return members


def expand(config: dict[str, Any]) -> dict[str, Any]:
    """Expand every grid of ``config`` in place (see the module docstring) and return it. ``ConfigError``
    where a strategy builds on a grid or the table's reference names one (each must be one entry)."""
    benchmarks, bench_sweeps = expand_benchmarks(config.get("benchmarks", {}))
    strategies, strat_sweeps = expand_strategies(config.get("strategies", {}))
    if not bench_sweeps and not strat_sweeps:
        return config
    bench_members, strat_members = _members(bench_sweeps), _members(strat_sweeps)
    for name, entry in strategies.items():
        upstream = (entry or {}).get("stage1", (entry or {}).get("base"))
        if upstream in strat_members:
            raise ConfigError(f"strategy {name!r} builds on {upstream!r}, a grid; name one of its entries:"
                              f" {', '.join(strat_members[upstream])}")
    reference = config.get("table", {}).get("reference")
    if reference in strat_members:
        raise ConfigError(f"table: reference {reference!r} is a grid; name one of its entries:"
                          f" {', '.join(strat_members[reference])}")
    config["benchmarks"], config["strategies"] = benchmarks, strategies
    matrix = config.get("matrix", {})
    for key, members in (("benchmarks", bench_members), ("strategies", strat_members)):
        if key in matrix:
            matrix[key] = list(dict.fromkeys(m for name in matrix[key] for m in members.get(name, [name])))
    sweeps = config.setdefault("sweeps", {"benchmarks": {}, "strategies": {}})
    sweeps["benchmarks"].update(bench_sweeps)
    sweeps["strategies"].update(strat_sweeps)
    return config


def origins(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``config["sweeps"]`` (what each expanded entry came from), empty for a config without grids."""
    return config.get("sweeps", {"benchmarks": {}, "strategies": {}})


def members(sweeps: dict[str, dict[str, Any]], kind: str, grid: str, selected: list[str]) -> list[str]:
    """The entries of grid ``grid`` (``kind``: benchmarks or strategies) that ``selected`` holds, in its order."""
    return [name for name in selected if sweeps[kind].get(name, {}).get("grid") == grid]


def ratio_grids(sweeps: dict[str, dict[str, Any]], benchmarks: list[str]) -> list[str]:
    """The benchmark grids whose entries among ``benchmarks`` span two imbalance ratios or more (a ratio sweep)."""
    grids = dict.fromkeys(o["grid"] for o in sweeps["benchmarks"].values())
    return [grid for grid in grids
            if len({sweeps["benchmarks"][b]["imbalance_ratio"] for b in members(sweeps, "benchmarks", grid, benchmarks)}) > 1]


def ratio_grid_members(sweeps: dict[str, dict[str, Any]], benchmarks: list[str]) -> dict[str, list[str]]:
    """{ratio grid (``ratio_grids``): its entries among ``benchmarks``, in order}: the columns of the table's
    ratio sections."""
    return {grid: members(sweeps, "benchmarks", grid, benchmarks) for grid in ratio_grids(sweeps, benchmarks)}


def param_grids(sweeps: dict[str, dict[str, Any]], strategies: list[str]) -> list[str]:
    """The strategy grids with an entry among ``strategies`` (a parameter sweep)."""
    return list(dict.fromkeys(o["grid"] for name, o in sweeps["strategies"].items() if name in strategies))
