"""The runs a job trains side by side, as one model behind one interface.

``Runs`` holds R >= 1 models of one architecture that differ only in their seed. With R = 1
it is the ordinary model; with R > 1 it is the packed model of ``ltbench.methods.models`` (the runs
folded into the channel axis: grouped convolutions, one ``BatchNorm2d(R*C)`` per layer, a
per-run head), so the runs share every kernel launch while each computes exactly what it
would alone. Inputs carry a leading run axis (images: R x B x C x H x W) and outputs come
back as R x B x ...: logits, and on request the features the head classifies. Summing the
runs' losses and calling ``backward`` gives each run its own gradient (a run's loss does not
depend on the others' parameters), and SGD with momentum and weight decay is elementwise,
so one optimizer over the packed tensors steps every run as its own optimizer would.

Batch norm is a real ``BatchNorm2d`` (no ``vmap``), so under bf16 autocast it takes bf16
activations with float32 parameters and running statistics like any single model does.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from ltbench.methods.models import build_model, pack, run_view

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def check_compile_mode(mode: str | None) -> None:
    """A ``ValueError`` naming ``mode`` unless it is None (eager) or one of ``COMPILE_MODES``."""
    if mode is not None and mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; known: {', '.join(COMPILE_MODES)}")


def compiled(fn, mode: str | None, backend: str = "inductor"):
    """``fn`` under ``torch.compile`` with static shapes (one graph per batch shape), or ``fn`` if ``mode`` is None."""
    check_compile_mode(mode)
    if mode is None:
        return fn
    return torch.compile(fn, mode=mode, dynamic=False, backend=backend)


class Runs:
    """R models of one architecture trained side by side (see the module docstring).

    What a strategy may rely on, for one run or a pack alike: calling it gives logits (R x B x
    classes), and with ``features=True`` also the features the head classifies (R x B x F, what a
    feature hook sees); ``classifier`` maps folded features (B x R*F) to folded logits; and
    ``head_weight(r)`` is run r's linear head weight, one row per class (classes x F), the rows that
    MaxNorm bounds. A cosine head has no such rows (it stores its weight transposed and normalises
    it itself), so ``ltbench.strategies`` refuses MaxNorm with a cosine head before training.
    """

    def __init__(self, models: list[nn.Module], arch: str, num_classes: int, head: str,
                 memory_format=torch.contiguous_format) -> None:
        self.runs, self.memory_format = len(models), memory_format
        network = models[0] if self.runs == 1 else pack(models, arch, num_classes, head)
        self.network = network.to(memory_format=memory_format)
        self._forward = self._logits_and_features

    def _logits_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and features of the folded input (B x R*C x H x W), each B x R*n."""
        features = self.network.forward_features(x)
        return self.network.fc(features), features

    def compile(self, mode: str | None, backend: str = "inductor") -> None:
        """Compile the forward pass (one graph per input shape and train/eval mode)."""
        self._forward = compiled(self._logits_and_features, mode, backend)

    def fold(self, x: torch.Tensor, shared: bool) -> torch.Tensor:
        """R x B x C x H x W (or B x C x H x W seen by every run if ``shared``) -> B x R*C x H x W."""
        folded = x.repeat(1, self.runs, 1, 1) if shared else x.transpose(0, 1).flatten(1, 2)
        return folded.contiguous(memory_format=self.memory_format)

    def unfold(self, y: torch.Tensor) -> torch.Tensor:
        """B x R*n -> R x B x n."""
        return y.unflatten(1, (self.runs, -1)).transpose(0, 1)

    def __call__(self, x: torch.Tensor, shared: bool = False, features: bool = False):
        """Logits (R x B x classes) of ``x`` (see ``fold``); with ``features``, also the features (R x B x F)."""
        logits, feats = self._forward(self.fold(x, shared))
        return (self.unfold(logits), self.unfold(feats)) if features else self.unfold(logits)

    @property
    def classifier(self) -> nn.Module:
        """The head: B x R*F features -> B x R*classes logits."""
        return self.network.fc

    def train(self, mode: bool = True) -> None:
        self.network.train(mode)

    def trainable(self, classifier_only: bool) -> list[torch.Tensor]:
        """The parameters the optimizer steps (only the head's if ``classifier_only``; the rest frozen)."""
        if classifier_only:
            self.network.requires_grad_(False)
            self.network.fc.requires_grad_(True)
            return list(self.network.fc.parameters())
        return list(self.network.parameters())

    def head_weight(self, run: int) -> torch.Tensor:
        """Run ``run``'s head weight, a view into the packed one."""
        return run_view(self.network.fc.weight, self.runs)[run]

    def state_dict(self, run: int) -> dict[str, torch.Tensor]:
        """Run ``run``'s parameters and buffers, keyed and shaped as the single model's ``state_dict``;
        copies, so that saving one run does not write the storage of all of them."""
        return {name: (run_view(t, self.runs)[run] if t.dim() else t).detach().clone()
                for name, t in self.network.state_dict().items()}

    @torch.no_grad()
    def load_state_dict(self, run: int, state: dict[str, torch.Tensor]) -> None:
        """Put a single model's ``state`` into run ``run``."""
        for name, tensor in self.network.state_dict().items():
            (run_view(tensor, self.runs)[run] if tensor.dim() else tensor).copy_(state[name])


def build_runs(arch: str, num_classes: int, head: str, seeds: list[int], device: torch.device,
               init_paths: list[str | None], head_biases: list[float | None] | None = None,
               channels_last: bool = False) -> Runs:
    """``Runs`` of one model per seed, each initialised from ``torch.manual_seed(seed)`` exactly as a
    lone run is (its head bias set to its ``head_biases`` entry if not None), or loaded from its
    ``init_paths`` entry; activations channels_last if ``channels_last``."""
    models = []
    for seed, init, head_bias in zip(seeds, init_paths, head_biases or [None] * len(seeds)):
        torch.manual_seed(seed)
        model = build_model(arch, num_classes, head=head)
        if head_bias is not None:
            if getattr(model.fc, "bias", None) is None:
                raise ValueError(f"a head bias of {head_bias} was asked for, but the {head} head has no bias")
            nn.init.constant_(model.fc.bias, head_bias)
        if init:
            model.load_state_dict(torch.load(init, map_location="cpu", weights_only=True))
        models.append(model.to(device))
    return Runs(models, arch, num_classes, head, torch.channels_last if channels_last else torch.contiguous_format)


def optimizer_state(optimizer: torch.optim.Optimizer, run: int, runs: int) -> dict[str, Any]:
    """Run ``run``'s share of an optimizer over packed parameters, in the format of that run's own
    optimizer (so checkpoints of packed and unpacked runs are interchangeable); copies of the
    per-run slices; identity if ``runs == 1``."""
    state = optimizer.state_dict()
    if runs == 1:
        return state
    return {"state": {k: {name: (run_view(v, runs)[run].clone() if isinstance(v, torch.Tensor) and v.dim() > 0 else v)
                          for name, v in s.items()} for k, s in state["state"].items()},
            "param_groups": state["param_groups"]}


def stack_optimizer_states(states: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The inverse of ``optimizer_state``: per-run optimizer states concatenated into one."""
    states = list(states)
    if len(states) == 1:
        return states[0]
    first = states[0]
    return {"state": {k: {name: (torch.cat([st["state"][k][name] for st in states])
                                 if isinstance(v, torch.Tensor) and v.dim() > 0 else v)
                          for name, v in s.items()} for k, s in first["state"].items()},
            "param_groups": first["param_groups"]}
