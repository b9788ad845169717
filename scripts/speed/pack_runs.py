"""Pack one unit's runs (a benchmark and strategy, every seed trained) for the trip back from a GPU.

    python scripts/speed/pack_runs.py --benchmark resnet32-cifar100lt --strategy ce --out-dir "$OUT"

Each run contributes its own ``history.json`` and ``predictions.npz`` as
``results/runs/<benchmark>/<strategy>/seed<k>/...`` members that ``scripts/results.py import`` takes, and
with ``--with-model`` its ``model.pt`` too: the input of a stage 2 that builds on the unit (a ResNet-32's
weights are about 1.9 MB), without which Snakemake would retrain the unit here.
A call brings back files of at most 16 MiB: the unit goes into ``runs-<benchmark>-<strategy>.tar.gz``
if that stays under ``--limit-mib``, else each run into its own ``...-seed<k>.tar.gz`` (a CIFAR-100
run's full-precision logits take up to about 7 MiB). A run that alone exceeds the limit is an error
(exit status 1), named, and left out; the others are still packed.
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


def write_archive(path: Path, runs: list[Path], names: tuple[str, ...] = RUN_FILES) -> int:
    """``runs``' files ``names`` into the tar.gz ``path``, written under a temporary name and renamed when complete
    (a call cut off meanwhile brings back no truncated archive); returns its size in bytes."""
    partial = path.with_name(f".{path.name}.partial")
    with tarfile.open(partial, "w:gz") as tar:
        for run in runs:
            for name in names:
                tar.add(run / name)
    os.replace(partial, path)
    return path.stat().st_size


def pack(benchmark: str, strategy: str, out_dir: Path, limit_mib: float,
         with_model: bool = False) -> tuple[list[Path], list[str]]:
    """The archives written for the unit (one, or one per run if that is too large) and the errors."""
    names = (*RUN_FILES, MODEL_FILE) if with_model else RUN_FILES
    runs = runs_of(benchmark, strategy, names)
    if not runs:
        return [], [f"{benchmark}/{strategy}: no finished run to pack"]
    limit = limit_mib * 2**20
    out_dir.mkdir(parents=True, exist_ok=True)
    whole = out_dir / f"runs-{benchmark}-{strategy}.tar.gz"
    if write_archive(whole, runs, names) <= limit:
        return [whole], []
    whole.unlink()
    written, errors = [], []
    for run in runs:
        path = out_dir / f"runs-{benchmark}-{strategy}-{run.name}.tar.gz"
        size = write_archive(path, [run], names)
        if size > limit:
            path.unlink()
            errors.append(f"{run}: {size / 2**20:.1f} MiB packed, over the {limit_mib:g} MiB limit; left out")
        else:
            written.append(path)
    return written, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--limit-mib", type=float, default=15.0, help="largest archive to write (a call brings back 16)")
    parser.add_argument("--with-model", action="store_true", help="add each run's model.pt (a stage 2 builds on it)")
    args = parser.parse_args(argv)
    written, errors = pack(args.benchmark, args.strategy, args.out_dir, args.limit_mib, args.with_model)
    for path in written:
        print(f"packed {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
