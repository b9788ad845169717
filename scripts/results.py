"""Move results made on a lent GPU into the repository, and publish runs under docs/results/.

    python scripts/results.py import runs-*.tar.gz  # the device's runs -> results/runs/, then a dry-run check
    snakemake --cores 2 results/table.md --config 'matrix={...}' 'seeds=[...]'   # the command import prints
    python scripts/results.py publish              # results/runs/*/metrics.json -> docs/results/
    python scripts/results.py --config configs/cpu.yaml publish --docs docs/results/cpu  # the CPU-scale runs
    python scripts/results.py --config docs/novel-strategy.yaml select --candidates novel_...  # the protocol's choice
    python scripts/results.py fidelity docs/results/cpu docs/results  # CPU-scale verdicts against the full recipe's

``import`` takes the archives that a lent GPU's call (``scripts/speed/loan.py``) brings back (runs filled
into archives of at most 15.5 MiB by ``scripts/speed/pack_runs.py``; members
``results/runs/<benchmark>/<strategy>/seed<k>/{history.json,predictions.npz}``, and ``model.pt`` for a run
that a stage 2 builds on), writes their runs into the working tree and gives them the current time
as mtime, so that Snakemake does not take the local data (materialized earlier, hence older) or
scripts for newer inputs and retrain. It drops any record Snakemake kept of those files from a local
training (``--cleanup-metadata``), and gives a local training's model.pt and time record of the same
run the same time. Without a record only the mtime and missing-output triggers apply, and the dry run
that ``import`` ends with checks that none of the imported runs is retrained.

``publish`` copies the metrics.json and history.json of every run of the matrix's benchmarks (never
predictions.npz: it holds the test set's logits; runs of other benchmarks, another stage's, are left out
and named) to ``docs/results/runs/``, then rebuilds ``docs/results/table.{md,csv,tex}``
and the per-benchmark figures from *all* committed runs with the pipeline's own table and plot
code, and writes ``docs/results/README.md`` (the command that made the runs, and each unit's seeds,
commit, device, precision, torch, training time). Runs of another scale (the CPU-scale protocol of
``configs/cpu.yaml``) go to a folder of their own (``--docs``), so that no table mixes scales.
``select`` applies the research protocol's selection rule (``ltbench.reporting.selection``, docs/novel-strategy.md) to
the development runs published in ``--docs``, writes ``selection.md`` there and prints the selected
configuration; it refuses while any run of the stage's matrix is missing. ``compare`` writes
``comparison-<strategy>.md``: that strategy against each baseline, per benchmark and shot group, paired by seed.
``fidelity`` compares two published sets (folders such as ``docs/results/cpu`` and ``docs/results``) per data set and
imbalance ratio (``ltbench.reporting.fidelity``): Kendall's τ of their rankings, the signs of each strategy's difference to the
reference that agree, the correlation of those differences; it prints the markdown or writes it to ``--output``.
Run them from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ltbench import cli, grids
from ltbench import config as cfg
from ltbench.config import MODEL_FILE, RUN_FILES
from ltbench.io import atomic_path, read_json, write_text
from ltbench.reporting.table_text import listing

# Snakemake's time record of a local training job (its ``benchmark:`` file, per run or per packed job); Snakemake
# counts it among the job's outputs when it compares times (rules/train.smk)
TIMINGS = ("results/timings/train/{benchmark}/{strategy}/seed{seed}.tsv",
           "results/timings/train/{benchmark}/{strategy}/seeds.tsv")
PUBLISHED_FILES = ("metrics.json", "history.json")  # what a run leaves in docs/results/
PROVENANCE_KEYS = ("commit", "torch_version", "device_name", "train_seconds")
BENCHMARK_FIGURES = ("per_class", "shots", "curves", "robustness", "differences")  # rule plot_benchmark's outputs
RETRAINING_RULES = ("materialize", "train", "stage2", "posthoc")  # a dry run after import plans none
DOCS = Path("docs/results")
RUNS_ROOT = Path(cfg.RUN_DIR.split("{")[0])  # results/runs/


class ResultsError(RuntimeError):
    """An archive, a run or a metrics file that cannot be imported or published as it is."""


@dataclass(frozen=True, order=True)
class RunKey:
    """One run's identity, as in ``cfg.RUN_DIR``."""

    benchmark: str
    strategy: str
    seed: int

    @property
    def path(self) -> Path:
        """``results/runs/<benchmark>/<strategy>/seed<k>``."""
        return Path(cfg.RUN_DIR.format(benchmark=self.benchmark, strategy=self.strategy, seed=self.seed))

    def __str__(self) -> str:
        return f"{self.benchmark}/{self.strategy}/seed{self.seed}"


