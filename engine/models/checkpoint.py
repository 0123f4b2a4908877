"""Checkpoints of the common shapes, read with ``weights_only=True``.

Accepted: a bare state dict; ``{'state_dict': ...}`` (the reference's ``.t7``
layout, with ``acc`` and ``epoch``); ``{'model_state_dict' | 'model' | 'net': ...}``;
keys prefixed by ``module.`` (DataParallel) or ``_orig_mod.`` (torch.compile).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from engine.errors import ConfigError, LandscapeError

__all__ = ["load_checkpoint", "read_state_dict"]

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
_PREFIXES = ("module.", "_orig_mod.")


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def read_state_dict(path: str | Path, key: str = "model.checkpoint") -> dict[str, torch.Tensor]:
    """Load a checkpoint file and return its state dict with wrapper prefixes removed."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"`{key}`: checkpoint not found: {p}")
    if not p.is_file():
        raise ConfigError(f"`{key}`: not a file: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses pickled classes ("Unsupported global: ..."); else it is not one.
        bad = [
            ln[ln.index("Unsupported global") :].split(" was not")[0]
            for ln in str(e).splitlines()
            if "Unsupported global" in ln
        ]
        if not bad:
            raise LandscapeError(f"{p} is not a readable PyTorch checkpoint") from e
        raise LandscapeError(
            f"checkpoint {p} cannot be loaded safely with weights_only=True: {bad[0]}"
        ) from e
    except Exception as e:
        raise LandscapeError(
            f"{p} is not a readable PyTorch checkpoint ({type(e).__name__}: {e})"
        ) from e
    if not _is_state_dict(obj) and isinstance(obj, Mapping):
        for wrapper in _WRAPPER_KEYS:
            if _is_state_dict(obj.get(wrapper)):
                obj = obj[wrapper]
                break
    if not _is_state_dict(obj):
        raise LandscapeError(
            f"checkpoint {p} holds no state dict (expected a dict of tensors, or one under "
            f"{', '.join(repr(k) for k in _WRAPPER_KEYS)})"
        )
    sd = dict(obj)
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def _preview(items: list[str], n: int = 3) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def load_checkpoint(model: nn.Module, path: str | Path, key: str = "model.checkpoint") -> None:
    """Load ``path`` into ``model`` strictly; a mismatch is one line naming the first keys."""
    sd = read_state_dict(path, key)
    expected = model.state_dict()
    # Checkpoints from PyTorch < 0.4.1 (the reference's era) have no BN counters.
    missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in expected]
    misshaped = [
        f"{k} {tuple(sd[k].shape)} in checkpoint vs {tuple(v.shape)} in model"
        for k, v in expected.items()
        if k in sd and sd[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_preview(unexpected)}")
    if misshaped:
        problems.append(f"shape mismatch: {_preview(misshaped, 2)}")
    if problems:
        raise LandscapeError(f"checkpoint {path} does not fit the model: " + "; ".join(problems))
    for k, v in expected.items():
        if k not in sd:
            sd[k] = v  # the counters skipped above
    model.load_state_dict(sd, strict=True)
