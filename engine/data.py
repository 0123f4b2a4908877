"""Evaluation data, decoded once into tensors.

Built-in: ``digits``, scikit-learn's bundled 8x8 handwritten digits (1,797 real
images, no network). Split: every fifth sample (index % 5 == 0) is test (360),
the rest train (1,437). Pixels 0..16 are scaled to [0, 1] and standardised with
the fixed constants ``DIGITS_MEAN`` and ``DIGITS_STD`` (mean and std of the train
split). User data sets: ``data.dataset = 'pkg.mod:fn'`` returning a torch
``Dataset`` of ``(input, label)`` pairs, and ``data.test_dataset`` likewise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from engine.config import DataConfig
from engine.errors import ConfigError, LandscapeError
from engine.imports import is_callable_spec, load_callable

__all__ = ["DIGITS_MEAN", "DIGITS_STD", "Split", "digits_splits", "load_splits"]

DIGITS_MEAN = 0.3052  # of x / 16 over the train split, rounded
DIGITS_STD = 0.3763


@dataclass(frozen=True)
class Split:
    """One split held as tensors: inputs ``x`` (float) and integer labels ``y``."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


def digits_splits(raw: bool = False) -> dict[str, Split]:
    """The embedded digits data as ``{'train': Split, 'test': Split}``."""
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    if not raw:
        x = (x - DIGITS_MEAN) / DIGITS_STD
    y = torch.from_numpy(bunch.target.astype(np.int64))
    test = torch.arange(len(y)) % 5 == 0
    return {"train": Split(x[~test], y[~test]), "test": Split(x[test], y[test])}


def _tensorize(ds: Dataset, key: str) -> Split:
    """Run a user Dataset once and stack it; per-sample transforms never run again."""
    try:
        n = len(ds)  # type: ignore[arg-type]
    except TypeError:
        raise LandscapeError(f"`{key}` returned a Dataset without __len__.") from None
    if n == 0:
        raise LandscapeError(f"`{key}` returned an empty Dataset.")
    xs, ys = [], []
    try:
        for xb, yb in DataLoader(ds, batch_size=256, shuffle=False, num_workers=0):
            xs.append(torch.as_tensor(xb))
            ys.append(torch.as_tensor(yb))
    except (TypeError, ValueError, RuntimeError) as e:
        raise LandscapeError(
            f"`{key}`: items must be (input tensor, integer label) pairs ({type(e).__name__}: {e})"
        ) from e
    x, y = torch.cat(xs), torch.cat(ys)
    if not torch.is_floating_point(x):
        x = x.float()
    if torch.is_floating_point(y) or y.ndim != 1:
        raise LandscapeError(f"`{key}`: labels must be integer class indices, got {y.dtype}.")
    return Split(x, y.long())


def _user_split(spec: str, key: str) -> Split:
    fn = load_callable(spec, key)
    try:
        ds = fn()
    except Exception as e:
        raise LandscapeError(f"`{key}` {spec!r} raised {type(e).__name__}: {e}") from e
    return _tensorize(ds, key)


BUILTIN: dict[str, Callable[[], dict[str, Split]]] = {"digits": digits_splits}


def load_splits(cfg: DataConfig) -> dict[str, Split]:
    """Load the splits named in ``cfg.splits`` (on the CPU), each decoded once."""
    if is_callable_spec(cfg.dataset):
        if cfg.test_dataset and not is_callable_spec(cfg.test_dataset):
            raise ConfigError(
                f"Expected `data.test_dataset` as 'module:callable', got {cfg.test_dataset!r}."
            )
        if "test" in cfg.splits and not cfg.test_dataset:
            raise ConfigError(
                "`data.splits` asks for 'test' but `data.test_dataset` is empty; name a callable "
                "for the test split or set data.splits = ['train']."
            )
        out = {}
        if "train" in cfg.splits:
            out["train"] = _user_split(cfg.dataset, "data.dataset")
        if "test" in cfg.splits:
            out["test"] = _user_split(cfg.test_dataset, "data.test_dataset")
        return out
    if cfg.dataset not in BUILTIN:
        raise ConfigError(
            f"Unknown data set {cfg.dataset!r} in `data.dataset`; expected one of "
            f"{', '.join(sorted(BUILTIN))}, or 'module:callable' / 'file.py:callable'."
        )
    if cfg.test_dataset:
        raise ConfigError("`data.test_dataset` is only for user data sets given as callables.")
    splits = BUILTIN[cfg.dataset]()
    return {name: splits[name] for name in cfg.splits}
