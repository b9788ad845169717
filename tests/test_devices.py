"""Device choice: each job claims the least-used GPU; claims of dead processes do not count."""

from __future__ import annotations

import os
import subprocess

from ltbench.devices import claim_gpu


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_claims_spread_over_gpus_and_dead_claims_are_dropped(tmp_path):
    (tmp_path / f"gpu0.{os.getppid()}").touch()  # a live job on GPU 0
    (tmp_path / f"gpu1.{dead_pid()}").touch()  # a finished job on GPU 1
    assert claim_gpu(2, tmp_path) == 1
    assert not any(p.name.startswith("gpu1.") and p.name != f"gpu1.{os.getpid()}" for p in tmp_path.iterdir())
    assert (tmp_path / f"gpu1.{os.getpid()}").exists()
    # GPU 0 and 1 now have one live claim each; a third GPU is free
    assert claim_gpu(3, tmp_path) == 2


def test_single_gpu_needs_no_claim(tmp_path):
    assert claim_gpu(1, tmp_path) == 0
    assert list(tmp_path.iterdir()) == []