def _run_file_pattern() -> re.Pattern[str]:
    """``cfg.RUN_DIR`` + ``/<file>`` as a regex: one path component per name, a decimal seed."""
    template = re.escape(cfg.RUN_DIR)
    for name, regex in (("benchmark", r"(?P<benchmark>[^/]+)"), ("strategy", r"(?P<strategy>[^/]+)"),
                        ("seed", r"(?P<seed>0|[1-9]\d*)")):
        template = template.replace(re.escape("{" + name + "}"), regex)
    return re.compile(template + r"/(?P<file>[^/]+)")


RUN_FILE = _run_file_pattern()


# ---------------------------------------------------------------- import


def in_config_order(names: set[str], configured: list[str]) -> list[str]:
    """``names`` in config order, names the config does not know after them, sorted."""
    return [n for n in configured if n in names] + sorted(names - set(configured))


def member_run(member: tarfile.TarInfo) -> tuple[RunKey, str] | None:
    """The run and file name of an archive member; ``None`` for a directory on the way to a run file
    (``results``, ``results/runs/<b>``, ...). ``ResultsError`` names any other member: a path outside
    ``results/runs/``, with ``..`` or ``.`` components, a file other than ``RUN_FILES`` and ``MODEL_FILE``, a
    link or device."""
    name = member.name[2:] if member.name.startswith("./") else member.name
    parts = name.rstrip("/").split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ResultsError(f"archive member {member.name!r}: not a plain relative path")
    if member.isdir():
        depth = len(RUNS_ROOT.parts) + 3  # results/runs/<b>/<s>/seed<k>
        if parts[: len(RUNS_ROOT.parts)] == list(RUNS_ROOT.parts)[: len(parts)] and len(parts) <= depth:
            return None
        raise ResultsError(f"archive member {member.name!r}: a directory outside "
                           f"{RUNS_ROOT}/<benchmark>/<strategy>/seed<k>")
    match = RUN_FILE.fullmatch(name)
    if not match or match["file"] not in (*RUN_FILES, MODEL_FILE):
        raise ResultsError(f"archive member {member.name!r}: only {RUNS_ROOT}/<benchmark>/<strategy>/seed<k>/"
                           f"{{{','.join((*RUN_FILES, MODEL_FILE))}}} may be imported")
    if not member.isfile():
        raise ResultsError(f"archive member {member.name!r}: not a regular file (a link or device)")
    return RunKey(match["benchmark"], match["strategy"], int(match["seed"])), match["file"]


def read_archive(archive: Path) -> dict[RunKey, dict[str, bytes]]:
    """Every run in ``archive`` as {run: {file name: bytes}}, after checking every member
    (``member_run``) and that each run has all of ``RUN_FILES``; nothing is written."""
    runs: dict[RunKey, dict[str, bytes]] = {}
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                found = member_run(member)
                if found is not None:
                    key, name = found
                    runs.setdefault(key, {})[name] = tar.extractfile(member).read()
    except (OSError, tarfile.TarError) as err:
        raise ResultsError(f"cannot read the archive {archive}: {err}") from None
    if not runs:
        raise ResultsError(f"{archive}: no run files under {RUNS_ROOT}/")
    for key, files in runs.items():
        missing = [name for name in RUN_FILES if name not in files]
        if missing:
            raise ResultsError(f"{archive}: run {key} lacks {', '.join(missing)} (Snakemake would retrain it)")
    return runs


