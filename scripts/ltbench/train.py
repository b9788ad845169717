"""Train one (benchmark, strategy, seed) run with the data resident on the device.

Everything that can fail on bad input (config, data, strategy weights, device) is
checked in ``prepare`` before the first step; outputs are written atomically at the end.
"""

from __future__ import annotations

import math
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ltbench import augment, strategies
from ltbench.config import Benchmark, Strategy
from ltbench.data import load_cache
from ltbench.devices import select_device
from ltbench.io import atomic_path, read_json, write_json
from ltbench.models import build_model

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Recipe:
    """The fixed training recipe (config.yaml ``recipe``)."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    crop_padding: int
    flip: bool
    eval_batch_size: int


@dataclass(frozen=True)
class RunSpec:
    """One training run and where its inputs and outputs live."""

    benchmark: Benchmark
    strategy: Strategy
    seed: int
    recipe: Recipe
    device: str
    threads: int
    index_path: str
    cache_path: str
    history_path: str
    predictions_path: str


@dataclass
class Prepared:
    """Validated inputs of a run, ready to train."""

    device: torch.device
    index: dict[str, Any]
    weights: torch.Tensor
    logit_offsets: torch.Tensor | None


def prepare(spec: RunSpec) -> Prepared:
    """Load the index, resolve and validate the strategy, pick the device; no training yet."""
    index = read_json(spec.index_path)
    context = {
        "imbalance_ratio": spec.benchmark.imbalance_ratio,
        "dataset": spec.benchmark.dataset,
        "arch": spec.benchmark.arch,
    }
    resolved = strategies.resolve(spec.strategy, index["class_counts"], context)
    device = select_device(spec.device, spec.threads)
    return Prepared(device, index, resolved.weights, resolved.logit_offsets)


def git_commit() -> str:
    """The repository's HEAD commit, with ``+dirty`` if the tree has changes; ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def to_device_nchw(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 NHWC numpy -> uint8 NCHW tensor on ``device``."""
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).contiguous()


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """lr_e = base_lr * (1 + cos(pi * e / E)) / 2, for epoch e = 0..E-1 (one step per epoch)."""
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


