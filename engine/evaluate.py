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
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from engine.data import Split

__all__ = [
    "Stats",
    "autocast",
    "evaluate",
    "loss_sums",
    "per_sample",
    "sample_stats",
    "segment_stats",
    "stats_of",
]

LossName = Literal["crossentropy", "mse"]


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
        """Accuracy in percent (0-100), as the reference stores it."""
        return 100.0 * self.correct / self.count

    def __add__(self, other: Stats) -> Stats:
        return Stats(
            self.loss_sum + other.loss_sum, self.correct + other.correct, self.count + other.count
        )


def sample_stats(
    logits: torch.Tensor, y: torch.Tensor, loss: LossName = "crossentropy"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample loss (float32) and correctness (bool) of one batch.

    ``logits`` is ``(B, C)`` or ``(K, B, C)`` for K grid points at once; the results have
    shape ``(B,)`` or ``(K, B)``.
    """
    logits = logits.float()
    lead, (b, c) = logits.shape[:-2], logits.shape[-2:]
    flat = logits.reshape(-1, c)
    yy = y.repeat(math.prod(lead)) if lead else y
    # max() gives argmax's index (the first of ties) at a third of argmax's cost on CPU.
    top = flat.max(-1, keepdim=True)
    predicted = top.indices.squeeze(-1)
    if loss == "crossentropy":
        # Log-sum-exp of the logits shifted by their max, less the shifted true logit (exactly
        # 0 when the prediction is right), in about a third of F.cross_entropy's time with the
        # prediction: its log_softmax over a short class dimension is slow on CPU. The max's
        # own term is exp(0) = 1, so the log is log1p of the other terms: log() of a sum near 1
        # would round tiny losses to float32's spacing at 1 (6e-8), worse than torch on some CPUs.
        z = flat - top.values
        rest = z.exp().scatter_(-1, top.indices, 0.0).sum(-1)
        per = rest.log1p() - z.gather(-1, yy[:, None]).squeeze(-1)
        # argmax ranks NaN highest; a NaN or inf logit makes this sample's loss non-finite,
        # and such a sample is never correct (one check on B values instead of B x C). The
        # loss is >= 0 or NaN or +inf, so one comparison finds the finite ones.
        finite = per < math.inf
    else:
        # The reference: nn.MSELoss() (mean over classes) on softmax vs one-hot, per sample.
        onehot = F.one_hot(yy, c).to(flat.dtype)
        per = (flat.softmax(-1) - onehot).pow(2).mean(-1)
        finite = torch.isfinite(flat).all(-1)
    correct = (predicted == yy) & finite
    return per.view(*lead, b), correct.view(*lead, b)


Forward = Callable[[torch.Tensor], torch.Tensor]


@torch.inference_mode()
def per_sample(
    model: nn.Module | Forward,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    loss: LossName = "crossentropy",
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
            per, ok = sample_stats(torch.cat(pending, -2), y[first:end], loss)
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
    both = torch.stack([losses.double(), correct.double()])  # (2, [K,] N)
    sums = torch.stack([part.sum(-1) for part in both.split(counts, -1)], -1)  # (2, [K,] S)
    if losses.dim() == 1:
        ls, cs = sums.tolist()
        return [Stats(a, b, n) for a, b, n in zip(ls, cs, counts, strict=True)]
    ls, cs = sums.transpose(1, 2).tolist()  # (S, K) each
    return [
        [Stats(a, b, n) for a, b in zip(la, ca, strict=True)]
        for la, ca, n in zip(ls, cs, counts, strict=True)
    ]


def loss_sums(
    fn: Callable[[nn.Module, Any], Any],
    model: nn.Module | Forward,
    batches: Iterable[Any],
    device_type: str,
    precision: torch.dtype | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """A user loss's outputs summed over ``batches`` in float64, on the device and unsynchronised,
    and the number of samples seen (``count``'s sum when the loss gives none)."""
    sums: dict[str, torch.Tensor] = {}
    samples = 0
    with torch.inference_mode():
        for batch in batches:
            with autocast(device_type, precision):
                out = fn(model, batch)
            for k, v in out.items():
                s = v.double().sum()
                sums[k] = sums[k] + s if k in sums else s
            samples += len(out["loss"])
    return sums, samples


def evaluate(
    model: nn.Module | Forward,
    split: Split,
    batch_size: int,
    loss: LossName = "crossentropy",
    precision: torch.dtype | None = None,
) -> Stats | list[Stats]:
    """Evaluate ``model`` (in eval mode, on the split's device) over all of ``split``."""
    return stats_of(*per_sample(model, split.x, split.y, batch_size, loss, precision))
