"""Collated batches re-sliced to another batch size (``data.batch_size = "auto"``'s choice
applied to a split of given or loaded batches)."""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["rebatch"]


def rebatch(batches: tuple[Any, ...], size: int) -> tuple[Any, ...] | None:
    """Collated batches (any nesting of tensors whose leading size is the batch's) re-sliced
    into batches of ``size``, in order; None where the structure does not allow it (batches
    of differing structure, per-batch values that differ, a tensor of another length)."""
    from torch.utils._pytree import tree_flatten, tree_unflatten

    flat = [tree_flatten(b) for b in batches]
    if not flat or any(spec != flat[0][1] for _, spec in flat):
        return None
    lengths = []
    for leaves, _ in flat:
        ns = {int(v.shape[0]) for v in leaves if isinstance(v, torch.Tensor) and v.dim()}
        if len(ns) != 1:
            return None
        lengths.append(ns.pop())
    columns = []
    for column in zip(*(leaves for leaves, _ in flat), strict=True):
        if all(isinstance(v, torch.Tensor) and v.dim() for v in column):
            if any(len(v) != n for v, n in zip(column, lengths, strict=True)):
                return None
            columns.append(torch.cat(column).split(size))
        elif all(v is column[0] or v == column[0] for v in column):
            columns.append(None)  # the same in every batch: kept as it is
        else:
            return None
    pieces = math.ceil(sum(lengths) / size)
    spec, first = flat[0][1], flat[0][0]
    pairs = list(zip(first, columns, strict=True))
    return tuple(
        tree_unflatten([f if c is None else c[i] for f, c in pairs], spec) for i in range(pieces)
    )
