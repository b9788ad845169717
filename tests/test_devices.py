"""Device choice: each job claims the least-used GPU; claims of dead processes do not count. Precision:
bf16 where the device computes it natively."""

from __future__ import annotations

import os
import subprocess

import pytest
import torch

from ltbench.training.devices import DeviceError, claim_gpu, cpu_computes_bf16, resolve_memory_format, resolve_precision

CPU = torch.device("cpu")


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


def cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 {flags}\n\n"
                    f"processor\t: 1\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return str(path)


def test_auto_precision_is_bf16_only_on_a_cpu_that_computes_it(tmp_path):
    (tmp_path / "a").mkdir()
    with_bf16 = cpuinfo(tmp_path / "a", "avx512f avx512_bf16")
    assert resolve_precision("auto", CPU, with_bf16) == "bf16"
    (tmp_path / "b").mkdir()
    amx = cpuinfo(tmp_path / "b", "amx_tile amx_bf16")
    assert resolve_precision("auto", CPU, amx) == "bf16"
    (tmp_path / "c").mkdir()
    without = cpuinfo(tmp_path / "c", "avx512f avx512bw")  # AVX-512 but no bf16 instruction: emulated, slower
    assert not cpu_computes_bf16(without) and resolve_precision("auto", CPU, without) == "fp32"
    assert resolve_precision("auto", CPU, str(tmp_path / "absent")) == "fp32"  # not Linux: no cpuinfo
    assert resolve_precision("auto", torch.device("cuda"), without) == "bf16"  # every GPU we train on has bf16
    assert resolve_precision("bf16", CPU, without) == "bf16" and resolve_precision("fp32", CPU, with_bf16) == "fp32"


def test_unknown_precision_is_named():
    with pytest.raises(DeviceError, match="unknown precision 'fp16'; choose one of auto, bf16, fp32"):
        resolve_precision("fp16", CPU)


def test_a_cpu_run_names_the_cpu_model_and_its_threads(tmp_path):
    from ltbench.training.devices import device_name

    info = cpuinfo(tmp_path, "avx2")
    torch.set_num_threads(1)
    assert device_name(CPU, info) == "Some CPU, 1 thread"
    assert device_name(CPU, str(tmp_path / "absent")).endswith(", 1 thread")  # platform.processor() or "CPU"


def test_memory_format_follows_device_and_precision_unless_chosen():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_memory_format("auto", cpu, "fp32") == "contiguous"
    assert resolve_memory_format("auto", cpu, "bf16") == "channels_last"
    assert resolve_memory_format("auto", gpu, "bf16") == "channels_last"
    assert resolve_memory_format("contiguous", gpu, "bf16") == "contiguous"
    with pytest.raises(DeviceError, match="unknown memory_format 'nhwc'"):
        resolve_memory_format("nhwc", cpu, "fp32")