def check_history(key: RunKey, history: dict[str, Any]) -> None:
    """``ResultsError`` unless the run's history.json describes the run its path names."""
    found = (history.get("benchmark", {}).get("name"), history.get("strategy", {}).get("name"), history.get("seed"))
    if found != (key.benchmark, key.strategy, key.seed):
        raise ResultsError(f"{key}/history.json describes the run {found[0]}/{found[1]}/seed{found[2]}")


def check_data(key: RunKey, history: dict[str, Any]) -> str | None:
    """Compare the run's data checksums (provenance) with the local materialized subset: ``ResultsError``
    if they differ (it was trained on other data); a warning if the subset is not materialized here."""
    bench = history["benchmark"]
    data_id = cfg.Benchmark(bench["name"], bench["arch"], bench["dataset"],
                            cfg.parse_ratio(bench["imbalance_ratio"])).data_id
    index = Path(cfg.DATA_DIR.format(data_id=data_id)) / "index.json"
    if not index.is_file():
        return (f"{index} is missing: materialize it (snakemake --cores 2 {index.parent}/cache.npz) and import"
                f" again, so that the runs are newer than their data")
    if read_json(index)["checksums"] != history.get("provenance", {}).get("data_checksums"):
        raise ResultsError(f"{key} was trained on other data than {index.parent} (checksums differ)")
    return None


def timings(key: RunKey) -> list[Path]:
    """The time records of local training jobs that made ``key`` (``TIMINGS``) that exist here."""
    paths = (Path(t.format(benchmark=key.benchmark, strategy=key.strategy, seed=key.seed)) for t in TIMINGS)
    return [path for path in paths if path.is_file()]


def write_run(key: RunKey, files: dict[str, bytes], replace: bool) -> list[Path]:
    """Write one run's files atomically; identical files are left alone. A different existing run is
    replaced only with ``replace`` (then its model.pt, from the replaced training, is removed unless the
    archive brings the new one, and so is that training's time record)."""
    changed = [name for name, data in files.items()
               if not (key.path / name).is_file() or (key.path / name).read_bytes() != data]
    existing = [name for name in changed if (key.path / name).exists()]
    if existing and not replace:
        raise ResultsError(f"{key} already exists here with other {', '.join(existing)}; use --replace")
    if existing:
        for stale in timings(key):
            stale.unlink()
            print(f"removed {stale} (the time record of the replaced training)")
    if existing and MODEL_FILE not in files and (key.path / MODEL_FILE).exists():
        (key.path / MODEL_FILE).unlink()
        print(f"removed {key.path / 'model.pt'} (from the replaced training)")
    for name in changed:
        with atomic_path(key.path / name, suffix=Path(name).suffix) as tmp:
            tmp.write_bytes(files[name])
    return [key.path / name for name in files]


def import_runs(archives: list[Path], replace: bool = False) -> tuple[list[RunKey], list[str]]:
    """Check every archive whole, then write their runs under ``results/runs/`` and set every imported
    file's mtime to one current time (newer than the data and scripts, and equal between a post-hoc run and
    its base). A run found in two archives is an error. Returns the runs and warnings."""
    runs: dict[RunKey, dict[str, bytes]] = {}
    seen_in: dict[RunKey, Path] = {}
    for archive in archives:
        for key, files in read_archive(archive).items():
            if key in runs:
                raise ResultsError(f"run {key} is in both {seen_in[key]} and {archive}; import one of them")
            runs[key], seen_in[key] = files, archive
    warnings = []
    for key, files in sorted(runs.items()):
        history = json.loads(files["history.json"])
        check_history(key, history)
        if (warning := check_data(key, history)) and warning not in warnings:
            warnings.append(warning)
    written = [path for key, files in sorted(runs.items()) for path in write_run(key, files, replace)]
    # a model.pt or time record already here belongs to the same training (write_run removes those a replaced
    # run leaves): Snakemake counts them among the job's outputs, so they get the same time, or it would see
    # that job as outdated
    written += [key.path / MODEL_FILE for key in runs if (key.path / MODEL_FILE).is_file()]
    written += [path for key in runs for path in timings(key)]
    now = time.time_ns()
    for path in set(written):
        os.utime(path, ns=(now, now))
    return sorted(runs), warnings


