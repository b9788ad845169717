"""Train runs with the data resident on the device: the ``Trainer`` (models, optimizer, data of the runs one job
trains side by side), the epoch loop, and ``run_pack``, which checks everything, trains each pack and writes
every run's outputs.

Everything that can fail on bad input (config, data, strategy weights, device) is checked in ``prepare``
(ltbench.training.spec) before the first step; outputs are written atomically at the end (ltbench.training.outputs).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltbench.datasets import augment
from ltbench.datasets.data import DataError, load_cache
from ltbench.evaluation.shots import group_accuracy
from ltbench.methods.constraints import MaxNorm
from ltbench.methods.losses import CrossEntropy, packed_cross_entropy
from ltbench.methods.samplers import InstanceSampler
from ltbench.progress import clock
from ltbench.strategies import Method
from ltbench.training import checkpoint
from ltbench.training.checkpoint import History
from ltbench.training.devices import device_name, fused_sgd, resolve_memory_format, resolve_precision, select_device
from ltbench.training.outputs import write_outputs
from ltbench.training.packing import check_pack, pack_groups, stack_offsets
from ltbench.training.provenance import describe, git_commit, run_description
from ltbench.training.replicas import build_runs, optimizer_state, stack_optimizer_states
from ltbench.training.spec import Prepared, RunSpec, learning_rate, prepare


def to_device_nchw(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 NHWC numpy -> uint8 NCHW tensor on ``device``."""
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).contiguous()


# The largest evaluation batch on a CPU: activations of larger batches spill out of the caches. Measured on
# the 2-core development machine (ResNet-8, one thread): batch 100 evaluates 2.1x (bf16) and 2.0x (fp32) as
# many images per second as batch 1000 (docs/performance.md). Predictions do not depend on the batch size.
CPU_EVAL_BATCH = 100


