"""The reference trainer of the speed measurements, written the way the canonical long-tail codebases
train (kaidic/LDAM-DRW ``cifar_train.py``): torchvision transforms on PIL images, a DataLoader with
worker processes, fp32, eager mode, evaluation every epoch. Same model, recipe, data and loss
weights as the pipeline. Speed-measurement code only: the pipeline never imports it.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ltbench.methods.models import build_model
from ltbench.training.spec import cosine_lr


class ArrayImages(Dataset):
    """uint8 NHWC images served as PIL images through a torchvision transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def train_reference(cache: dict[str, np.ndarray], index: dict, arch: str, recipe, weights: torch.Tensor,
                    seed: int, device: torch.device, workers: int = 4) -> dict:
    """Train and evaluate every epoch; returns per-epoch seconds (train, test), test accuracy and the
    wall time from data loaders to the last evaluation."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    np.random.seed(seed)
    normalize = T.Normalize(index["mean"], index["std"])
    train_tf = T.Compose([T.RandomCrop(32, padding=recipe.crop_padding), T.RandomHorizontalFlip(), T.ToTensor(),
                          normalize])
    test_tf = T.Compose([T.ToTensor(), normalize])
    train = DataLoader(ArrayImages(cache["train_x"], cache["train_y"], train_tf), batch_size=recipe.batch_size,
                       shuffle=True, num_workers=workers, pin_memory=device.type == "cuda",
                       persistent_workers=workers > 0)
    test = DataLoader(ArrayImages(cache["test_x"], cache["test_y"], test_tf), batch_size=100, shuffle=False,
                      num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    model = build_model(arch, index["num_classes"]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    criterion = torch.nn.CrossEntropyLoss(weight=weights.to(device))
    epochs = []
    for epoch in range(recipe.epochs):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(recipe.lr, epoch, recipe.epochs)
        t0 = time.perf_counter()
        model.train()
        for x, y in train:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        synchronize(device)
        t1 = time.perf_counter()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test:
                correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
        t2 = time.perf_counter()
        epochs.append({"train_seconds": t1 - t0, "test_seconds": t2 - t1, "seconds": t2 - t0,
                       "test_acc": 100.0 * correct / len(cache["test_y"])})
    return {"epochs": epochs, "best_test_acc": max(e["test_acc"] for e in epochs),
            "provenance": {"wall_seconds": time.perf_counter() - start}}


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so that wall-clock timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
