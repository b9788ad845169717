"""The benchmark architectures, CIFAR variants, built for one run or for R runs packed.

- ``resnet32``: He et al. (2016) CIFAR ResNet: a 3x3 16-channel stem, 3 stages x 5
  basic blocks with 16/32/64 channels, option-A shortcuts (stride-2 subsampling plus
  zero-padded channels, no parameters), global average pooling, a linear head.
  Kaiming-normal initialisation as in kaidic/LDAM-DRW. 464,154 parameters for 10 classes.
- ``resnet<6n+2>``: the same family at other depths, n basic blocks per stage (``RESNET_DEPTHS``:
  8, 14, 20, 32, 44, 56, 110); with 10 classes ResNet-8 has 75,290 parameters and ResNet-20 269,722.
- ``vgg16bn``: VGG-16 with batch norm: 13 conv3x3(+bias)+BN+ReLU layers and 5 max-pools,
  which leave a 1x1x512 map at 32x32 (global average pooling makes larger inputs work too);
  the head is a single linear layer 512 -> C (the common CIFAR variant, e.g.
  kuangliu/pytorch-cifar). 14,728,266 parameters for 10 classes.

Packed runs (``runs`` = R > 1): R independent models of one architecture folded into the
channel axis. Activations are B x (R*C) x H x W, run r owning channels [r*C, (r+1)*C);
every convolution is grouped (``groups`` = R times the single model's), every batch norm is
one ``BatchNorm2d(R*C)``, and the head maps B x (R*F) features to B x (R*classes) logits.
No operation mixes runs, so each run computes exactly what its own single model would. Every
parameter and buffer of the packed model is the R single-model tensors concatenated along
the first axis (``run_view``), under the single model's name, so run r's state dict is a slice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def run_view(tensor: torch.Tensor, runs: int) -> torch.Tensor:
    """A packed parameter or buffer (first axis R*n) as R x n x ...; 0-d tensors (BatchNorm's
    ``num_batches_tracked``, shared by all runs) are returned as they are."""
    return tensor.unflatten(0, (runs, -1)) if tensor.dim() else tensor


def conv3x3(in_ch: int, out_ch: int, runs: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """A 3x3 convolution (padding 1) of each of ``runs`` runs: one convolution with ``runs`` groups."""
    return nn.Conv2d(runs * in_ch, runs * out_ch, 3, stride=stride, padding=1, bias=bias, groups=runs)


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN layers with an option-A (parameter-free) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int, runs: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, runs, stride)
        self.bn1 = nn.BatchNorm2d(runs * planes)
        self.conv2 = conv3x3(planes, planes, runs)
        self.bn2 = nn.BatchNorm2d(runs * planes)
        self.pad, self.stride, self.runs = (planes - in_planes) // 2, stride, runs

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Identity, or subsample by the stride and zero-pad each run's channels on both sides."""
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride].unflatten(1, (self.runs, -1))
        return F.pad(x, (0, 0, 0, 0, self.pad, self.pad)).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """CIFAR ResNet with ``blocks`` basic blocks per stage (5 -> ResNet-32)."""

    def __init__(self, num_classes: int, blocks: int = 5, head: str = "linear", runs: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(3, 16, runs)
        self.bn1 = nn.BatchNorm2d(runs * 16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(blocks):
                stages.append(BasicBlock(in_planes, planes, stride if i == 0 else 1, runs))
                in_planes = planes
        self.blocks = nn.Sequential(*stages)
        self.fc = make_head(64, num_classes, head, runs)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features (B x R*64) that the head classifies."""
        out = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


class PackedLinear(nn.Linear):
    """z = x W_r^T + b_r for each run r: weight R*classes x in, bias R*classes; B x (R*in) -> B x (R*classes).
    With one run it is ``nn.Linear``."""

    def __init__(self, in_features: int, num_classes: int, runs: int = 1) -> None:
        super().__init__(in_features, runs * num_classes)
        self.runs = runs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.runs == 1:
            return super().forward(x)
        w = run_view(self.weight, self.runs)  # R x classes x in
        z = torch.einsum("bri,rci->brc", x.unflatten(1, (self.runs, -1)), w)
        z = z + run_view(self.bias, self.runs).to(z.dtype)  # bf16 under autocast, as nn.Linear's output is
        return z.flatten(1)


class CosineLinear(nn.Module):
    """Cosine classifier (LDAM's NormedLinear): z_c = <x / |x|, w_c / |w_c|>, no bias; the weight is
    stored transposed (in x classes; packed: R*in x classes). Computed in float32 even under
    autocast: scaled by 30 in the LDAM loss, bf16 cosines would quantise the logits by ~0.1."""

    def __init__(self, in_features: int, num_classes: int, runs: int = 1) -> None:
        super().__init__()
        self.runs = runs
        self.weight = nn.Parameter(
            torch.empty(runs * in_features, num_classes).uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            x = F.normalize(x.float().unflatten(1, (self.runs, -1)), dim=2)  # B x R x in
            w = F.normalize(run_view(self.weight.float(), self.runs), dim=1)  # R x in x classes
            return torch.einsum("bri,ric->brc", x, w).flatten(1)


HEADS = {"linear": PackedLinear, "cosine": CosineLinear}


def make_head(in_features: int, num_classes: int, head: str, runs: int = 1) -> nn.Module:
    """``linear``: a linear layer with bias; ``cosine``: ``CosineLinear``; one per run."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; known: {', '.join(HEADS)}")
    return HEADS[head](in_features, num_classes, runs)


class VGGCifar(nn.Module):
    """VGG with batch norm for CIFAR-sized inputs; ``layout`` lists channels and 'M' max-pools."""

    def __init__(self, num_classes: int, layout=VGG16_LAYOUT, head: str = "linear", runs: int = 1) -> None:
        super().__init__()
        layers, in_ch = [], 3
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [conv3x3(in_ch, item, runs, bias=True), nn.BatchNorm2d(runs * item), nn.ReLU(inplace=True)]
                in_ch = item
        self.features = nn.Sequential(*layers)
        self.fc = make_head(in_ch, num_classes, head, runs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features (B x R*512) that the head classifies, averaged over what the pools leave
        (a single 1x1 position at 32x32 inputs)."""
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


RESNET_DEPTHS = (8, 14, 20, 32, 44, 56, 110)  # He et al.'s CIFAR ResNets: depth 6n + 2, n blocks per stage


def cifar_resnet(depth: int):
    """The CIFAR ResNet of ``depth`` = 6n + 2 layers (n = (depth - 2) / 6 basic blocks per stage)."""
    blocks, rest = divmod(depth - 2, 6)
    if rest or blocks < 1:
        raise ValueError(f"a CIFAR ResNet has depth 6n + 2 (8, 14, 20, ...), not {depth}")

    def build(num_classes: int, head: str = "linear", runs: int = 1) -> ResNetCifar:
        return ResNetCifar(num_classes, blocks=blocks, head=head, runs=runs)

    return build


# the registry; the schema's enum must match
ARCHITECTURES = {**{f"resnet{d}": cifar_resnet(d) for d in RESNET_DEPTHS}, "vgg16bn": VGGCifar}
ARCHS = tuple(ARCHITECTURES)


def build_model(arch: str, num_classes: int, head: str = "linear", runs: int = 1) -> nn.Module:
    """Instantiate ``arch`` (one of ``ARCHS``) with a ``num_classes``-way ``head`` (linear or cosine) as
    ``fc``, for ``runs`` packed runs (see the module docstring)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    return ARCHITECTURES[arch](num_classes, head=head, runs=runs)


def pack(models: list[nn.Module], arch: str, num_classes: int, head: str) -> nn.Module:
    """One packed model holding ``models`` (single models of ``arch``) as its runs, in order."""
    packed = build_model(arch, num_classes, head, runs=len(models)).to(next(models[0].parameters()).device)
    states = [m.state_dict() for m in models]
    with torch.no_grad():
        for name, tensor in packed.state_dict().items():
            tensor.copy_(torch.cat([s[name] for s in states]) if tensor.dim() else states[0][name])
    return packed
