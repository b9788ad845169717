"""Pack finished runs (a benchmark's strategies, every seed trained) for the trip back from a GPU.

    python scripts/speed/pack_runs.py --benchmark resnet32-cifar100lt --strategy ce [--strategy ...] --out-dir "$OUT"

Each run contributes its own ``history.json`` and ``predictions.npz`` as
``results/runs/<benchmark>/<strategy>/seed<k>/...`` members that ``scripts/results.py import`` takes, and
with ``--with-model`` its ``model.pt`` too: the input of a stage 2 that builds on the unit (a ResNet-32's
weights are about 1.9 MB), without which Snakemake would retrain the unit here.
A call brings back at most 8 files of at most 16 MiB, so the runs go into as few archives of at most
``--limit-mib`` as their sizes allow, filled in order: ``runs-<benchmark>-<strategy>.tar.gz`` for one
strategy's whole unit, ``runs-<benchmark>-<strategy>-seed<k>.tar.gz`` for a lone run, else
``runs-<benchmark>-part<i>.tar.gz`` (a 200-epoch CIFAR-100 run takes about 3.9 MiB: 4 to an archive), with
``-<tag>`` after the benchmark if ``--tag`` is given (a loan's call and unit: the archives of a chain's calls keep
apart). A run that alone exceeds the limit is an error (exit status 1), named, and left out; the others are still
packed. ``--root`` packs the runs of another working copy (members stay ``results/runs/...``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltbench.config import MODEL_FILE, RUN_FILES  # noqa: E402

SEED_FOLDER = re.compile(r"seed(\d+)")


def runs_of(benchmark: str, strategy: str, names: tuple[str, ...] = RUN_FILES,
            root: Path = Path("results/runs")) -> list[Path]:
    """The unit's finished run folders (``seed<k>`` holding every file of ``names``), by seed."""
    seeds = {int(m[1]): p for p in (root / benchmark / strategy).glob("seed*") if (m := SEED_FOLDER.fullmatch(p.name))}
    return [seeds[k] for k in sorted(seeds) if all((seeds[k] / name).is_file() for name in names)]


def write_archive(path: Path, runs: list[Path], names: tuple[str, ...] = RUN_FILES, root: Path = Path(".")) -> int:
    """``runs``' files ``names`` into the tar.gz ``path`` (members relative to ``root``), written under a temporary
    name and renamed when complete (a call cut off meanwhile brings back no truncated archive); returns its size
    in bytes."""
    partial = path.with_name(f".{path.name}.partial")
    with tarfile.open(partial, "w:gz") as tar:
        for run in runs:
            for name in names:
                tar.add(run / name, arcname=str((run / name).relative_to(root)))
    os.replace(partial, path)
    return path.stat().st_size


def run_size(run: Path, names: tuple[str, ...]) -> int:
    """Bytes of the run's files: about what they take in an archive (the predictions are compressed already)."""
    return sum((run / name).stat().st_size for name in names)


def fill(runs: list[Path], names: tuple[str, ...], limit: float) -> tuple[list[list[Path]], list[Path]]:
    """``runs`` in order, into bins of at most ``limit`` bytes (a new bin when the next run does not fit),
    and the runs that alone exceed it."""
    bins: list[list[Path]] = []
    too_large, room = [], 0.0
    for run in runs:
        size = run_size(run, names)
        if size > limit:
            too_large.append(run)
        elif bins and size <= room:
            bins[-1].append(run)
            room -= size
        else:
            bins.append([run])
            room = limit - size
    return bins, too_large


def archive_name(benchmark: str, bin_runs: list[Path], whole_unit: bool, part: int, tag: str = "") -> str:
    """The archive's file name (see the module docstring)."""
    strategies = {run.parent.name for run in bin_runs}
    benchmark = f"{benchmark}-{tag}" if tag else benchmark
    if len(bin_runs) == 1:
        return f"runs-{benchmark}-{bin_runs[0].parent.name}-{bin_runs[0].name}.tar.gz"
    if whole_unit and len(strategies) == 1:
        return f"runs-{benchmark}-{strategies.pop()}.tar.gz"
    return f"runs-{benchmark}-part{part}.tar.gz"


def pack(benchmark: str, strategies: list[str], out_dir: Path, limit_mib: float, with_model: bool = False,
         tag: str = "", root: Path = Path(".")) -> tuple[list[Path], list[str]]:
    """The archives written for the finished runs of ``strategies`` under ``root`` (see the module docstring) and
    the errors."""
    names = model_names(with_model)
    runs = [run for strategy in strategies for run in runs_of(benchmark, strategy, names, root / "results/runs")]
    if not runs:
        return [], [f"{benchmark}/{','.join(strategies)}: no finished run to pack"]
    return pack_folders(benchmark, runs, out_dir, limit_mib, names, tag, root)


def model_names(with_model: bool) -> tuple[str, ...]:
    """The files of a run that go back: its results, and its final weights ``with_model``."""
    return (*RUN_FILES, MODEL_FILE) if with_model else RUN_FILES


def pack_folders(benchmark: str, runs: list[Path], out_dir: Path, limit_mib: float,
                 names: tuple[str, ...] = RUN_FILES, tag: str = "",
                 root: Path = Path(".")) -> tuple[list[Path], list[str]]:
    """``runs`` (run folders under ``root``, in order) into archives of at most ``limit_mib`` in ``out_dir``;
    returns the archives and the errors."""
    bins, too_large = fill(runs, names, limit_mib * 2**20)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / archive_name(benchmark, b, len(bins) == 1 and not too_large, i + 1, tag)
               for i, b in enumerate(bins)]
    errors: list[str] = []
    for path, b in zip(written, bins):  # the estimate is the files' size; an archive over the limit is named
        if write_archive(path, b, names, root) > limit_mib * 2**20:
            errors.append(f"{path}: {path.stat().st_size / 2**20:.1f} MiB packed, over the {limit_mib:g} MiB limit")
    errors += [f"{run}: {run_size(run, names) / 2**20:.1f} MiB, over the {limit_mib:g} MiB limit; left out"
               for run in too_large]
    return written, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--strategy", action="append", required=True, help="repeat for several strategies")
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--limit-mib", type=float, default=15.5, help="largest archive to write (a call brings back 16)")
    parser.add_argument("--with-model", action="store_true", help="add each run's model.pt (a stage 2 builds on it)")
    parser.add_argument("--tag", default="", help="put into the archives' names after the benchmark")
    parser.add_argument("--root", type=Path, default=Path("."), help="the working copy that holds results/runs")
    args = parser.parse_args(argv)
    written, errors = pack(args.benchmark, args.strategy, args.out_dir, args.limit_mib, args.with_model, args.tag,
                           args.root)
    for path in written:
        print(f"packed {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
