"""Train one (benchmark, strategy, seed) run with the data resident on the device.

Everything that can fail on bad input (config, data, strategy weights, device) is
checked in ``prepare`` before the first step; outputs are written atomically at the end.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltbench import augment, checkpoint, strategies
from ltbench.checkpoint import Progress
from ltbench.constraints import MaxNorm
from ltbench.strategies import Method
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
    model_path: str
    checkpoint_path: str
    checkpoint_every: int = 0
    init_model_path: str | None = None  # second stage: start from this run's final weights


@dataclass
class Prepared:
    """Validated inputs of a run, ready to train."""

    device: torch.device
    index: dict[str, Any]
    method: Method
    recipe: Recipe


def strategy_context(spec: RunSpec) -> dict[str, Any]:
    """What every strategy is told about the run besides the class counts."""
    return {
        "imbalance_ratio": spec.benchmark.imbalance_ratio,
        "dataset": spec.benchmark.dataset,
        "arch": spec.benchmark.arch,
        "epochs": spec.recipe.epochs,
    }


def effective_recipe(spec: RunSpec, method: Method) -> Recipe:
    """The recipe with the strategy's overrides applied; unknown recipe keys are a ``StrategyError``."""
    unknown = set(method.recipe) - {f.name for f in fields(Recipe)}
    if unknown:
        raise strategies.StrategyError(f"strategy {spec.strategy.name!r} overrides unknown recipe keys {sorted(unknown)}")
    return replace(spec.recipe, **method.recipe)