class Trainer:
    """Models, optimizer and device-resident data of the runs one job trains side by side: runs of
    one benchmark that share the recipe and the epoch length and differ in seed or strategy (one run
    unless packed; see ltbench.training.replicas and ``pack_groups``). Run r draws its model initialisation,
    sample order and augmentation from its own seed, and takes its class weights, logit offsets,
    loss, sampler and head bias from its own strategy, as it would alone (equal to rounding)."""

    def __init__(self, specs: list[RunSpec], preps: list[Prepared], device: torch.device) -> None:
        spec, prep = specs[0], preps[0]
        self.specs, self.runs, self.recipe, self.device = specs, len(specs), prep.recipe, device
        self.methods = [p.method for p in preps]
        self.method = self.methods[0]  # what the runs share: head, trainable part, feature hook (a lone run)
        cache = load_cache(spec.cache_path, prep.index)
        self.train_x = to_device_nchw(cache["train_x"], self.device)
        self.train_y = torch.from_numpy(cache["train_y"]).to(self.device)
        self.test_x = to_device_nchw(cache["test_x"], self.device)
        self.test_y = torch.from_numpy(cache["test_y"]).to(self.device)
        held_out = "val_x" in cache  # a validation set for model selection without the test set
        self.val_x = to_device_nchw(cache["val_x"], self.device) if held_out else None
        self.val_y = torch.from_numpy(cache["val_y"]).to(self.device) if held_out else None
        self.num_classes = prep.index["num_classes"]
        self.class_counts = prep.index["class_counts"]
        self.mean = torch.tensor(prep.index["mean"], device=self.device)
        self.std = torch.tensor(prep.index["std"], device=self.device)
        self.offsets = stack_offsets(self.methods, self.device)
        # one loss call for every run where all of them train with plain (weighted) cross-entropy
        self.packed_loss = self.runs > 1 and all(type(m.loss) is CrossEntropy for m in self.methods)
        self.batch_mean = torch.tensor([getattr(m.loss, "reduction", None) == "batch_mean" for m in self.methods],
                                       device=self.device) if self.packed_loss else None
        self.cuda = self.device.type == "cuda"
        self.precision = resolve_precision(spec.precision, device)
        self.memory_format = resolve_memory_format(spec.memory_format, device, self.precision)
        self.eval_batch = self.recipe.eval_batch_size if self.cuda else min(self.recipe.eval_batch_size, CPU_EVAL_BATCH)
        self.cudagraphs = self.cuda and spec.compile == "reduce-overhead"

        if self.cuda:  # three static shapes (full batch, last batch, evaluation): let cuDNN pick its kernels
            torch.backends.cudnn.benchmark = True
        self.generators = [torch.Generator(device=self.device).manual_seed(s.seed) for s in specs]
        self.model = build_runs(spec.benchmark.arch, self.num_classes, self.method.head, [s.seed for s in specs],
                                self.device, [s.init_model_path for s in specs], [m.head_bias for m in self.methods],
                                channels_last=self.memory_format == "channels_last")
        self.model.compile(spec.compile, spec.compile_backend)
        params = self.model.trainable(self.method.trainable == "classifier")
        self.optimizer = torch.optim.SGD(
            params, lr=self.recipe.lr, momentum=self.recipe.momentum, weight_decay=self.recipe.weight_decay,
            fused=fused_sgd(self.device) or None,
        )
        self.max_norms = [(r, MaxNorm(self.model.head_weight(r), m.max_norm))
                          for r, m in enumerate(self.methods) if m.max_norm is not None]

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        return augment.normalize(images, self.mean, self.std)

    def _autocast(self):
        """bf16 autocast on the job's device where its precision is bf16; a no-op in fp32."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def _step_begin(self) -> None:
        """Tell CUDA-graph trees a new step starts, so the last step's outputs may be overwritten."""
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()

    def weights_at(self, epoch: int) -> torch.Tensor:
        """Every run's class weights in effect at ``epoch`` (R x classes, on the device)."""
        return torch.stack([m.weights_at(epoch) for m in self.methods]).to(self.device)

    def _losses(self, epoch: int, inputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The batch loss of every run (R,), from inputs R x B x C x H x W, targets R x B and class
        weights R x classes."""
        hook = self.method.feature_hook
        with self._autocast():
            logits, features = self.model(inputs, features=True)
        logits = logits.float()
        if self.offsets is not None:
            logits = logits + self.offsets[:, None, :]
        if self.packed_loss:
            losses = packed_cross_entropy(logits, targets, weights, self.batch_mean)
        else:
            losses = torch.stack([m.loss(logits[r], targets[r], weights[r]) for r, m in enumerate(self.methods)])
        if hook is not None:  # one run (run_pack never packs a strategy with a feature hook)
            with self._autocast():
                losses = hook(epoch, features[0], targets[0], self.model.classifier, losses[0], self.generators[0])[None]
        return losses

    def train_step(self, epoch: int, idx: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
        """One SGD step of every run on its batch (run r: training images ``idx[r]``); returns the
        runs' losses (R,), left on the device: nothing here waits for the device."""
        chosen = torch.stack(idx)  # R x B: one gather for every run
        targets = self.train_y[chosen]
        images = augment.augment_runs(self.train_x[chosen], self.recipe.crop_padding, self.recipe.flip, self.generators)
        self._step_begin()
        losses = self._losses(epoch, self._inputs(images), targets, weights)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.optimizer.step()
        return losses.detach()

    def train_epoch(self, epoch: int) -> tuple[list[float], int]:
        """One pass over each run's sample of training images for the epoch (by default every image
        once; the last batch may be smaller); returns each run's mean loss and the images per run."""
        lr = learning_rate(self.recipe, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        orders = [m.sampler_at(epoch).epoch(self.train_y, g) for m, g in zip(self.methods, self.generators)]
        weights = self.weights_at(epoch)
        n = len(orders[0])
        if any(len(order) != n for order in orders):
            raise RuntimeError("the samplers drew epochs of different lengths for runs of one pack: "
                               + ", ".join(sorted({describe(m.sampler_at(epoch)) for m in self.methods})))
        loss_sum = torch.zeros(self.runs, device=self.device)
        for start in range(0, n, self.recipe.batch_size):
            idx = [order[start : start + self.recipe.batch_size] for order in orders]
            loss_sum += self.train_step(epoch, idx, weights) * len(idx[0])
        for r, max_norm in self.max_norms:  # once per epoch, as in the reference code
            max_norm.project(self.model.head_weight(r))
        return (loss_sum / n).tolist(), n

    @torch.no_grad()
    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        """Every run's logits (float32, R x images x classes) of uint8 ``images``, unshifted by any training offsets
        and times its method's ``logit_scale``; in batches of ``recipe.eval_batch_size`` images, at most
        ``CPU_EVAL_BATCH`` on a CPU."""
        self.model.train(False)
        out = []
        for start in range(0, len(images), self.eval_batch):
            self._step_begin()
            with self._autocast():
                batch = self._inputs(images[start : start + self.eval_batch])
                # a copy: under CUDA graphs the output buffer is overwritten by the next batch
                out.append(self.model(batch, shared=True).to(torch.float32, copy=True))
        logits = torch.cat(out, dim=1)
        if any(m.logit_scale != 1.0 for m in self.methods):
            logits *= torch.tensor([m.logit_scale for m in self.methods], device=logits.device)[:, None, None]
        return logits

    def evaluate(self) -> torch.Tensor:
        """Every run's test logits (R x test images x classes)."""
        return self._logits(self.test_x)

    def validate(self) -> list[float] | None:
        """Every run's class-balanced validation accuracy (%, the mean over classes of their accuracy), or None
        without a validation set."""
        if self.val_y is None:
            return None
        hits = [correct_per_class(logits, self.val_y, self.num_classes) for logits in self._logits(self.val_x)]
        present = torch.bincount(self.val_y, minlength=self.num_classes).cpu()
        return [100.0 * float((h[present > 0] / present[present > 0]).mean()) for h in hits]

    def save_checkpoints(self, stamps: list[str], histories: list[History]) -> None:
        """One checkpoint per run, in the format of an unpacked run's."""
        for r, spec in enumerate(self.specs):
            checkpoint.save(spec.checkpoint_path, stamps[r], self.model.state_dict(r),
                            optimizer_state(self.optimizer, r, self.runs), self.generators[r],
                            self.method.feature_hook, histories[r])

    def resume(self, stamps: list[str]) -> list[History]:
        """Load the runs' checkpoints if every run has a valid one from the same epoch; else start afresh."""
        states = [checkpoint.load(spec.checkpoint_path, stamp, self.device) for spec, stamp in zip(self.specs, stamps)]
        done = {len(state["history"].epochs) if state else 0 for state in states}
        if None in states or len(done) > 1:
            if any(states):
                print("ignoring the checkpoints: the runs of this job did not all save the same epoch")
            return [History() for _ in self.specs]
        for r, state in enumerate(states):
            self.model.load_state_dict(r, state["model"])
            checkpoint.restore_rng(state, self.generators[r])
            if self.method.feature_hook is not None:
                self.method.feature_hook.load_state_dict(state["hook"])
        self.optimizer.load_state_dict(stack_optimizer_states(state["optimizer"] for state in states))
        return [state["history"] for state in states]


def correct_per_class(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Correctly classified images per class (CPU, int64) of one run's ``logits`` for ``labels``."""
    return torch.bincount(labels[logits.argmax(1) == labels], minlength=num_classes).cpu()


def shot_summary(correct: torch.Tensor, tested: torch.Tensor, class_counts: list[int]) -> str:
    """'many 61.2 medium 30.1 few 4.0': test accuracy (%) of each non-empty shot group's classes."""
    accuracy = group_accuracy(correct.tolist(), tested.tolist(), class_counts)
    return " ".join(f"{name} {acc:.1f}" for name, acc in accuracy.items() if acc is not None)


def switches(method: Method, epoch: int) -> list[str]:
    """What a deferred strategy switches on at its ``defer_epoch`` (0-based; its class weights, sampler
    and feature hook, those it has), for the log; nothing at any other epoch."""
    if not epoch or epoch != method.defer_epoch:
        return []
    found = [] if bool((method.weights == 1).all()) else ["the class weights"]
    if not isinstance(method.sampler, InstanceSampler):
        found.append(f"the sampler {describe(method.sampler)}")
    if method.feature_hook is not None:
        found.append("the feature hook")
    return found


def train_epochs(trainer: Trainer, histories: list[History], tags: list[str], save_checkpoints) -> torch.Tensor:
    """Run the epochs not yet in ``histories`` (at least one), printing each run's progress (loss,
    validation and test accuracy, shot groups, learning rate, training speed, ETA) and what a deferred
    strategy switches on; returns the last test logits (R x test images x classes). A packed job's
    epoch time is recorded for each of its runs."""
    labels, epochs = trainer.test_y, trainer.recipe.epochs
    tested = torch.bincount(labels, minlength=trainer.num_classes).cpu()
    logits = None
    for epoch in range(len(histories[0].epochs), epochs):
        for tag, method in zip(tags, trainer.methods):
            for change in switches(method, epoch):
                print(f"[{tag}] epoch {epoch + 1}: {change} switch on")
        t0 = time.perf_counter()
        losses, seen = trainer.train_epoch(epoch)  # ends by reading the losses: the device is done
        train_time = time.perf_counter() - t0
        logits = trainer.evaluate()
        correct = [correct_per_class(run_logits, labels, trainer.num_classes) for run_logits in logits]
        val_acc = trainer.validate()
        seconds = time.perf_counter() - t0
        lr = learning_rate(trainer.recipe, epoch)
        for r, history in enumerate(histories):
            acc = 100.0 * float(correct[r].sum()) / len(labels)
            history.train_seconds += seconds
            history.record({"epoch": epoch + 1, "lr": lr, "train_loss": losses[r], "train_images": seen,
                             "test_acc": acc, "per_class_correct": correct[r].tolist(), "seconds": seconds,
                             "train_seconds": train_time, **({"val_acc": val_acc[r]} if val_acc else {})},
                            logits[r])
            eta = history.train_seconds / (epoch + 1) * (epochs - epoch - 1)
            print(
                f"[{tags[r]}] epoch {epoch + 1}/{epochs} loss {losses[r]:.4f}"
                + (f" val acc {val_acc[r]:.2f}" if val_acc else "") + f" test acc {acc:.2f}"
                f" (best {history.epochs[history.best]['test_acc']:.2f}; {shot_summary(correct[r], tested, trainer.class_counts)})"
                f" lr {lr:.4f}; epoch in {seconds:.2f} s, {trainer.runs * seen / train_time:.0f} train img/s, eta {clock(eta)}"
            )
        every = trainer.specs[0].checkpoint_every
        if every and (epoch + 1) % every == 0 and epoch + 1 < epochs:
            save_checkpoints(histories)
    return logits


def run(spec: RunSpec) -> dict[str, Any]:
    """Train one run (resuming from a matching checkpoint), evaluate every epoch, write its history,
    predictions and final model; returns the history."""
    return run_pack([spec])[0]


def run_pack(specs: list[RunSpec]) -> list[dict[str, Any]]:
    """Train runs of one benchmark (several strategies and seeds) in one job, side by side on one
    device where they can share a model (``pack_groups``), each resuming from its checkpoint and
    writing its own outputs as it would alone (to rounding: grouped convolutions round differently); returns
    their histories in the order of ``specs``. Everything is validated before the first step, a stage 2's
    starting model included (one trained in the same job trains first)."""
    check_pack(specs)
    preps = [prepare(spec) for spec in specs]
    made_here = {spec.model_path for spec in specs}
    for spec in specs:  # a stage 2 starts from its stage 1's final model: there already, or trained in this job
        if spec.init_model_path and spec.init_model_path not in made_here and not Path(spec.init_model_path).is_file():
            raise DataError(f"{spec.strategy.name} (seed {spec.seed}) starts from {spec.init_model_path}, which does not"
                            f" exist: train its stage 1 ({spec.strategy.upstream}) first, or in the same job")
    device = select_device(specs[0].device, specs[0].threads)
    histories: list[dict[str, Any]] = [{}] * len(specs)
    # the groups that start from a model trained in this job come after the others (sorting is stable)
    groups = sorted(pack_groups(specs, preps), key=lambda g: any(specs[i].init_model_path in made_here for i in g))
    for group in groups:
        for i, history in zip(group, _train([specs[i] for i in group], [preps[i] for i in group], device)):
            histories[i] = history
    return histories


def _train(specs: list[RunSpec], preps: list[Prepared], device: torch.device) -> list[dict[str, Any]]:
    """Train ``specs`` side by side and write every run's outputs."""
    start = time.perf_counter()
    prep = preps[0]
    trainer = Trainer(specs, preps, device)
    tags = [f"{spec.benchmark.name}/{spec.strategy.name}/seed{spec.seed}" for spec in specs]
    named = device_name(device)
    slurm_job = os.environ.get("SLURM_JOB_ID")
    print(f"[{', '.join(tags)}] {len(trainer.train_y)} train / {len(trainer.test_y)} test images on {device}"
          f" ({named})" + (f", SLURM job {slurm_job}" if slurm_job else ""))
    print(f"[{', '.join(tags)}] {len(specs)} run(s) side by side, compile: {specs[0].compile or 'off'},"
          f" precision: {trainer.precision}, {trainer.memory_format}")
    descriptions = [run_description(spec, p) for spec, p in zip(specs, preps)]
    # the device type too: a checkpoint's generator states belong to the device that saved them
    stamps = [checkpoint.fingerprint({**d, "index": prep.index["checksums"], "precision": trainer.precision,
                                      "device": device.type}, spec.strategy.source)
              for d, spec in zip(descriptions, specs)]
    histories = trainer.resume(stamps)
    if histories[0].epochs:
        paths = ", ".join(spec.checkpoint_path for spec in specs)
        print(f"[{', '.join(tags)}] resuming from {paths} after epoch {len(histories[0].epochs)}")
    logits = train_epochs(trainer, histories, tags, lambda p: trainer.save_checkpoints(stamps, p))
    wall = time.perf_counter() - start
    provenance = {
        "commit": git_commit(),
        "torch_version": torch.__version__,
        "device": str(device),
        "device_name": named,
        "host": platform.node(),
        "slurm_job_id": slurm_job,
        "compile": specs[0].compile,
        "precision": trainer.precision,
        "memory_format": trainer.memory_format,
        "trained_with_seeds": [spec.seed for spec in specs],
        "trained_with": [f"{spec.strategy.name}/seed{spec.seed}" for spec in specs],
        "data_checksums": prep.index["checksums"],
    }
    return [write_outputs(spec, descriptions[r], histories[r], logits[r], trainer.model.state_dict(r),
                          trainer.test_y, {**provenance, "train_seconds": histories[r].train_seconds,
                                           "wall_seconds": wall}, tags[r])
            for r, spec in enumerate(specs)]
