"""What one call of a loan brings back: the device tool returns at most 8 files of at most 16 MiB from $OUT,
64 MiB together (docs/performance.md, "The device plan"). Files are copied into the output folder, never moved,
so a call cut off while copying loses nothing; a file that does not fit waits for the next call.
"""

from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

MIB = 2**20


@dataclass(frozen=True)
class Limits:
    """The most a call brings back: ``files`` files of at most ``file_mib`` each, ``total_mib`` together."""

    files: int = 8
    file_mib: float = 16.0
    total_mib: float = 64.0


class Returns:
    """The files a call puts into ``out``, within ``limits`` together with those already there (a probe's, say),
    keeping room for ``keep_files`` files of ``keep_bytes`` together (the call's own record, ``put(kept=True)``)."""

    def __init__(self, out: Path, limits: Limits, keep_files: int = 1, keep_bytes: int = MIB) -> None:
        self.out, self.limits, self.keep_files, self.keep_bytes = out, limits, keep_files, keep_bytes
        self.out.mkdir(parents=True, exist_ok=True)
        there = [path.stat().st_size for path in self.out.rglob("*") if path.is_file()]
        self.files, self.bytes = len(there), sum(there)

    def fits(self, size: int, kept: bool = False) -> bool:
        """Whether a file of ``size`` bytes still fits (into the room kept for the record if ``kept``)."""
        files = self.limits.files - (0 if kept else self.keep_files)
        total = self.limits.total_mib * MIB - (0 if kept else self.keep_bytes)
        return size <= self.limits.file_mib * MIB and self.files < files and self.bytes + size <= total

    def put(self, path: Path, kept: bool = False) -> bool:
        """Copy ``path`` into the output folder if it fits; whether it did."""
        size = path.stat().st_size
        if not self.fits(size, kept) or (self.out / path.name).exists():
            return False
        shutil.copy2(path, self.out / path.name)
        self.files, self.bytes = self.files + 1, self.bytes + size
        return True

    def place(self, paths: list[Path]) -> list[Path]:
        """Copy ``paths`` in order while they fit (a later, smaller one may still go); returns those left."""
        return [path for path in paths if not self.put(path)]


def write_logs(archive: Path, logs: list[Path]) -> Path | None:
    """The existing ``logs`` (by file name) in the tar.gz ``archive``; None if there are none."""
    logs = [log for log in logs if log.is_file()]
    if not logs:
        return None
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for log in logs:
            tar.add(log, arcname=log.name)
    return archive
