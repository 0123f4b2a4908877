"""Loss and accuracy over a whole split: sufficient statistics that merge exactly.

``sample_stats`` is the pure part (per-sample loss and correctness of one batch);
``per_sample`` runs it over all data without synchronising, and ``stats_of`` (or
``segment_stats``, for several splits in one pass) sums the results in float64 once.
Sums, not means, so the result does not depend on the batch size beyond float rounding,
and merges across workers.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.errors import LandscapeError, describe
from engine.losses import (
    BatchCheck,
    Loss,
    check_labels,
    class_indices,
    fused_entry,
    refuse_counts,
    to_class_major,
)
from engine.splits import Split, batch_size_of

__all__ = [
    "CHECK_KEYS",
    "Stats",
    "autocast",
    "cannot_evaluate",
    "check_model_labels",
    "evaluate",
    "loss_sums",
    "per_sample",
    "read_sums",
    "sample_stats",
    "segment_stats",
    "stats_of",
]


@dataclass(frozen=True)
class Stats:
    """Summed loss, correct predictions and sample count over some samples."""

    loss_sum: float
    correct: float
    count: int

    @property
    def loss(self) -> float:
        return self.loss_sum / self.count

    @property
    def acc(self) -> float:
        """Accuracy in percent (0-100), as the reference stores it; NaN where the loss is NaN
        (non-finite outputs, e.g. BN variances moved negative): an argmax of NaN logits counts
        nothing, and a 0 % there would read as a real accuracy."""
        if math.isnan(self.loss_sum):
            return math.nan
        return 100.0 * self.correct / self.count

    def __add__(self, other: Stats) -> Stats:
        return Stats(
            self.loss_sum + other.loss_sum, self.correct + other.correct, self.count + other.count
        )


def sample_stats(
    logits: torch.Tensor, y: torch.Tensor, loss: str = "crossentropy"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample loss (float32) and correctness (bool) of one batch, by the fused math of the
    registered loss ``loss`` (``engine.losses``; a loss without one raises).

    ``logits`` is ``(B, C)`` or ``(K, B, C)`` for K grid points at once (any float dtype,
    computed in float32); ``y`` integer labels of any width, in ``0..C-1`` (unchecked here:
    ``engine.losses.check_labels``); the results have shape ``(B,)`` or ``(K, B)``.
    """
    entry = fused_entry(loss)
    logits, y = logits.float(), class_indices(y)
    lead, (b, c) = logits.shape[:-2], logits.shape[-2:]
    if lead and entry.class_major is not None:
        # (K, not -1: a batch of no samples has no -1 to infer.)
        zt = to_class_major(logits.reshape(math.prod(lead), b, c))
        per, correct = entry.class_major(zt, y)
        return per.view(*lead, b), correct.view(*lead, b)
    fused = entry.fused
    yy = y.repeat(math.prod(lead)) if lead else y
    per, correct = fused(logits.reshape(-1, c), yy)
    return per.view(*lead, b), correct.view(*lead, b)


def check_model_labels(model: nn.Module, split: Split, name: str) -> None:
    """``check_labels`` for the classes ``model`` gives on the split's first two samples (in
    eval mode, then its modes put back: a train-mode BatchNorm would move its statistics);
    a model that cannot take the split's inputs is refused in one line too. An output that
    is not ``(B, classes)`` is left for the loss to refuse."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            shape = model(split.x[:2]).shape
    except Exception as e:  # train's first batch raised it as a traceback
        raise cannot_evaluate(name, split, e) from e
    finally:
        for m, was in modes:
            m.training = was
    if len(shape) == 2:
        check_labels(split.y, shape[1], f"the {name} split")


def cannot_evaluate(name: str, split: Split, e: BaseException) -> LandscapeError:
    """The one line for a model that fails on the ``name`` split's inputs."""
    return LandscapeError(
        f"the model cannot evaluate the {name} split (inputs of shape "
        f"{tuple(split.x.shape[1:])}): {describe(e)}"
    )


Forward = Callable[[torch.Tensor], torch.Tensor]


