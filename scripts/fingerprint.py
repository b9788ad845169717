"""A rule family's code as one file (rule ``code``): ``<sha256>  <path>`` per input file, in path order.

A job that lists this file as input reruns when any of the family's library files changes in
content (Snakemake compares the fingerprint's checksum), and its console entry stays one line.
"""

import hashlib
from pathlib import Path

from ltbench.io import write_text
from ltbench.logs import redirect_to_log


def fingerprint(paths: list[str], out: str) -> None:
    """Write the sha256 of each file in ``paths`` to ``out`` (atomically)."""
    lines = [f"{hashlib.sha256(Path(p).read_bytes()).hexdigest()}  {p}" for p in sorted(paths)]
    write_text(out, "\n".join(lines) + "\n")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        fingerprint(list(sm.input), sm.output[0])
