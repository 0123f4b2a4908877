"""Loss and accuracy over a whole split: sufficient statistics that merge exactly.

``batch_stats`` is the pure part (sums for one batch); ``evaluate`` accumulates
them on the device and synchronises once. Sums, not means, so the result does not
depend on the batch size beyond float rounding, and merges across workers.
"""

from __future__ import annotations

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
    """Summed loss and number of correct predictions of one batch (as 0-d tensors)."""
    logits = logits.float()
    if loss == "crossentropy":
        total = F.cross_entropy(logits, y, reduction="sum")
    else:
        # The reference: nn.MSELoss() (mean over classes) on softmax vs one-hot, per sample.
        onehot = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
        total = F.mse_loss(logits.softmax(-1), onehot, reduction="sum") / logits.shape[-1]
    # argmax ranks NaN highest; a sample whose logits are not finite is never correct.
    correct = (logits.argmax(-1) == y) & torch.isfinite(logits).all(-1)
    return total, correct.sum()


@torch.inference_mode()
def evaluate(
    model: nn.Module, split: Split, batch_size: int, loss: LossName = "crossentropy"
) -> Stats:
    """Evaluate ``model`` (already in eval mode, on the split's device) over all of ``split``."""
    loss_sum = torch.zeros((), dtype=torch.float64, device=split.x.device)
    correct = torch.zeros((), dtype=torch.int64, device=split.x.device)
    for start in range(0, len(split), batch_size):
        xb = split.x[start : start + batch_size]
        yb = split.y[start : start + batch_size]
        s, c = batch_stats(model(xb), yb, loss)
        loss_sum += s.double()
        correct += c
    return Stats(float(loss_sum), float(correct), len(split))
