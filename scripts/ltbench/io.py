"""Atomic file output: every result is written to a temporary file in the target
directory and renamed into place, so a crash never leaves a partial result. The file
gets the permissions the umask gives (``0o666 & ~umask``), as a plain ``open`` would."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

PROC_STATUS = Path("/proc/self/status")  # Linux: holds the line "Umask:\t0022"
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read from /proc/self/status (Linux) without changing it; elsewhere
    set and restored at once under a lock (``os.umask`` can only be read by setting it)."""
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    ``suffix`` keeps extensions that writers insist on (``np.savez`` adds ``.npz``).
    ``mkstemp`` creates the file with mode 0600; before the rename it gets ``0o666 & ~umask``
    (0644 under umask 022, 0664 under 002), so colleagues on a shared file system can read it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a damaged one is a ``ValueError`` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}): it was damaged or edited; delete it and rerun"
                         " the workflow to remake it") from None
