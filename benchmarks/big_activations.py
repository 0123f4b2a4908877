"""A model that cannot take a batch of 1024 on one GPU, and data for it, for ``gpu_batch.sh``.

Each 32x32 image is upsampled 16x and widened to 256 channels by a 1x1 convolution: 268 MB
of float32 activations a sample, about 275 GB at a batch of 1024 (more than any one GPU),
18 GB at 64, at little compute. ``data.batch_size = "auto"`` must back off from the sizes
that run out of memory and still compute the surface; a fixed 1024 must fail in one line.

    model.arch = "benchmarks/big_activations.py:model"
    data.dataset = "benchmarks/big_activations.py:data"
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset


def model(num_classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Upsample(scale_factor=16),
        nn.Conv2d(3, 256, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(256, num_classes),
    )


def data(n: int = 2048) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(
        torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    )