@torch.inference_mode()
def per_sample(
    model: nn.Module | Forward,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    loss: str = "crossentropy",
    precision: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample loss and correctness over all of ``x``, ``(N,)`` or ``(K, N)``, unsynchronised.

    ``model`` may return ``(K, B, C)`` logits for K grid points at once. ``precision`` runs
    the forward pass under autocast; losses are kept in float32.
    """
    losses, correct, pending, first = [], [], [], 0
    n = len(y)
    for start in range(0, n, batch_size):
        with autocast(x.device.type, precision):
            pending.append(model(x[start : start + batch_size]).float())
        end = min(start + batch_size, n)
        # The statistics of several batches at once: on small models their per-call cost
        # was a tenth of the forward pass. Logits are few, but bounded all the same.
        if end == n or sum(t.numel() for t in pending) >= _PENDING_LOGITS:
            logits = pending[0] if len(pending) == 1 else torch.cat(pending, -2)
            per, ok = sample_stats(logits, y[first:end] if first or end < n else y, loss)
            losses.append(per)
            correct.append(ok)
            pending, first = [], end
    if len(losses) == 1:
        return losses[0], correct[0]
    return torch.cat(losses, -1), torch.cat(correct, -1)


_PENDING_LOGITS = 1 << 22  # 16 MB of float32 logits


def autocast(device_type: str, precision: torch.dtype | None):
    """Autocast to ``precision`` on ``device_type``; no context at all for full precision."""
    if precision is None:
        return contextlib.nullcontext()  # entering a disabled autocast still costs per batch
    return torch.autocast(device_type, dtype=precision)


def stats_of(losses: torch.Tensor, correct: torch.Tensor) -> Stats | list[Stats]:
    """Sum per-sample results (in float64) into ``Stats``, one per leading index if any."""
    return segment_stats(losses, correct, (losses.shape[-1],))[0]


def segment_stats(
    losses: torch.Tensor, correct: torch.Tensor, counts: tuple[int, ...]
) -> list[Stats] | list[list[Stats]]:
    """Per segment (consecutive runs of ``counts`` samples), ``Stats`` of ``(N,)`` results,
    or a list of K of them for ``(K, N)``.

    Both sums of every segment in float64 with one transfer (one device sync): per point a
    few ops, whatever the number of splits. Sums, not a product with a 0/1 matrix, so that a
    NaN stays in its own segment.
    """
    # Summed in float64 as they are read: no float64 copies (on the digits MLP these few
    # ops per point were a tenth of its forward pass).
    parts = zip(losses.split(counts, -1), correct.split(counts, -1), strict=True)
    sums = torch.stack([t.sum(-1, dtype=torch.float64) for part in parts for t in part])
    rows = sums.tolist()  # loss, correct, loss, correct, ... per segment; each a list of K
    ls, cs = rows[0::2], rows[1::2]
    if losses.dim() == 1:
        return [Stats(a, b, n) for a, b, n in zip(ls, cs, counts, strict=True)]
    return [
        [Stats(a, b, n) for a, b in zip(la, ca, strict=True)]
        for la, ca, n in zip(ls, cs, counts, strict=True)
    ]


def loss_sums(
    fn: Callable[[nn.Module, Any], Any] | Loss,
    model: nn.Module | Forward,
    batches: Iterable[Any],
    device_type: str,
    precision: torch.dtype | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """A user loss's outputs summed over ``batches`` in float64, on the device and unsynchronised,
    and the number of samples seen (``count``'s sum when the loss gives none).

    Every batch's output is checked (``engine.losses.BatchCheck``): keys and shapes at once,
    the counts' values in the one read of the sums (``read_sums``), so a bad later batch fails
    as the first would have."""
    loss = fn if isinstance(fn, Loss) else Loss(fn, getattr(fn, "__qualname__", repr(fn)))
    check = BatchCheck(loss.name)
    sums: dict[str, torch.Tensor] = {}
    samples = 0
    with torch.inference_mode():
        for batch in batches:
            with autocast(device_type, precision):
                out = loss.fn(model, batch)
            check.batch(out, batch_size_of(batch))
            for k, v in out.items():
                s = v.double().sum()
                sums[k] = sums[k] + s if k in sums else s
            samples += len(out["loss"])
    sums.update(zip(CHECK_KEYS, check.extremes(), strict=False))
    return sums, samples


# The checks' scalars ride in the sums (names no metric can have), read with them in one sync.
CHECK_KEYS = ("!count_low", "!count_high")


def read_sums(sums: dict[str, torch.Tensor], name: str, keys: list[str] | None = None) -> dict:
    """``loss_sums``' sums as floats (one transfer), after refusing bad counts; ``keys`` picks
    the sums to read (absent ones read as 0.0), default all."""
    keys = [k for k in sums if k not in CHECK_KEYS] if keys is None else keys
    checks = [sums[k] for k in CHECK_KEYS if k in sums]
    dev = sums["loss"].device
    zero = torch.zeros((), dtype=torch.float64, device=dev)
    flat = torch.stack([sums.get(k, zero) for k in keys] + checks).tolist()
    refuse_counts(name, flat[len(keys) :])
    return dict(zip(keys, flat[: len(keys)], strict=True))


def evaluate(
    model: nn.Module | Forward,
    split: Split,
    batch_size: int,
    loss: str = "crossentropy",
    precision: torch.dtype | None = None,
) -> Stats | list[Stats]:
    """Evaluate ``model`` (in eval mode, on the split's device) over all of ``split``."""
    return stats_of(*per_sample(model, split.x, split.y, batch_size, loss, precision))
