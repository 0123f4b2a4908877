"""The model registry: ``@register_model`` keyed by function name, and one parser for specs."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.errors import ConfigError, LandscapeError
from engine.imports import is_callable_spec, load_callable
from engine.models.hf import is_hf_spec, load_hf_model

__all__ = [
    "ModelInfo",
    "build_model",
    "check_model_name",
    "create_model",
    "list_models",
    "parameter_count",
    "register_model",
]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    fn: Callable[..., nn.Module]
    input_shape: tuple[int, ...]
    doc: str
    input_dtype: torch.dtype = torch.float32  # torch.long for token ids


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    input_shape: tuple[int, ...], input_dtype: torch.dtype = torch.float32
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder under its function name; ``input_shape`` and ``input_dtype`` are one
    sample's at the builder's defaults."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _REGISTRY:
            warnings.warn(f"model {fn.__name__!r} registered twice", stacklevel=2)
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[fn.__name__] = ModelInfo(
            fn.__name__, fn, tuple(input_shape), doc[0] if doc else "", input_dtype
        )
        return fn

    return deco


def list_models() -> list[ModelInfo]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def check_model_name(name: str) -> None:
    """Refuse a name that no built-in model has, listing the valid ones (nothing is built)."""
    if name not in _REGISTRY:
        raise ConfigError(
            f"Unknown architecture {name!r} in `model.arch`; expected one of "
            f"{', '.join(sorted(_REGISTRY))}, or 'module:callable' / 'file.py:callable' / "
            "'hf:PATH'."
        )


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``None`` keyword values are dropped so defaults stay."""
    check_model_name(name)
    return _REGISTRY[name].fn(**{k: v for k, v in kwargs.items() if v is not None})


def _check_kwargs(fn: Callable[..., Any], kwargs: Mapping[str, Any], arch: str) -> None:
    """Refuse ``model.kwargs`` that ``fn``'s signature does not take, before the call: a
    TypeError raised inside the user's callable (its own bug) was blamed on the kwargs."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read (a C function): the call says
        return
    try:
        signature.bind(**kwargs)
    except TypeError as e:
        raise ConfigError(f"`model.kwargs` do not fit {arch!r}: {e}") from None


def build_model(arch: str, kwargs: Mapping[str, Any] | None = None, seed: int = 0) -> nn.Module:
    """Build ``arch`` (built-in, user callable or ``hf:PATH``); initial weights from ``seed``."""
    kwargs = dict(kwargs or {})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # a model without checkpoint is reproducible too
        if is_hf_spec(arch):  # before the callable rule: 'hf:PATH' has a colon too
            model = load_hf_model(arch, kwargs)
        elif is_callable_spec(arch):
            fn = load_callable(arch, "model.arch")
            _check_kwargs(fn, kwargs, arch)
            try:
                model = fn(**kwargs)
            except Exception as e:
                raise LandscapeError(f"`model.arch` {arch!r} raised {type(e).__name__}: {e}") from e
        else:
            try:
                model = create_model(arch, **kwargs)
            except TypeError as e:
                raise ConfigError(f"`model.kwargs` do not fit {arch!r}: {e}") from None
    if not isinstance(model, nn.Module):
        raise LandscapeError(
            f"`model.arch` {arch!r} returned {type(model).__name__}, expected a torch nn.Module."
        )
    if next(model.parameters(), None) is None:  # nothing to move (and no dtype to evaluate in)
        raise LandscapeError(
            f"`model.arch` {arch!r} has no parameters: a landscape moves a model's weights"
        )
    return model


def parameter_count(name: str) -> int:
    """Parameters of a built-in model, built on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name).parameters())
