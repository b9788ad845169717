"""Atomic outputs: renamed into place whole, and readable as the user's umask allows (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from ltbench import io


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    """Run the test under each umask, restoring the original afterwards."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask, monkeypatch):
    assert io.current_umask() == umask
    monkeypatch.setattr(io, "PROC_STATUS", io.Path("/nonexistent/status"))  # the portable fallback
    assert io.current_umask() == umask
    assert io.current_umask() == umask, "the fallback must restore the umask"


@pytest.mark.parametrize("write", ["json", "text", "npz"])
def test_outputs_get_the_umask_permissions(tmp_path, umask, write):
    path = tmp_path / "sub" / f"out.{write}"
    if write == "json":
        io.write_json(path, {"a": 1})
    elif write == "text":
        io.write_text(path, "hello\n")
    else:
        with io.atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, x=np.arange(3))
    assert mode(path) == 0o666 & ~umask  # 0644, 0664, 0600
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left behind"


def test_replacing_a_file_keeps_umask_permissions(tmp_path, umask):
    path = tmp_path / "out.txt"
    path.write_text("old")
    os.chmod(path, 0o600)
    io.write_text(path, "new")
    assert path.read_text() == "new" and mode(path) == 0o666 & ~umask


def test_failed_write_leaves_the_target_untouched(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), io.atomic_path(path) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
