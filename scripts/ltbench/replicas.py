"""Models of the runs a job trains side by side, behind one interface.

Inputs carry a leading run axis R (images: R x B x C x H x W) and logits come back as
R x B x classes. ``Single`` is one ordinary module (R = 1, channels_last on CUDA, feature
hooks allowed). ``Stacked`` holds the parameters and buffers of R models of the same
architecture stacked along a new first axis and runs them with ``torch.vmap`` over
``torch.func.functional_call``: each convolution becomes one grouped convolution, so the
runs share every kernel launch. Summing the runs' losses and calling ``backward`` gives
each run exactly its own gradient (a run's loss does not depend on the others'
parameters), and SGD with momentum and weight decay is elementwise, so one optimizer
over the stacked tensors steps every run as its own optimizer would.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

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


class Single:
    """One model; ``runs == 1``."""

    runs = 1

    def __init__(self, model: nn.Module, memory_format=torch.contiguous_format) -> None:
        self.module, self.memory_format = model, memory_format
        self._forward = model

    def compile(self, mode: str | None, backend: str = "inductor") -> None:
        """Compile the forward pass (the feature-hook path stays eager)."""
        self._forward = compiled(self.module, mode, backend)

    def __call__(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """Logits (1 x B x classes) of ``x`` (1 x B x C x H x W, or B x C x H x W if ``shared``)."""
        x = x if shared else x[0]
        return self._forward(x.contiguous(memory_format=self.memory_format))[None]

    def train(self, mode: bool = True) -> None:
        self.module.train(mode)

    def trainable(self, classifier_only: bool) -> list[torch.Tensor]:
        """The parameters the optimizer steps (only the head's if ``classifier_only``; the rest frozen)."""
        if classifier_only:
            self.module.requires_grad_(False)
            self.module.fc.requires_grad_(True)
            return list(self.module.fc.parameters())
        return list(self.module.parameters())

    def head_weight(self, run: int) -> torch.Tensor:
        return self.module.fc.weight

    def state_dict(self, run: int) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, run: int, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)


class Stacked:
    """R models of one architecture trained side by side (see the module docstring)."""

    def __init__(self, models: list[nn.Module]) -> None:
        self.runs = len(models)
        self.params, self.buffers = stack_module_state(models)  # leaves, in named_parameters() order
        self.base = copy.deepcopy(models[0]).to("meta")
        self._forward = self._vmapped

    def _one(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def _vmapped(self, params: dict, buffers: dict, x: torch.Tensor, shared: bool) -> torch.Tensor:
        return torch.vmap(self._one, in_dims=(0, 0, None if shared else 0))(params, buffers, x)

    def compile(self, mode: str | None, backend: str = "inductor") -> None:
        """Compile the vmapped forward. The stacked tensors are plain inputs to it, not module
        parameters, so they are marked as living at fixed addresses: CUDA graphs then neither copy
        them on every call nor refuse the in-place BatchNorm statistics updates."""
        if mode is not None:
            for tensor in [*self.params.values(), *self.buffers.values()]:
                torch._dynamo.mark_static_address(tensor)
        self._forward = compiled(self._vmapped, mode, backend)

    def __call__(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """Logits (R x B x classes) of ``x`` (R x B x C x H x W, or B x C x H x W seen by every run if ``shared``)."""
        return self._forward(self.params, self.buffers, x, shared)

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def trainable(self, classifier_only: bool) -> list[torch.Tensor]:
        """The stacked parameters the optimizer steps, in the order a single model lists them."""
        chosen = []
        for name, param in self.params.items():
            learn = not classifier_only or name.startswith("fc.")
            param.requires_grad_(learn)
            if learn:
                chosen.append(param)
        return chosen

    def head_weight(self, run: int) -> torch.Tensor:
        return self.params["fc.weight"][run]

    def state_dict(self, run: int) -> dict[str, torch.Tensor]:
        """Run ``run``'s parameters and buffers, keyed as the single model's ``state_dict``."""
        state = {**self.params, **self.buffers}
        return {name: state[name][run].detach() for name in self.base.state_dict()}

    @torch.no_grad()
    def load_state_dict(self, run: int, state: dict[str, torch.Tensor]) -> None:
        for name, tensor in {**self.params, **self.buffers}.items():
            tensor[run].copy_(state[name])


def optimizer_state(optimizer: torch.optim.Optimizer, run: int, runs: int) -> dict[str, Any]:
    """Run ``run``'s share of an optimizer over stacked parameters, in the format of that run's own
    optimizer (so checkpoints of packed and unpacked runs are interchangeable); identity if ``runs == 1``."""
    state = optimizer.state_dict()
    if runs == 1:
        return state
    return {"state": {k: {name: (v[run] if isinstance(v, torch.Tensor) and v.dim() > 0 else v)
                          for name, v in s.items()} for k, s in state["state"].items()},
            "param_groups": state["param_groups"]}


def stack_optimizer_states(states: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The inverse of ``optimizer_state``: per-run optimizer states stacked into one."""
    states = list(states)
    if len(states) == 1:
        return states[0]
    first = states[0]
    return {"state": {k: {name: (torch.stack([st["state"][k][name] for st in states])
                                 if isinstance(v, torch.Tensor) and v.dim() > 0 else v)
                          for name, v in s.items()} for k, s in first["state"].items()},
            "param_groups": first["param_groups"]}
