"""A user loss, named in sample_configs/diabetes_2d.toml as
``data.loss = "sample_configs/losses.py:sq_loss"`` (a path from the working directory).

A loss is ``fn(model, batch)`` returning one value per sample: ``loss`` (required), an
optional ``count`` (the weight of each sample, default 1), and any other metric, stored as
the surface ``<split>_<name>``. Each surface is sum(value) / sum(count) over the split.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def sq_loss(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """Squared error and absolute error per sample, on ``(features, target)`` batches."""
    x, y = batch
    pred = model(x).reshape(len(y))  # (B, 1) -> (B,), the target's shape
    diff = pred - y
    return {"loss": diff.pow(2), "abs_err": diff.abs()}