def matrix_arg(config: dict[str, Any], runs: list[RunKey]) -> str:
    """The ``--config`` value that restricts Snakemake to the imported benchmarks and strategies (in config
    order). Seeds stay the config's: Snakemake reads ``--config`` lists as strings, which the schema refuses."""
    benchmarks = in_config_order({k.benchmark for k in runs}, list(config["benchmarks"]))
    strategies = in_config_order({k.strategy for k in runs}, list(config["strategies"]))
    return f"matrix={{benchmarks: [{', '.join(benchmarks)}], strategies: [{', '.join(strategies)}]}}"


def missing_runs(config: dict[str, Any], runs: list[RunKey]) -> list[str]:
    """The runs of that matrix (imported benchmarks x strategies x the config's seeds) not here: the table
    target would train them."""
    benchmarks, strategies = ({getattr(k, f) for k in runs} for f in ("benchmark", "strategy"))
    wanted = sorted(RunKey(b, s, int(n)) for b in benchmarks for s in strategies for n in config["seeds"])
    return [str(k) for k in wanted if not all((k.path / name).is_file() for name in RUN_FILES)]


def retraining_jobs(snakemake_args: list[str]) -> list[str]:
    """The jobs of ``RETRAINING_RULES`` a Snakemake dry run with ``snakemake_args`` plans, with their
    wildcards and reasons (empty: only metrics, table and figures would run)."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--dry-run", *snakemake_args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise ResultsError(f"the dry run failed:\n{proc.stdout}\n{proc.stderr}")
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout)
    return [block.strip() for block in blocks
            if (m := re.match(r"(?:local)?rule (\w+):", block)) and m[1] in RETRAINING_RULES]


def workflow_config(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The config Snakemake runs with, and the ``--configfile`` files that give it: config.yaml (which the
    Snakefile reads itself) with the other ``--config`` files merged in order."""
    base = Path("config.yaml").resolve()
    overlays = [path for path in cli.config_files(args) if Path(path).resolve() != base]
    return cli.load_config("config.yaml", *overlays), overlays


def forget_records(runs: list[RunKey], settings: list[str]) -> None:
    """Drop what Snakemake recorded here about the imported runs' files (``--cleanup-metadata``): they were
    made elsewhere, and a record of an earlier local training (its time, params, code) would make Snakemake
    judge them by it. Without a record Snakemake goes by the files' times, which ``import_runs`` set."""
    if not Path(".snakemake/metadata").is_dir():
        return
    paths = [str(key.path / name) for key in runs for name in (*RUN_FILES, MODEL_FILE) if (key.path / name).is_file()]
    proc = subprocess.run([sys.executable, "-m", "snakemake", *settings, "--cleanup-metadata", *paths],
                          capture_output=True, text=True)
    # it cleans every record there is, then names the files that had none: no record to drop is fine
    if proc.returncode != 0 and "because the metadata was not present" not in proc.stderr:
        raise ResultsError(f"snakemake --cleanup-metadata failed:\n{proc.stdout}\n{proc.stderr}")


def cmd_import(args: argparse.Namespace) -> int:
    """``import``: write the runs, print the command that makes their metrics and table, and (unless
    ``--no-check``) check with a dry run that making the imported runs' metrics retrains none of them."""
    runs, warnings = import_runs([Path(a) for a in args.archives], args.replace)
    config, overlays = workflow_config(args)
    print(f"imported {len(runs)} run(s): {', '.join(map(str, runs))}")
    for warning in warnings + [f"no run {k} here: the table target would train it" for k in missing_runs(config, runs)]:
        print(f"warning: {warning}", file=sys.stderr)
    settings = ["--config", matrix_arg(config, runs)] + (["--configfile", *overlays] if overlays else [])
    forget_records(runs, settings)
    print("next: snakemake --cores 2 " + shlex.join(["results/table.md", *settings]))
    if args.no_check:
        return 0
    jobs = retraining_jobs([*(f"{key.path}/metrics.json" for key in runs), *settings])
    if jobs:
        print("error: Snakemake would still (re)make these jobs; see their reasons:\n" + "\n\n".join(jobs),
              file=sys.stderr)
        return 1
    print("checked: a dry run for the imported runs' metrics plans no materialization, training or post-hoc job")
    return 0


