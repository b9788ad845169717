"""What breaks or stalls only on CUDA, caught on the CPU: mixed precision in packed batch norm,
RNG restore, checkpoint size, the cosine head's precision, and host synchronisation in a step."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ltbench.training import checkpoint, replicas
from ltbench.methods.models import build_model, run_view
from ltbench.training.train import Trainer, run, run_pack
from ltbench.training.spec import prepare
from test_packing import pack
from test_train import crash_in_epoch, spec

aten = torch.ops.aten


def test_packed_batch_norm_takes_bf16_activations_with_fp32_statistics():
    """CUDA autocast runs convolutions in bf16, so batch norm sees bf16 activations while its weights
    and running statistics stay fp32. CPU autocast casts convolutions too: the packed model must
    train there like each model alone, with fp32 statistics equal to theirs."""
    torch.manual_seed(0)
    models = [build_model("resnet32", 4) for _ in range(2)]
    runs = replicas.Runs([build_model("resnet32", 4) for _ in range(2)], "resnet32", 4, "linear")
    for r, model in enumerate(models):
        runs.load_state_dict(r, model.state_dict())
    seen = []
    runs.network.bn1.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    x = torch.randn(2, 8, 3, 32, 32)
    runs.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        runs(x).float().sum().backward()
        for r, model in enumerate(models):
            model.train()
            model(x[r]).float().sum().backward()
    assert seen == [torch.bfloat16]  # the condition that failed under vmap on CUDA
    stats = run_view(runs.network.bn1.running_mean, 2)
    assert stats.dtype == torch.float32
    for r, model in enumerate(models):
        assert torch.allclose(stats[r], model.bn1.running_mean, atol=1e-3)
        assert torch.allclose(run_view(runs.network.conv1.weight.grad, 2)[r], model.conv1.weight.grad, rtol=0.05,
                              atol=0.05 * model.conv1.weight.grad.abs().max().item())


def test_the_cosine_head_computes_in_fp32_under_autocast():
    torch.manual_seed(0)
    model = build_model("resnet32", 10, head="cosine")
    features = torch.randn(16, 64)
    exact = model.fc(features)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model.fc(features)
    assert mixed.dtype == torch.float32
    assert torch.allclose(30 * mixed, 30 * exact, atol=1e-4)  # bf16 would be off by ~0.1 after scale 30


class FakeCudaGenerator:
    """Records what ``set_state`` gets, refusing what a CUDA generator refuses: anything but a CPU ByteTensor."""

    device = torch.device("cuda")

    def set_state(self, state):
        assert isinstance(state, torch.Tensor) and state.device.type == "cpu" and state.dtype == torch.uint8
        self.state = state


class LoadedOnGpu:
    """A tensor as ``torch.load(map_location='cuda')`` leaves it: usable on the host only after ``.cpu()``."""

    def __init__(self, tensor):
        self.tensor, self.device = tensor, torch.device("cuda")

    def cpu(self):
        return self.tensor


def test_rng_state_is_restored_from_a_cpu_tensor():
    state = {"generator": LoadedOnGpu(torch.Generator().get_state()), "cpu_rng": torch.get_rng_state()}
    generator = FakeCudaGenerator()
    checkpoint.restore_rng(state, generator)
    assert torch.equal(generator.state, state["generator"].tensor)


def test_a_packed_runs_checkpoint_holds_only_its_own_run(subset, tmp_path, monkeypatch):
    lone = spec(subset, tmp_path / "lone", epochs=3)
    crash_in_epoch(monkeypatch, 2, run, lone)
    packed = pack(subset, tmp_path / "packed", seeds=(0, 1, 2), epochs=3)
    crash_in_epoch(monkeypatch, 2, run_pack, packed)
    own = (tmp_path / "lone/checkpoint.pt").stat().st_size
    for s in packed:
        size = (tmp_path / "packed" / f"seed{s.seed}" / "checkpoint.pt").stat().st_size
        assert size == pytest.approx(own, rel=0.05)  # not three runs' storage


SYNCING = {aten._local_scalar_dense.default, aten.nonzero.default, aten._unique2.default, aten.unique_dim.default,
           aten.unique_consecutive.default, aten.bincount.default, aten.masked_select.default,
           aten.repeat_interleave.Tensor}
BOOL_INDEXED = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default}


class HostSyncs(TorchDispatchMode):
    """Records the operators that make the host wait for a CUDA device: reading a value (``item``,
    ``bool``, ``int``), and those whose output size depends on values (nonzero, unique, bincount,
    boolean masks), plus any ``tolist``/``numpy``/``cpu`` call."""

    def __init__(self, monkeypatch):
        super().__init__()
        self.calls = []
        for name in ("tolist", "numpy", "cpu"):
            real = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._recording(name, real))

    def _recording(self, name, real):
        def wrapper(tensor, *args, **kwargs):
            self.calls.append(f"Tensor.{name}")
            return real(tensor, *args, **kwargs)
        return wrapper

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = getattr(func, "overloadpacket", None)
        indices = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else ()
        if func in SYNCING or (func in BOOL_INDEXED or packet in BOOL_INDEXED) and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices):
            self.calls.append(str(func))
        return func(*args, **kwargs)


@pytest.mark.parametrize("strategy, params", [
    ("ce", {}), ("balanced_softmax", {}), ("ldam_drw", {"defer_epoch": 0}), ("focal", {"gamma": 2.0}),
    ("minority_synthesis", {"defer_epoch": 0}),
])
@pytest.mark.parametrize("seeds", [(0,), (0, 1)])
def test_a_training_step_never_waits_for_the_device(subset, tmp_path, monkeypatch, strategy, params, seeds):
    if strategy == "minority_synthesis" and len(seeds) > 1:
        pytest.skip("feature-hook strategies train one run at a time")
    specs = pack(subset, tmp_path, seeds=seeds, strategy=strategy, params=params)
    trainer = Trainer(specs, [prepare(s) for s in specs], torch.device("cpu"))
    weights = trainer.weights_at(0)
    idx = [torch.randperm(len(trainer.train_y), generator=g)[:8] for g in trainer.generators]
    trainer.train_step(0, idx, weights)  # first step: lazily built state (banks, margins on the device)
    with HostSyncs(monkeypatch) as syncs:
        losses = trainer.train_step(0, idx, weights)
    assert syncs.calls == []
    assert losses.shape == (len(seeds),)


def test_the_sync_recorder_sees_what_it_must():
    with HostSyncs(pytest.MonkeyPatch()) as syncs:
        x = torch.arange(4.0)
        x.sum().item()
        x[x > 1]
        bool(x.max() > 0)
        x.tolist()
    assert len(syncs.calls) == 4