def prepare(spec: RunSpec) -> Prepared:
    """Load the index, resolve and validate the strategy, pick the device; no training yet."""
    index = read_json(spec.index_path)
    method = strategies.resolve(spec.strategy, index["class_counts"], strategy_context(spec))
    recipe = effective_recipe(spec, method)
    device = select_device(spec.device, spec.threads)
    return Prepared(device, index, method, recipe)


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
        self.spec, self.recipe, self.device, self.method = spec, prep.recipe, prep.device, prep.method
        cache = load_cache(spec.cache_path)
        self.train_x = to_device_nchw(cache["train_x"], self.device)
        self.train_y = torch.from_numpy(cache["train_y"]).to(self.device)
        self.test_x = to_device_nchw(cache["test_x"], self.device)
        self.test_y = torch.from_numpy(cache["test_y"]).to(self.device)
        self.num_classes = prep.index["num_classes"]
        self.mean = torch.tensor(prep.index["mean"], device=self.device)
        self.std = torch.tensor(prep.index["std"], device=self.device)
        self.offsets = None if self.method.logit_offsets is None else self.method.logit_offsets.to(self.device)
        self.cuda = self.device.type == "cuda"
        self.memory_format = torch.channels_last if self.cuda else torch.contiguous_format

        torch.manual_seed(spec.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(spec.seed)
        model = build_model(spec.benchmark.arch, self.num_classes, head=self.method.head)
        if spec.init_model_path:
            model.load_state_dict(torch.load(spec.init_model_path, map_location="cpu", weights_only=True))
        self.model = model.to(self.device, memory_format=self.memory_format)
        params = self.model.parameters()
        if self.method.trainable == "classifier":
            self.model.requires_grad_(False)
            self.model.fc.requires_grad_(True)
            params = self.model.fc.parameters()
        self.optimizer = torch.optim.SGD(
            params, lr=self.recipe.lr, momentum=self.recipe.momentum, weight_decay=self.recipe.weight_decay,
        )
        self.max_norm = None if self.method.max_norm is None else MaxNorm(self.model.fc.weight, self.method.max_norm)

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        return augment.normalize(images, self.mean, self.std).contiguous(memory_format=self.memory_format)

    def _autocast(self):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.cuda)

    def train_epoch(self, epoch: int) -> tuple[float, int]:
        """One pass over the epoch's sample of training images (by default every image once; the last
        batch may be smaller); returns the mean loss and the number of images seen."""
        lr = cosine_lr(self.recipe.lr, epoch, self.recipe.epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        order = self.method.sampler_at(epoch).epoch(self.train_y, self.generator)
        weights = self.method.weights_at(epoch).to(self.device)
        n = len(order)
        loss_sum = torch.zeros((), device=self.device)
        for start in range(0, n, self.recipe.batch_size):
            idx = order[start : start + self.recipe.batch_size]
            images = augment.augment(self.train_x[idx], self.recipe.crop_padding, self.recipe.flip, self.generator)
            hook, targets = self.method.feature_hook, self.train_y[idx]
            with self._autocast():
                if hook is None:
                    logits = self.model(self._inputs(images)).float()
                else:
                    features = self.model.forward_features(self._inputs(images))
                    logits = self.model.fc(features).float()
            if self.offsets is not None:
                logits = logits + self.offsets
            loss = self.method.loss(logits, targets, weights)
            if hook is not None:
                with self._autocast():
                    loss = hook(epoch, features, targets, self.model.fc, loss, self.generator)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach() * len(idx)
        if self.max_norm is not None:  # once per epoch, as in the reference code
            self.max_norm.project(self.model.fc.weight)
        return float(loss_sum) / n, n

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


def describe(obj: Any) -> str:
    """A loss, sampler or hook as ``ClassName(attr=value, ...)`` (tensors as lists), or its own ``describe()``."""
    if obj is None:
        return "None"
    if callable(getattr(obj, "describe", None)):
        return obj.describe()
    attrs = ", ".join(
        f"{k}={v.tolist() if isinstance(v, torch.Tensor) else v!r}" for k, v in sorted(vars(obj).items())
    )
    return f"{type(obj).__name__}({attrs})"


def run_description(spec: RunSpec, prep: Prepared) -> dict[str, Any]:
    """What the run's result depends on, for the history and the checkpoint fingerprint."""
    method = prep.method
    return {
        "benchmark": asdict(spec.benchmark),
        "strategy": {"name": spec.strategy.name, "module": spec.strategy.module, "params": spec.strategy.params,
                     "type": method.type},
        "seed": spec.seed,
        "recipe": asdict(prep.recipe),
        "class_counts": prep.index["class_counts"],
        "class_weights": method.weights.tolist(),
        "logit_offsets": None if method.logit_offsets is None else method.logit_offsets.tolist(),
        "method": {
            "loss": describe(method.loss),
            "sampler": describe(method.sampler),
            "head": method.head,
            "weights_from_epoch": method.weights_from_epoch,
            "sampler_from_epoch": method.sampler_from_epoch,
            "recipe_overrides": method.recipe,
            "trainable": method.trainable,
            "max_norm": method.max_norm,
            "init_model": spec.init_model_path,
            "feature_hook": describe(method.feature_hook),
        },
    }


def train_epochs(spec: RunSpec, trainer: Trainer, progress: Progress, tag: str, save_checkpoint) -> torch.Tensor:
    """Run the epochs not yet in ``progress`` (at least one), printing progress; returns the last test logits."""
    labels, epochs = trainer.test_y, trainer.recipe.epochs
    logits = None
    for epoch in range(len(progress.epochs), epochs):
        t0 = time.perf_counter()
        loss, seen = trainer.train_epoch(epoch)
        logits = trainer.evaluate()
        correct = torch.bincount(labels[logits.argmax(1) == labels], minlength=trainer.num_classes).cpu()
        acc = 100.0 * float(correct.sum()) / len(labels)
        seconds = time.perf_counter() - t0
        progress.train_seconds += seconds
        lr = cosine_lr(trainer.recipe.lr, epoch, epochs)
        progress.record({"epoch": epoch + 1, "lr": lr, "train_loss": loss, "train_images": seen, "test_acc": acc,
                         "per_class_correct": correct.tolist(), "seconds": seconds}, logits)
        eta = progress.train_seconds / (epoch + 1) * (epochs - epoch - 1)
        print(
            f"[{tag}] epoch {epoch + 1}/{epochs} loss {loss:.4f} test acc {acc:.2f}"
            f" (best {progress.epochs[progress.best]['test_acc']:.2f}) lr {lr:.4f}"
            f" {seen / seconds:.0f} img/s eta {format_eta(eta)}"
        )
        if spec.checkpoint_every and (epoch + 1) % spec.checkpoint_every == 0 and epoch + 1 < epochs:
            save_checkpoint(progress)
    return logits


def run(spec: RunSpec) -> dict[str, Any]:
    """Train (resuming from a matching checkpoint), evaluate every epoch, write history and predictions."""
    start = time.perf_counter()
    prep = prepare(spec)
    trainer = Trainer(spec, prep)
    tag = f"{spec.benchmark.name}/{spec.strategy.name}/seed{spec.seed}"
    device_name = torch.cuda.get_device_name(prep.device) if trainer.cuda else platform.processor() or "cpu"
    slurm_job = os.environ.get("SLURM_JOB_ID")
    print(f"[{tag}] {len(trainer.train_y)} train / {len(trainer.test_y)} test images on {prep.device} ({device_name})"
          + (f", SLURM job {slurm_job}" if slurm_job else ""))
    description = run_description(spec, prep)
    state = (trainer.model, trainer.optimizer, trainer.generator, prep.method.feature_hook)
    stamp = checkpoint.fingerprint({**description, "index": prep.index["checksums"]}, spec.strategy.source)
    progress = checkpoint.load(spec.checkpoint_path, stamp, *state, prep.device) or Progress()
    if progress.epochs:
        print(f"[{tag}] resuming from {spec.checkpoint_path} after epoch {len(progress.epochs)}")
    logits = train_epochs(spec, trainer, progress, tag,
                          lambda p: checkpoint.save(spec.checkpoint_path, stamp, *state, p))
    best = progress.best
    history = {
        **description,
        "best_epoch": best + 1,
        "best_test_acc": progress.epochs[best]["test_acc"],
        "final_test_acc": progress.epochs[-1]["test_acc"],
        "provenance": {
            "commit": git_commit(),
            "torch_version": torch.__version__,
            "device": str(prep.device),
            "device_name": device_name,
            "host": platform.node(),
            "slurm_job_id": slurm_job,
            "train_seconds": progress.train_seconds,
            "wall_seconds": time.perf_counter() - start,
            "data_checksums": prep.index["checksums"],
        },
        "epochs": progress.epochs,
    }
    labels = trainer.test_y
    with atomic_path(spec.predictions_path, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp,
            labels=labels.cpu().numpy(),
            best_pred=progress.best_logits.argmax(1).cpu().numpy(),
            last_pred=logits.argmax(1).cpu().numpy(),
            best_logits=progress.best_logits.cpu().numpy(),
            last_logits=logits.cpu().numpy(),
        )
    with atomic_path(spec.model_path, suffix=".pt") as tmp:
        torch.save({k: v.cpu() for k, v in trainer.model.state_dict().items()}, tmp)
    write_json(spec.history_path, history)
    Path(spec.checkpoint_path).unlink(missing_ok=True)
    print(f"[{tag}] done: best test acc {history['best_test_acc']:.2f} at epoch {best + 1},"
          f" final {history['final_test_acc']:.2f}, {progress.train_seconds:.1f} s training")
    return history
