"""Loss and accuracy over a whole split: sufficient statistics that merge exactly.

``batch_stats`` is the pure part (sums for one batch); ``evaluate`` accumulates
them on the device and synchronises once. Sums, not means, so the result does not
depend on the batch size beyond float rounding, and merges across workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from engine.data import Split

__all__ = ["Stats", "batch_stats", "evaluate"]

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


def batch_stats(
    logits: torch.Tensor, y: torch.Tensor, loss: LossName = "crossentropy"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss and number of correct predictions of one batch.

    ``logits`` is ``(B, C)`` or ``(K, B, C)`` for K grid points at once; the sums are over B,
    so the results have shape ``()`` or ``(K,)``.
    """
    logits = logits.float()
    lead, (b, c) = logits.shape[:-2], logits.shape[-2:]
    flat, yy = logits.reshape(-1, c), y.repeat(math.prod(lead))
    if loss == "crossentropy":
        per = F.cross_entropy(flat, yy, reduction="none")
    else:
        # The reference: nn.MSELoss() (mean over classes) on softmax vs one-hot, per sample.
        onehot = F.one_hot(yy, c).to(flat.dtype)
        per = (flat.softmax(-1) - onehot).pow(2).mean(-1)
    # argmax ranks NaN highest; a sample whose logits are not finite is never correct.
    correct = (flat.argmax(-1) == yy) & torch.isfinite(flat).all(-1)
    return per.view(*lead, b).sum(-1), correct.view(*lead, b).sum(-1)


Forward = Callable[[torch.Tensor], torch.Tensor]


@torch.inference_mode()
def evaluate(
    model: nn.Module | Forward,
    split: Split,
    batch_size: int,
    loss: LossName = "crossentropy",
    precision: torch.dtype | None = None,
) -> Stats | list[Stats]:
    """Evaluate ``model`` (in eval mode, on the split's device) over all of ``split``.

    ``model`` may return ``(K, B, C)`` logits for K grid points at once (see
    ``engine.run.Landscape``); then one ``Stats`` per point is returned. ``precision``
    runs the forward pass under autocast; the loss is always summed in float32/float64.
    """
    dev = split.x.device
    loss_sum = correct = None
    for start in range(0, len(split), batch_size):
        xb = split.x[start : start + batch_size]
        yb = split.y[start : start + batch_size]
        with torch.autocast(
            dev.type, dtype=precision or torch.float32, enabled=precision is not None
        ):
            logits = model(xb)
        s, c = batch_stats(logits, yb, loss)
        loss_sum = s.double() if loss_sum is None else loss_sum + s.double()
        correct = c if correct is None else correct + c
    assert loss_sum is not None and correct is not None  # splits are never empty
    if loss_sum.dim() == 0:
        return Stats(float(loss_sum), float(correct), len(split))
    return [
        Stats(float(ls), float(cc), len(split))
        for ls, cc in zip(loss_sum.tolist(), correct.tolist(), strict=True)
    ]
