"""ResNets for CIFAR as in the reference code (tomgoldstein/loss-landscape, ``cifar10/models``).

Module names, shapes and forward computation follow ``shared/reference/zoo_state_dicts.txt``
so a checkpoint trained with the reference code loads with strict keys and gives the same
logits. Two families: the 3-stage CIFAR ResNets (``resnet20/56/110``, wide ``wrnD_k``) and the
4-stage ImageNet-style ones adapted to 32x32 (``resnet18/34/50/101/152``), each with a
``_noshort`` variant that has no skip connections at all. ``digits_resnet*`` (depths 8, 14, 20,
56 and 110) are the same 3-stage design sized for 1x8x8 digits, for the paper's depth, width
and skip comparisons on a CPU.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from engine.models.registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "CifarResNet", "ResNet"]


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU, conv3x3-BN, plus the shortcut (identity or 1x1 projection), ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.use_shortcut = shortcut
        if shortcut:
            self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.use_shortcut:
            out = out + self.shortcut(x)
        return F.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), each with BN, plus the shortcut, ReLU."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, self.expansion * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(self.expansion * planes)
        self.use_shortcut = shortcut
        if shortcut:
            self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.use_shortcut:
            out = out + self.shortcut(x)
        return F.relu(out)


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    # An empty Sequential is the identity and adds no state_dict keys, as in the reference.
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
    )


def _stage(block, in_planes: int, planes: int, n: int, stride: int, shortcut: bool):
    layers = []
    for s in [stride] + [1] * (n - 1):
        layers.append(block(in_planes, planes, s, shortcut))
        in_planes = planes * block.expansion
    return nn.Sequential(*layers), in_planes


class CifarResNet(nn.Module):
    """3-stage ResNet: conv3x3, stages of ``n`` blocks at widths w, 2w, 4w, average pool, linear."""

    def __init__(
        self,
        depth: int,
        width: int = 16,
        shortcut: bool = True,
        num_classes: int = 10,
        in_channels: int = 3,
        pool: int = 8,
    ):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n+2 (20, 56, 110, ...), got {depth}")
        n = (depth - 2) // 6
        self.pool = pool
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        planes = width
        self.layer1, planes = _stage(BasicBlock, planes, width, n, 1, shortcut)
        self.layer2, planes = _stage(BasicBlock, planes, 2 * width, n, 2, shortcut)
        self.layer3, planes = _stage(BasicBlock, planes, 4 * width, n, 2, shortcut)
        self.linear = nn.Linear(planes, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, self.pool)
        return self.linear(out.flatten(1))


class ResNet(nn.Module):
    """4-stage ImageNet-style ResNet for 32x32 inputs (64-512 channels, average pool 4)."""

    def __init__(self, block, blocks: list[int], shortcut: bool = True, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        p = 64
        self.layer1, p = _stage(block, p, 64, blocks[0], 1, shortcut)
        self.layer2, p = _stage(block, p, 128, blocks[1], 2, shortcut)
        self.layer3, p = _stage(block, p, 256, blocks[2], 2, shortcut)
        self.layer4, p = _stage(block, p, 512, blocks[3], 2, shortcut)
        self.linear = nn.Linear(p, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.flatten(1))


# --- registered variants ---------------------------------------------------------------------

_CIFAR = (3, 32, 32)


def _register_cifar(depth: int, k: int = 1) -> None:
    for short in (True, False):
        name = (f"resnet{depth}" if k == 1 else f"wrn{depth}_{k}") + ("" if short else "_noshort")

        def build(num_classes: int = 10, _d=depth, _k=k, _s=short) -> nn.Module:
            return CifarResNet(_d, 16 * _k, _s, num_classes)

        build.__name__ = name
        what = f"ResNet-{depth}" if k == 1 else f"Wide-ResNet-{depth} (k={k})"
        build.__doc__ = f"CIFAR {what}" + ("" if short else " without skip connections")
        register_model(_CIFAR)(build)


for _depth in (20, 56, 110):
    _register_cifar(_depth)
for _k in (2, 4, 8):
    _register_cifar(56, _k)

_IMAGENET_STYLE = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}
for _depth, (_block, _blocks) in _IMAGENET_STYLE.items():
    for _short in (True, False):

        def _build(num_classes: int = 10, _b=_block, _n=_blocks, _s=_short) -> nn.Module:
            return ResNet(_b, _n, _s, num_classes)

        _build.__name__ = f"resnet{_depth}" + ("" if _short else "_noshort")
        _build.__doc__ = f"ImageNet-style ResNet-{_depth} for CIFAR" + (
            "" if _short else " without skip connections"
        )
        register_model(_CIFAR)(_build)


_DIGITS = (1, 8, 8)
# 56 and 110: the depths where the paper's nets without shortcuts turn chaotic (Fig. 5).
for _depth in (8, 14, 20, 56, 110):
    for _short in (True, False):

        def _build_digits(width: int = 8, num_classes: int = 10, _d=_depth, _s=_short) -> nn.Module:
            return CifarResNet(_d, width, _s, num_classes, in_channels=1, pool=2)

        _build_digits.__name__ = f"digits_resnet{_depth}" + ("" if _short else "_noshort")
        _build_digits.__doc__ = f"ResNet-{_depth} for 8x8 digits (width multiplier `width`)" + (
            "" if _short else " without skip connections"
        )
        register_model(_DIGITS)(_build_digits)