# ---------------------------------------------------------------- publish


def local_runs() -> list[RunKey]:
    """Every run under ``results/runs/`` with a metrics.json."""
    found = []
    for path in RUNS_ROOT.glob("*/*/seed*/metrics.json"):
        match = RUN_FILE.fullmatch(path.as_posix())
        if match:
            found.append(RunKey(match["benchmark"], match["strategy"], int(match["seed"])))
    return sorted(found)


def check_provenance(where: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The run's provenance; ``ResultsError`` naming ``where`` if any of ``PROVENANCE_KEYS`` is absent."""
    prov = metrics.get("provenance") or {}
    missing = [k for k in PROVENANCE_KEYS if prov.get(k) in (None, "")]
    if missing:
        raise ResultsError(f"{where}: its provenance lacks {', '.join(missing)}; not publishing it")
    return prov


def publish_run(key: RunKey, docs: Path) -> None:
    """Copy the run's ``PUBLISHED_FILES`` to ``docs/runs/...`` (only where they differ); ``ResultsError`` if
    its metrics lack provenance or are older than its history (run the metrics step first)."""
    metrics_path = key.path / "metrics.json"
    check_provenance(str(metrics_path), read_json(metrics_path))
    if metrics_path.stat().st_mtime < (key.path / "history.json").stat().st_mtime:
        raise ResultsError(f"{metrics_path} is older than its history.json: run the metrics step first")
    target = docs / key.path.relative_to(RUNS_ROOT.parent)
    for name in PUBLISHED_FILES:
        data = (key.path / name).read_bytes()
        if not (target / name).is_file() or (target / name).read_bytes() != data:
            with atomic_path(target / name) as tmp:
                tmp.write_bytes(data)


def committed_metrics(docs: Path) -> dict[RunKey, dict[str, Any]]:
    """Every published run's metrics, checked for provenance."""
    records = {}
    for path in sorted((docs / "runs").glob("*/*/seed*/metrics.json")):
        metrics = read_json(path)
        check_provenance(str(path), metrics)
        records[RunKey(metrics["benchmark"], metrics["strategy"], int(metrics["seed"]))] = metrics
    return records


def published(docs: Path, key: RunKey, name: str) -> str:
    """Where the run's file ``name`` is published under ``docs``."""
    return str(docs / key.path.relative_to(RUNS_ROOT.parent) / name)


def build_tables_and_figures(docs: Path, records: dict[RunKey, dict[str, Any]], config: dict[str, Any]) -> None:
    """``docs/table.{csv,md,tex}``, ``docs/plots/benchmarks/<b>/<figure>.png`` (``BENCHMARK_FIGURES``) and the
    sweep figures of the config's grids (``sweep_figures``) from every published run, with the code of the
    rules ``table`` (with the ratio sections of the config's ratio grids), ``plot_benchmark`` and the sweep plots."""
    import make_table
    import plot_benchmark

    benchmarks = in_config_order({k.benchmark for k in records}, list(config["benchmarks"]))
    strategies = in_config_order({k.strategy for k in records}, list(config["strategies"]))
    reference = cfg.table_reference(config)
    make_table.make_table([published(docs, k, "metrics.json") for k in records], str(docs / "table.csv"),
                          str(docs / "table.md"), str(docs / "table.tex"), benchmarks, strategies, reference,
                          grids.ratio_grid_members(grids.origins(config), benchmarks))
    for bench in benchmarks:
        keys = [k for k in records if k.benchmark == bench]
        outputs = {name: str(docs / f"plots/benchmarks/{bench}/{name}.png") for name in BENCHMARK_FIGURES}
        plot_benchmark.plot_benchmark([published(docs, k, "metrics.json") for k in keys],
                                      [published(docs, k, "history.json") for k in keys], outputs, bench,
                                      in_config_order({k.strategy for k in keys}, strategies), reference)
    sweep_figures(docs, records, config, benchmarks, strategies, reference)


def sweep_figures(docs: Path, records: dict[RunKey, dict[str, Any]], config: dict[str, Any], benchmarks: list[str],
                  strategies: list[str], reference: str) -> None:
    """The workflow's sweep figures (rules ``plot_ratio_sweep``, ``plot_param_sweep``) of the config's grids with
    published runs, chosen as the rules choose them (``ltbench.grids.ratio_grid_members``, ``param_grids``):
    ``docs/plots/sweeps/benchmarks/<grid>.png`` and ``docs/plots/sweeps/strategies/<grid>.png``."""
    import plot_sweeps

    sweeps = grids.origins(config)
    for grid, mine in grids.ratio_grid_members(sweeps, benchmarks).items():
        plot_sweeps.plot_ratio_sweep([published(docs, k, "metrics.json") for k in records if k.benchmark in mine],
                                     str(docs / f"plots/sweeps/benchmarks/{grid}.png"), grid, strategies)
    for grid in grids.param_grids(sweeps, strategies):
        mine = grids.members(sweeps, "strategies", grid, strategies)
        keys = [k for k in records if k.strategy in mine or k.strategy == reference]
        plot_sweeps.plot_param_sweep([published(docs, k, "metrics.json") for k in keys],
                                     str(docs / f"plots/sweeps/strategies/{grid}.png"), grid,
                                     {name: sweeps["strategies"][name] for name in mine}, benchmarks, reference)


def units_readme(records: dict[RunKey, dict[str, Any]], overlays: list[str]) -> str:
    """docs/results/README.md: the Snakemake command of the config ``overlays`` that trains these runs, then
    one line per (benchmark, strategy) unit with its seeds and the provenance of its runs (distinct values
    joined by ``/``), the runs each trained side by side with (its process's pack), the training seconds
    of each seed's process, and the device seconds per run: a process's seconds shared by its runs."""
    units: dict[tuple[str, str], list[tuple[RunKey, dict[str, Any]]]] = {}
    for key, metrics in sorted(records.items()):
        units.setdefault((key.benchmark, key.strategy), []).append((key, metrics["provenance"]))

    def distinct(runs, field):
        return " / ".join(dict.fromkeys(str(prov.get(field) or "off") for _, prov in runs))

    configfiles = "".join(f" {path}" for path in overlays)
    lines = [
        "# Results on the real data",
        "",
        "Measured results of this pipeline. Each unit below (a benchmark and a strategy, its seeds) was trained",
        "on the device it names with the config of",
        "",
        f"    snakemake{' --configfile' + configfiles if overlays else ''}"
        " --config 'matrix={benchmarks: [<benchmark>], strategies: [<strategy>, ...]}'",
        "",
        "(on a lent GPU, the plain `scripts/train.py` with the same config files, several strategies and seeds side",
        "by side in one process, by `scripts/speed/loan.py`; its runs brought in with",
        "`python scripts/results.py import`), and written here by `python scripts/results.py"
        + "".join(f" --config {path}" for path in overlays) + " publish --docs <this folder>` (do not edit by hand).",
        "`table.md` (`table.csv`, `table.tex`) and `plots/benchmarks/` are made by the pipeline's own table and",
        "plot code from every run under `runs/` (its `metrics.json` and `history.json`); no data, images or",
        "test-set predictions are kept here.",
        "",
        "| benchmark | strategy | seeds | epochs | commit | device | torch | precision | compile | runs side by side"
        " | training s per seed | device s per run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (bench, strat), runs in units.items():
        seconds = [float(prov["train_seconds"]) for _, prov in runs]
        packs = [len(prov.get("trained_with") or prov.get("trained_with_seeds") or [None]) for _, prov in runs]
        epochs = " / ".join(dict.fromkeys(str(records[k]["epochs"]) for k, _ in runs))
        lines.append(
            f"| {bench} | {strat} | {', '.join(str(k.seed) for k, _ in runs)} | {epochs} | {distinct(runs, 'commit')}"
            f" | {distinct(runs, 'device_name')} | {distinct(runs, 'torch_version')} | {distinct(runs, 'precision')}"
            f" | {distinct(runs, 'compile')} | {' / '.join(str(n) for n in dict.fromkeys(packs))}"
            f" | {', '.join(f'{s:.0f}' for s in seconds)} | {sum(s / n for s, n in zip(seconds, packs)) / len(runs):.0f} |")
    return "\n".join(lines) + "\n"


def check_one_scale(docs: Path, local: dict[RunKey, dict[str, Any]], published: dict[RunKey, dict[str, Any]]) -> None:
    """``ResultsError`` unless every run, local and already in ``docs``, trained for the same number of epochs
    (a stage 2, which sets its own, aside): a folder's table compares runs of one scale only (the CPU-scale
    protocol publishes into a folder of its own)."""
    scales: dict[int, list[str]] = {}
    for where, records in (("results/runs", local), (str(docs / "runs"), published)):
        for key, metrics in records.items():
            if metrics.get("stage") == "stage2":
                continue
            scales.setdefault(int(metrics["epochs"]), []).append(f"{where}/{key.benchmark}/{key.strategy}/seed{key.seed}")
    if len(scales) > 1:
        raise ResultsError(f"runs of different scales would share {docs}/: " + "; ".join(
            f"{epochs} epochs: {runs[0]}" + (f" and {len(runs) - 1} more" if len(runs) > 1 else "")
            for epochs, runs in sorted(scales.items())) + ". Publish each scale into a folder of its own (--docs)")


def publish(docs: Path, config: dict[str, Any], overlays: list[str]) -> tuple[list[RunKey], list[RunKey]]:
    """Copy every local run with metrics of the matrix's benchmarks into ``docs``, then rebuild the table,
    figures and README from all published runs; a second call with nothing new changes no byte. Returns the
    runs copied and the local runs left out (of benchmarks outside the matrix: another stage's, which
    publishes into a folder of its own). Runs of another number of epochs than those in ``docs`` are refused
    before anything is copied."""
    benchmarks, _ = cfg.matrix(config)
    found = local_runs()
    runs = [key for key in found if key.benchmark in benchmarks]
    left_out = [key for key in found if key.benchmark not in benchmarks]
    local = {}
    for key in runs:  # check every run before copying any
        local[key] = read_json(key.path / "metrics.json")
        check_provenance(str(key.path / "metrics.json"), local[key])
    check_one_scale(docs, local, committed_metrics(docs))
    for key in runs:
        publish_run(key, docs)
    records = committed_metrics(docs)
    if not records:
        raise ResultsError(f"no run with metrics.json under {RUNS_ROOT}/ or {docs}/runs/: nothing to publish")
    build_tables_and_figures(docs, records, config)
    write_text(docs / "README.md", units_readme(records, overlays))
    return runs, left_out


def cmd_publish(args: argparse.Namespace) -> int:
    """``publish``: copy the runs and rebuild docs/results/."""
    runs, left_out = publish(Path(args.docs), *workflow_config(args))
    print(f"published {len(runs)} run(s) from {RUNS_ROOT}/ into {args.docs}/")
    if left_out:
        print(f"left out {len(left_out)} run(s) of benchmarks outside the matrix: "
              + listing([str(key.path) for key in left_out]))
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    """``select``: apply the research protocol's selection rule (``ltbench.reporting.selection``) to the development runs
    published in ``--docs``: the matrix's benchmarks, strategies and seeds, of which ``--candidates`` can be
    selected. Writes ``<docs>/selection.md`` and prints the selected configuration."""
    from ltbench.reporting import selection

    config, _ = workflow_config(args)
    benchmarks, strategies = cfg.matrix(config)
    docs = Path(args.docs)
    try:
        dev = selection.develop(selection.runs_with_ess(committed_metrics(docs).values()), strategies,
                                args.candidates, benchmarks, list(config["seeds"]))
    except selection.SelectionError as err:
        raise ResultsError(f"{docs}/runs: {err}") from None
    write_text(docs / "selection.md", selection.development_markdown(dev, benchmarks))
    print(dev.selected)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``compare``: one strategy against each baseline (``ltbench.reporting.comparison``) on the published runs of the
    matrix's benchmarks and seeds in ``--docs``; the baselines are the matrix's other strategies unless named.
    Writes ``<docs>/comparison-<strategy>.md`` and prints its summary line."""
    from ltbench.reporting import comparison, table

    config, _ = workflow_config(args)
    benchmarks, strategies = cfg.matrix(config)
    baselines = args.baselines or [s for s in strategies if s != args.strategy]
    docs = Path(args.docs)
    try:
        result = comparison.compare(table.runs_frame(committed_metrics(docs).values()), args.strategy, baselines,
                                    benchmarks, list(config["seeds"]))
    except comparison.ComparisonError as err:
        raise ResultsError(f"{docs}/runs: {err}") from None
    write_text(docs / f"comparison-{args.strategy}.md", comparison.markdown(result))
    print(comparison.summary_line(result))
    return 0


def published_runs(docs: Path) -> pd.DataFrame:
    """``table.runs_frame`` of every run published in ``docs`` (``committed_metrics``); ``ResultsError`` if none."""
    from ltbench.reporting import table

    records = committed_metrics(docs)
    if not records:
        raise ResultsError(f"{docs}: no published run (no {docs}/runs/<benchmark>/<strategy>/seed<k>/metrics.json)")
    return table.runs_frame(records.values())


def cmd_fidelity(args: argparse.Namespace) -> int:
    """``fidelity``: set A against set B (``ltbench.reporting.fidelity``), per data set and ratio both published. Prints the
    markdown, or writes it to ``--output`` and prints its summary table."""
    from ltbench.reporting import fidelity

    names = (args.set_a, args.set_b)
    try:
        result = fidelity.fidelity(*(published_runs(Path(name)) for name in names), names,
                                   args.reference or fidelity.REFERENCE)
    except fidelity.FidelityError as err:
        raise ResultsError(str(err)) from None
    if args.output:
        write_text(Path(args.output), fidelity.markdown(result))
        print(f"wrote {args.output}")
        print(fidelity.summary_table(result))
    else:
        print(fidelity.markdown(result), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_config(parser, help="a config file merged into config.yaml, as snakemake --configfile does (repeat"
                               " for several); config.yaml itself is always read first, as Snakemake reads it")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="unpack a device session's runs-*.tar.gz into results/runs/")
    imp.add_argument("archives", nargs="+", metavar="archive")
    imp.add_argument("--replace", action="store_true", help="overwrite runs that exist here with other content")
    imp.add_argument("--no-check", action="store_true", help="skip the Snakemake dry run")
    imp.set_defaults(func=cmd_import)
    pub = sub.add_parser("publish", help="copy runs with metrics to docs/results/ and rebuild its table")
    pub.add_argument("--docs", default=str(DOCS))
    pub.set_defaults(func=cmd_publish)
    sel = sub.add_parser("select", help="apply the research protocol's selection rule to published development runs")
    sel.add_argument("--docs", default=str(DOCS))
    sel.add_argument("--candidates", nargs="+", required=True, help="the configurations that can be selected")
    sel.set_defaults(func=cmd_select)
    com = sub.add_parser("compare", help="one strategy against each baseline, per benchmark and shot group, paired by seed")
    com.add_argument("--docs", default=str(DOCS))
    com.add_argument("--strategy", required=True)
    com.add_argument("--baselines", nargs="+", help="default: the matrix's other strategies")
    com.set_defaults(func=cmd_compare)
    fid = sub.add_parser("fidelity", help="how far two published result sets agree, per data set and ratio:"
                                          " Kendall's τ of the rankings, signs of the differences to the reference")
    fid.add_argument("set_a", metavar="A", help="a published result set (a folder with runs/), e.g. docs/results/cpu")
    fid.add_argument("set_b", metavar="B", help="the set it is checked against, e.g. docs/results")
    fid.add_argument("--reference", help="the strategy every difference is taken to (default: ce)")
    fid.add_argument("--output", metavar="FILE", help="write the markdown there instead of printing it")
    fid.set_defaults(func=cmd_fidelity)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
