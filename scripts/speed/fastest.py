"""The fastest pipeline configuration measured by measure.py, for a training of ``--epochs`` epochs.

    python scripts/speed/fastest.py speed-*.json --epochs 200    # prints e.g. "reduce-overhead 3"

Per pipeline trainer that finished, the time per run of a whole training is estimated from its
measurement as (first epoch + (epochs - 1) x steady epoch) / runs per process (the first epoch
carries compilation, paid once per process). Prints the winner's compile mode (``off`` for eager)
and its runs per process; with no usable measurement, prints ``--fallback``.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure import parse_trainer  # noqa: E402


def run_seconds(row: dict, epochs: int) -> float:
    """Estimated seconds per run of an ``epochs``-epoch training from a speed row."""
    return (row["first_epoch_s"] + (epochs - 1) * row["steady_epoch_s"]) / row["runs_per_process"]


def candidates(paths: list[str], epochs: int) -> list[tuple[float, str, int]]:
    """(seconds per run, compile mode, runs per process) of every measured pipeline trainer."""
    found = []
    for path in paths:
        if not Path(path).is_file():
            continue
        for row in json.loads(Path(path).read_text()).get("speed", []):
            trainer = parse_trainer(row["trainer"])
            if trainer["kind"] == "pipeline":
                found.append((run_seconds(row, epochs), trainer["compile"] or "off", trainer["pack"]))
    return sorted(found)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("measurements", nargs="*")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--fallback", default="reduce-overhead 3")
    args = parser.parse_args(argv)
    found = candidates(args.measurements, args.epochs)
    for seconds, mode, pack in found:
        print(f"  {mode} x{pack}: {seconds:.0f} s per run", file=sys.stderr)
    print(f"{found[0][1]} {found[0][2]}" if found else args.fallback)


if __name__ == "__main__":
    main()
