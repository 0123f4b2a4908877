"""Losses as functions of ``(model, batch)``: the built-in ones, the user's, and their checks.

A loss is called as ``fn(model, batch)``, where ``batch`` is what the data set's collate
gives (a tuple, a dict, or nested containers of tensors), already on the device. It returns a
mapping of tensors of shape ``(B,)``, one value per sample:

- ``loss`` (required): the per-sample loss, summed over whatever ``count`` counts;
- ``count`` (optional, default 1): the per-sample weight, e.g. the tokens of a sequence;
- any other key: an extra metric, stored as the surface ``<split>_<key>``.

Every stored surface is ``sum(value) / sum(count)`` over a whole split, summed in float64, so
it is exact across batches, workers and ranks: a language model's loss is the token-weighted
mean, not a mean of batch means. ``crossentropy`` and ``mse`` are such functions too; the
evaluator runs them on a fused classifier path with the same numbers (``Loss.builtin``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.data import CLASSIFIER_LOSSES
from engine.errors import ConfigError, LandscapeError
from engine.evaluate import sample_stats
from engine.imports import is_callable_spec, load_callable

__all__ = [
    "BUILTIN_LOSSES",
    "CLASSIFIER_LOSSES",
    "Loss",
    "LossFn",
    "causal_lm",
    "check_output",
    "crossentropy",
    "mse",
    "resolve_loss",
    "squared_error",
]

LossFn = Callable[[nn.Module, Any], Mapping[str, torch.Tensor]]

# A metric becomes the dataset ``<split>_<name>``: a name that is safe there and in a TOML key.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def crossentropy(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """Cross-entropy of a classifier on ``(inputs, labels)``, and accuracy in percent."""
    x, y = batch[0], batch[1]
    per, correct = sample_stats(model(x), y, "crossentropy")
    return {"loss": per, "acc": 100.0 * correct.double()}


def mse(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """The reference's MSE: softmax outputs against one-hot labels, and accuracy in percent."""
    x, y = batch[0], batch[1]
    per, correct = sample_stats(model(x), y, "mse")
    return {"loss": per, "acc": 100.0 * correct.double()}


def squared_error(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """Regression on ``(inputs, targets)``: squared error (mean over output features) per
    sample, and the absolute error ``abs_err`` likewise."""
    x, y = batch[0], batch[1]
    pred = model(x).float()
    diff = pred.reshape(len(pred), -1) - y.float().reshape(len(y), -1)
    return {"loss": diff.pow(2).mean(1), "abs_err": diff.abs().mean(1)}


def causal_lm(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """Next-token cross-entropy of a causal language model, weighted by tokens.

    ``batch`` is a dict with ``input_ids`` (B, T), optionally ``attention_mask`` (0 at padding)
    and ``labels`` (-100 where no loss is taken; default: the inputs). The model is called with
    the batch's keys other than ``labels`` and may return logits or an object with ``.logits``
    (a Hugging Face model). Per sequence: the summed token loss, ``count`` its predicted tokens,
    and ``acc`` the tokens predicted right (percent, once divided by the count).
    """
    if not isinstance(batch, Mapping) or "input_ids" not in batch:
        raise TypeError("causal_lm expects dict batches with 'input_ids'")
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    logits = getattr(out, "logits", out)
    if isinstance(logits, tuple | list):
        logits = logits[0]
    labels = batch.get("labels", batch["input_ids"])[:, 1:]
    mask = labels != -100
    if "attention_mask" in batch:
        mask = mask & batch["attention_mask"][:, 1:].bool()
    logits = logits[:, :-1].float()
    tokens = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.clamp(min=0).reshape(-1), reduction="none"
    ).view(labels.shape)
    right = (logits.argmax(-1) == labels) & mask
    m = mask.to(tokens.dtype)
    return {
        "loss": (tokens * m).sum(1),
        "count": m.sum(1),
        "acc": 100.0 * right.sum(1).double(),
    }


BUILTIN_LOSSES: dict[str, LossFn] = {
    "crossentropy": crossentropy,
    "mse": mse,
    "squared_error": squared_error,
    "causal_lm": causal_lm,
}


@dataclass(frozen=True)
class Loss:
    """A loss function with the name errors give it (the config's spec, or a callable's
    qualified name) and, for the classifier losses, the fused path's name."""

    fn: LossFn
    name: str
    builtin: str | None = None  # 'crossentropy' / 'mse': evaluated on the fused path


def resolve_loss(spec: str | LossFn | Loss | None, key: str = "data.loss") -> Loss:
    """The loss a config value (built-in name, ``module:fn``, ``file.py:fn``) or callable names."""
    if spec is None:
        spec = "crossentropy"
    if isinstance(spec, Loss):
        return spec
    if callable(spec):
        name = getattr(spec, "__qualname__", None) or type(spec).__name__
        module = getattr(spec, "__module__", None)
        return Loss(spec, f"{module}:{name}" if module else name)
    if spec in BUILTIN_LOSSES:
        return Loss(BUILTIN_LOSSES[spec], spec, spec if spec in CLASSIFIER_LOSSES else None)
    if is_callable_spec(spec):
        return Loss(load_callable(spec, key), spec)
    raise ConfigError(
        f"Unknown loss {spec!r} in `{key}`; expected one of {', '.join(BUILTIN_LOSSES)}, "
        "or 'module:fn' / 'file.py:fn'."
    )


def check_output(loss: Loss, out: Any, samples: int | None, key: str = "data.loss") -> list[str]:
    """Refuse a loss's output on one batch in one line; the metric names it gives, in order.

    ``samples`` is the batch's sample count (None where the batch does not show it).
    """
    who = f"`{key}` {loss.name}"
    if not isinstance(out, Mapping):
        raise LandscapeError(
            f"{who} returned {_what(out)}; it must return a dict of per-sample tensors "
            "with a 'loss' key"
        )
    if "loss" not in out:
        raise LandscapeError(
            f"{who} returned a dict without a 'loss' key (keys: {', '.join(map(str, out))})"
        )
    want = f"shape ({samples},)" if samples is not None else "shape (B,)"
    n = samples
    for k, v in out.items():
        if not isinstance(k, str) or not _NAME.fullmatch(k):
            raise LandscapeError(
                f"{who} returned the key {k!r}; metric names must be letters, digits and _ "
                "(starting with a letter, at most 64)"
            )
        if not isinstance(v, torch.Tensor):
            raise LandscapeError(
                f"{who} returned {_what(v)} for `{k}`; it must give a tensor of {want}"
            )
        if v.dim() != 1 or (n is not None and v.shape[0] != n):
            raise LandscapeError(
                f"{who} returned a tensor of shape {tuple(v.shape)} for `{k}`; it must give "
                f"one value per sample, {want}"
            )
        if v.is_complex():
            raise LandscapeError(f"{who} returned a {v.dtype} tensor for `{k}`; expected numbers")
        n = v.shape[0]
    if "count" in out and not bool((out["count"] > 0).all()):
        low = float(out["count"].min())
        raise LandscapeError(
            f"{who} returned a `count` of {low:g} for a sample; every count must be > 0"
        )
    return [k for k in out if k not in ("loss", "count")]


def _what(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"a tensor of shape {tuple(v.shape)}"
    return f"a {type(v).__name__}"
