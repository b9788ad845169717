"""The two benchmark architectures, CIFAR variants (32x32 inputs).

- ``resnet32``: He et al. (2016) CIFAR ResNet: a 3x3 16-channel stem, 3 stages x 5
  basic blocks with 16/32/64 channels, option-A shortcuts (stride-2 subsampling plus
  zero-padded channels, no parameters), global average pooling, a linear head.
  Kaiming-normal initialisation as in kaidic/LDAM-DRW. 464,154 parameters for 10 classes.
- ``vgg16bn``: VGG-16 with batch norm: 13 conv3x3(+bias)+BN+ReLU layers and 5 max-pools,
  which leave a 1x1x512 map; the head is a single linear layer 512 -> C (the common
  CIFAR variant, e.g. kuangliu/pytorch-cifar). 14,728,266 parameters for 10 classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ARCHS = ("resnet32", "vgg16bn")
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN layers with an option-A (parameter-free) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = (planes - in_planes) // 2
        self.stride = stride

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Identity, or subsample by the stride and zero-pad channels on both sides."""
        if self.stride == 1 and self.pad == 0:
            return x
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.pad, self.pad))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """CIFAR ResNet with ``blocks`` basic blocks per stage (5 -> ResNet-32)."""

    def __init__(self, num_classes: int, blocks: int = 5, head: str = "linear") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(blocks):
                stages.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
        self.blocks = nn.Sequential(*stages)
        self.fc = make_head(64, num_classes, head)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 64-d pooled features that the head classifies."""
        out = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


class CosineLinear(nn.Module):
    """Cosine classifier (LDAM's NormedLinear): z_c = <x / |x|, w_c / |w_c|>, no bias."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, num_classes).uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=0)


def make_head(in_features: int, num_classes: int, head: str) -> nn.Module:
    """``linear``: nn.Linear with bias; ``cosine``: ``CosineLinear``."""
    if head == "linear":
        return nn.Linear(in_features, num_classes)
    if head == "cosine":
        return CosineLinear(in_features, num_classes)
    raise ValueError(f"unknown head {head!r}; known: linear, cosine")


class VGGCifar(nn.Module):
    """VGG with batch norm for 32x32 inputs; ``layout`` lists channels and 'M' max-pools."""

    def __init__(self, num_classes: int, layout=VGG16_LAYOUT, head: str = "linear") -> None:
        super().__init__()
        layers, in_ch = [], 3
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, item, 3, padding=1), nn.BatchNorm2d(item), nn.ReLU(inplace=True)]
                in_ch = item
        self.features = nn.Sequential(*layers)
        self.fc = make_head(in_ch, num_classes, head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 512-d features that the head classifies."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def build_model(arch: str, num_classes: int, head: str = "linear") -> nn.Module:
    """Instantiate ``arch`` (one of ``ARCHS``) with a ``num_classes``-way ``head`` (linear or cosine) as ``fc``."""
    if arch == "resnet32":
        return ResNetCifar(num_classes, head=head)
    if arch == "vgg16bn":
        return VGGCifar(num_classes, head=head)
    raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
