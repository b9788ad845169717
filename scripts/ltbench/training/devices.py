"""Pick the device a training job runs on, and the precision it computes in.

Snakemake does not set CUDA_VISIBLE_DEVICES, so with several GPUs (or several jobs
per GPU) each job claims the visible GPU that the fewest live jobs have claimed.
Claims are files ``gpu<i>.<pid>`` in a shared folder, made under an exclusive lock
and removed when the process exits; claims of dead processes are ignored.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import platform
import tempfile
import warnings
from pathlib import Path

import torch

DEVICE_CHOICES = ("auto", "cuda", "cpu")
PRECISION_CHOICES = ("auto", "bf16", "fp32")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instructions that compute bf16 natively
CLAIM_DIR = Path(os.environ.get("LTBENCH_GPU_CLAIMS", Path(tempfile.gettempdir()) / "ltbench-gpu-claims"))


class DeviceError(RuntimeError):
    """The configured device cannot be had (a GPU demanded but absent)."""


def select_device(preference: str, threads: int = 1) -> torch.device:
    """``cuda`` demands a GPU, ``cpu`` forbids it, ``auto`` takes one when present (else warns).

    On the CPU, torch uses ``threads`` threads (what Snakemake gave the job).
    """
    if preference not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {preference!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if preference != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", claim_gpu(torch.cuda.device_count()))
    if preference == "cuda":
        raise DeviceError("config demands a GPU (train.device: cuda) but CUDA is not available on this machine")
    if preference == "auto":
        warnings.warn("CUDA is not available: training on the CPU, which is slow", stacklevel=2)
    torch.set_num_threads(max(1, threads))
    return torch.device("cpu")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_gpu(count: int, claim_dir: Path = CLAIM_DIR) -> int:
    """Claim and return the index of the least-claimed of ``count`` GPUs (ties: lowest index)."""
    if count <= 1:
        return 0
    claim_dir.mkdir(parents=True, exist_ok=True)
    with open(claim_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        load = [0] * count
        for claim in claim_dir.glob("gpu*.*"):
            gpu, _, pid = claim.name[3:].partition(".")
            if gpu.isdigit() and pid.isdigit() and int(gpu) < count and _alive(int(pid)):
                load[int(gpu)] += 1
            elif pid.isdigit() and not _alive(int(pid)):
                claim.unlink(missing_ok=True)
        choice = min(range(count), key=lambda i: (load[i], i))
        mine = claim_dir / f"gpu{choice}.{os.getpid()}"
        mine.touch()
    atexit.register(mine.unlink, missing_ok=True)
    return choice


def cpuinfo_field(name: str, cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The value of the first ``name : value`` line of ``cpuinfo``; None where the file or the line is absent."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines
                 if ":" in line and line.split(":", 1)[0].strip() == name), None)


def device_name(device: torch.device, cpuinfo: str = "/proc/cpuinfo") -> str:
    """What a run's provenance names its device by: the GPU's name, or the CPU's model (``/proc/cpuinfo``,
    else ``platform.processor()``) and the threads torch computes with, e.g. ``AMD EPYC, 1 thread``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    model = cpuinfo_field("model name", cpuinfo) or platform.processor() or "CPU"
    return f"{model}, {threads} thread{'s' if threads > 1 else ''}"


def cpu_computes_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True if the CPU has a native bf16 instruction (``CPU_BF16_FLAGS`` among the ``flags`` of
    ``cpuinfo``); False where that file is absent (not Linux) or lists neither: there bf16 is
    emulated and slower than float32."""
    flags = (cpuinfo_field("flags", cpuinfo) or "").split()
    return any(flag in flags for flag in CPU_BF16_FLAGS)


MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


def resolve_memory_format(preference: str, device: torch.device, precision: str) -> str:
    """``channels_last`` or ``contiguous``: the activations' layout. ``auto`` is channels_last on a GPU and
    wherever the precision is bf16 (measured faster for single models), contiguous elsewhere. Grouped
    convolutions (packed runs) may prefer the other layout: ``scripts/speed/conv_probe.py`` measures both."""
    if preference not in MEMORY_FORMATS:
        raise DeviceError(f"unknown memory_format {preference!r}; choose one of {', '.join(MEMORY_FORMATS)}")
    if preference != "auto":
        return preference
    return "channels_last" if device.type == "cuda" or precision == "bf16" else "contiguous"


def resolve_precision(preference: str, device: torch.device, cpuinfo: str = "/proc/cpuinfo") -> str:
    """``bf16`` or ``fp32``: what a training on ``device`` computes in. ``auto`` is bf16 on a GPU and on a
    CPU that computes bf16 natively (``cpu_computes_bf16``), fp32 elsewhere; ``bf16`` and ``fp32`` are
    taken as they are. bf16 means autocast (convolutions and matrix products in bf16, the loss, batch
    norm statistics and weights in float32) and channels_last activations."""
    if preference not in PRECISION_CHOICES:
        raise DeviceError(f"unknown precision {preference!r}; choose one of {', '.join(PRECISION_CHOICES)}")
    if preference != "auto":
        return preference
    return "bf16" if device.type == "cuda" or cpu_computes_bf16(cpuinfo) else "fp32"


def fused_sgd(device: torch.device) -> bool:
    """Whether SGD updates every parameter in one fused kernel: on CUDA, where the launches of the
    default (foreach) step add up over a packed model's many tensors; not elsewhere, where the default
    step (one tensor at a time on a CPU) keeps the runs already made bit for bit (the fused step rounds
    differently, ~1e-7)."""
    return device.type == "cuda"
