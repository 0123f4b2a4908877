"""DenseNet-121 for CIFAR as in the reference code (growth 32, blocks 6-12-24-16,
reduction 0.5), with its module names (``conv1``, ``dense1..4``, ``trans1..3``, ``bn``,
``linear``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.models.registry import register_model

__all__ = ["DenseNet", "densenet121"]


class _Bottleneck(nn.Module):
    """BN-ReLU-conv1x1(4g), BN-ReLU-conv3x3(g); the new features go in front of the input."""

    def __init__(self, in_planes: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class _Transition(nn.Module):
    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    def __init__(
        self, blocks: list[int], growth: int = 32, reduction: float = 0.5, num_classes: int = 10
    ) -> None:
        super().__init__()
        planes = 2 * growth
        self.conv1 = nn.Conv2d(3, planes, 3, padding=1, bias=False)
        for i, n in enumerate(blocks, start=1):
            setattr(
                self,
                f"dense{i}",
                nn.Sequential(*[_Bottleneck(planes + k * growth, growth) for k in range(n)]),
            )
            planes += n * growth
            if i < len(blocks):
                out = math.floor(planes * reduction)
                setattr(self, f"trans{i}", _Transition(planes, out))
                planes = out
        self.bn = nn.BatchNorm2d(planes)
        self.linear = nn.Linear(planes, num_classes)
        self.n_blocks = len(blocks)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(x)
        for i in range(1, self.n_blocks + 1):
            out = getattr(self, f"dense{i}")(out)
            if i < self.n_blocks:
                out = getattr(self, f"trans{i}")(out)
        out = F.avg_pool2d(F.relu(self.bn(out)), 4)
        return self.linear(out.flatten(1))


@register_model(input_shape=(3, 32, 32))
def densenet121(num_classes: int = 10) -> nn.Module:
    """DenseNet-121 for CIFAR."""
    return DenseNet([6, 12, 24, 16], growth=32, reduction=0.5, num_classes=num_classes)
