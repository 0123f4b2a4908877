"""BatchNorm running statistics away from the checkpoint: re-estimating them, and spotting
moved ones that went negative.

A ``states`` direction moves BN running means and variances linearly with the weights, as the
reference does; far enough out (an interpolation past its endpoints) some variances turn
negative and the normalisation gives NaN. ``negative_variance`` finds those points from the
directions alone, without a forward pass. ``recalibrate`` is the remedy of the
mode-connectivity work (Garipov et al. 2018; torch's ``swa_utils.update_bn``): reset the
statistics, then forward passes over the train split with the BN layers in train mode and
``momentum=None``, so each layer's statistics are the equal-weight average over the batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from engine.directions import Perturbation
from engine.errors import LandscapeError, describe

__all__ = ["batchnorms", "negative_variance", "recalibrate", "variance_names"]


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BN layers that keep running statistics (the ones evaluation depends on)."""
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None
    ]


def variance_names(model: nn.Module) -> list[str]:
    """``state_dict`` names of the BN running variances."""
    return [
        f"{name}.running_var" if name else "running_var"
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None
    ]


def negative_variance(
    perturbation: Perturbation, names: Sequence[str], coords: Sequence[tuple[float, float]]
) -> list[bool]:
    """Per point, whether any of the named running variances is negative once moved there.

    Only those tensors are moved (``Perturbation.stacked``), a few hundred points at a time:
    cheap next to one forward pass. Names the perturbation does not move never go negative.
    """
    moved = [n for n in names if n in perturbation.names]
    if not moved or not coords:
        return [False] * len(coords)
    out: list[bool] = []
    for start in range(0, len(coords), _CHUNK):
        part = coords[start : start + _CHUNK]
        dev = perturbation.device
        a = torch.tensor([c[0] for c in part], dtype=torch.float64, device=dev)
        b = torch.tensor([c[1] for c in part], dtype=torch.float64, device=dev)
        stacked = perturbation.stacked(a, b, names=moved)
        neg = torch.zeros(len(part), dtype=torch.bool, device=dev)
        for v in stacked.values():
            neg |= (v.reshape(len(part), -1) < 0).any(1)
        out += neg.tolist()
    return out


_CHUNK = 256  # points per stacked move of the variances


@torch.no_grad()
def recalibrate(
    model: nn.Module, batches: Iterable[Any], forward: Callable[[Any], object] | None = None
) -> int:
    """Re-estimate every BN layer's running mean and variance from ``batches``; the number of
    batches seen.

    ``forward(batch)`` runs the model on a batch (default: ``model(batch[0])`` for an
    ``(input, label)`` pair, else ``model(batch)``). Only the BN layers are put in train mode,
    so dropout stays off and the statistics are deterministic; their momenta and modes are
    restored afterwards.
    """
    bns = batchnorms(model)
    if forward is None:

        def forward(batch: Any) -> object:
            return model(batch[0] if isinstance(batch, list | tuple) else batch)

    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches, not an exponential one
        m.train()
    seen = 0
    try:
        for batch in batches:
            forward(batch)
            seen += 1
    except Exception as e:
        raise LandscapeError(
            f"re-estimating the BN statistics (compute.bn = 'recalibrate') failed on batch "
            f"{seen} of the train split: {describe(e)}"
        ) from e
    finally:
        for m, (momentum, training) in zip(bns, saved, strict=True):
            m.momentum = momentum
            m.train(training)
    if seen == 0:
        raise LandscapeError("compute.bn = 'recalibrate': the train split gave no batch")
    return seen