class Trainer:
    """Model, optimizer and device-resident data of one run."""

    def __init__(self, spec: RunSpec, prep: Prepared) -> None:
        self.spec, self.recipe, self.device = spec, spec.recipe, prep.device
        cache = load_cache(spec.cache_path)
        self.train_x = to_device_nchw(cache["train_x"], self.device)
        self.train_y = torch.from_numpy(cache["train_y"]).to(self.device)
        self.test_x = to_device_nchw(cache["test_x"], self.device)
        self.test_y = torch.from_numpy(cache["test_y"]).to(self.device)
        self.num_classes = prep.index["num_classes"]
        self.mean = torch.tensor(prep.index["mean"], device=self.device)
        self.std = torch.tensor(prep.index["std"], device=self.device)
        self.weights = prep.weights.to(self.device)
        self.offsets = None if prep.logit_offsets is None else prep.logit_offsets.to(self.device)
        self.cuda = self.device.type == "cuda"
        self.memory_format = torch.channels_last if self.cuda else torch.contiguous_format

        torch.manual_seed(spec.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(spec.seed)
        model = build_model(spec.benchmark.arch, self.num_classes)
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=self.recipe.lr, momentum=self.recipe.momentum,
            weight_decay=self.recipe.weight_decay,
        )

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        return augment.normalize(images, self.mean, self.std).contiguous(memory_format=self.memory_format)

    def _autocast(self):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.cuda)

    def train_epoch(self, epoch: int) -> float:
        """One pass over every training image (the last batch may be smaller); returns mean loss."""
        lr = cosine_lr(self.recipe.lr, epoch, self.recipe.epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        n = len(self.train_y)
        order = torch.randperm(n, device=self.device, generator=self.generator)
        loss_sum = torch.zeros((), device=self.device)
        for start in range(0, n, self.recipe.batch_size):
            idx = order[start : start + self.recipe.batch_size]
            images = augment.augment(self.train_x[idx], self.recipe.crop_padding, self.recipe.flip, self.generator)
            with self._autocast():
                logits = self.model(self._inputs(images)).float()
            if self.offsets is not None:
                logits = logits + self.offsets
            loss = F.cross_entropy(logits, self.train_y[idx], weight=self.weights)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach() * len(idx)
        return float(loss_sum) / n

    @torch.no_grad()
    def evaluate(self) -> torch.Tensor:
        """Logits (float32) of the whole test set, unshifted by any training offsets."""
        self.model.eval()
        out = []
        for start in range(0, len(self.test_y), self.recipe.eval_batch_size):
            with self._autocast():
                out.append(self.model(self._inputs(self.test_x[start : start + self.recipe.eval_batch_size])).float())
        return torch.cat(out)


def format_eta(seconds: float) -> str:
    """``h:mm:ss``."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def run(spec: RunSpec) -> dict[str, Any]:
    """Train, evaluate every epoch, and write the history JSON and the predictions .npz."""
    start = time.perf_counter()
    prep = prepare(spec)
    trainer = Trainer(spec, prep)
    tag = f"{spec.benchmark.name}/{spec.strategy.name}/seed{spec.seed}"
    device_name = torch.cuda.get_device_name(prep.device) if trainer.cuda else platform.processor() or "cpu"
    print(f"[{tag}] {len(trainer.train_y)} train / {len(trainer.test_y)} test images on {prep.device} ({device_name})")
    labels = trainer.test_y
    epochs, best, best_logits = [], None, None
    train_start = time.perf_counter()
    for epoch in range(spec.recipe.epochs):
        t0 = time.perf_counter()
        lr = cosine_lr(spec.recipe.lr, epoch, spec.recipe.epochs)
        loss = trainer.train_epoch(epoch)
        logits = trainer.evaluate()
        correct = torch.bincount(labels[logits.argmax(1) == labels], minlength=trainer.num_classes).cpu()
        acc = 100.0 * float(correct.sum()) / len(labels)
        seconds = time.perf_counter() - t0
        epochs.append({
            "epoch": epoch + 1, "lr": lr, "train_loss": loss, "test_acc": acc,
            "per_class_correct": correct.tolist(), "seconds": seconds,
        })
        if best is None or acc > epochs[best]["test_acc"]:
            best, best_logits = epoch, logits
        eta = (time.perf_counter() - train_start) / (epoch + 1) * (spec.recipe.epochs - epoch - 1)
        print(
            f"[{tag}] epoch {epoch + 1}/{spec.recipe.epochs} loss {loss:.4f} test acc {acc:.2f}"
            f" (best {epochs[best]['test_acc']:.2f}) lr {lr:.4f}"
            f" {len(trainer.train_y) / seconds:.0f} img/s eta {format_eta(eta)}"
        )
    train_seconds = time.perf_counter() - train_start
    history = {
        "benchmark": asdict(spec.benchmark),
        "strategy": {"name": spec.strategy.name, "module": spec.strategy.module, "params": spec.strategy.params},
        "seed": spec.seed,
        "recipe": asdict(spec.recipe),
        "class_counts": prep.index["class_counts"],
        "class_weights": prep.weights.tolist(),
        "logit_offsets": None if prep.logit_offsets is None else prep.logit_offsets.tolist(),
        "best_epoch": best + 1,
        "best_test_acc": epochs[best]["test_acc"],
        "final_test_acc": epochs[-1]["test_acc"],
        "provenance": {
            "commit": git_commit(),
            "torch_version": torch.__version__,
            "device": str(prep.device),
            "device_name": device_name,
            "train_seconds": train_seconds,
            "wall_seconds": time.perf_counter() - start,
            "data_checksums": prep.index["checksums"],
        },
        "epochs": epochs,
    }
    with atomic_path(spec.predictions_path, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp,
            labels=labels.cpu().numpy(),
            best_pred=best_logits.argmax(1).cpu().numpy(),
            last_pred=logits.argmax(1).cpu().numpy(),
            best_logits=best_logits.cpu().numpy(),
            last_logits=logits.cpu().numpy(),
        )
    write_json(spec.history_path, history)
    print(f"[{tag}] done: best test acc {history['best_test_acc']:.2f} at epoch {best + 1},"
          f" final {history['final_test_acc']:.2f}, {train_seconds:.1f} s training")
    return history
