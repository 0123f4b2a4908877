"""Directions a Python caller hands over (``tl.compute(..., directions=...)``,
``tl.interpolate``): a second model, tensors, state dicts or a direction file.

``given_directions`` turns what the caller holds into the config keys that record it (what the
stored config says, as ``engine.api`` records a model: ``python:`` plus a digest, which no config
can load) and a builder that makes the ``DirectionSet`` once the config is resolved (its
``directions.type`` and ``compute.bn`` decide which tensors move). The directions are used as
given, not normalised: they are the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.config import Config
from engine.directions import DirectionSet, has_batchnorm, interpolation_direction, targets
from engine.errors import ConfigError

__all__ = ["DirectionsLike", "given_directions"]

# A second model; one direction (a state dict, or tensors in the model's order); a pair of
# them (x, y); or a direction file.
DirectionsLike = Any
Builder = Callable[[Config, nn.Module], DirectionSet]

_EXPECTED = (
    "Expected `directions` to be a second model, a state dict or a list of tensors (one "
    "direction), a pair of them (x, y), or a direction file"
)


def given_directions(
    directions: DirectionsLike, two_d: bool, digest: Callable[[Any], str]
) -> tuple[dict[str, str], Builder | None]:
    """The config keys recording ``directions`` and the builder of its set (None for a file,
    which the config's own ``kind = 'file'`` reads). ``digest`` names in-memory objects."""
    if isinstance(directions, str | Path):
        return {"directions.kind": "file", "directions.file": str(directions)}, None
    if isinstance(directions, nn.Module):
        if two_d:
            raise ConfigError(
                "the line to a second model is 1D: pass y=None, or two directions (x, y)"
            )
        keys = {"directions.kind": "interpolate", "directions.target": digest(directions)}

        def towards(cfg: Config, model: nn.Module) -> DirectionSet:
            dir_type = _interpolation_type(cfg, model)
            x = interpolation_direction(model, directions, dir_type)
            return DirectionSet(x, None, dir_type, _attrs(cfg))

        return keys, towards
    axes = _axes(directions)
    if two_d != (len(axes) == 2):
        want = "two directions (x, y) for a 2D grid" if two_d else "one direction for a 1D grid"
        raise ConfigError(f"{_EXPECTED}: {want}, but got {len(axes)}.")
    keys = {"directions.kind": "file", "directions.file": digest(axes)}

    def build(cfg: Config, model: nn.Module) -> DirectionSet:
        dir_type = _tensor_type(cfg, model, axes[0])
        named = targets(model, dir_type)
        x, *y = (_ordered(a, named, axis) for a, axis in zip(axes, ("x", "y"), strict=False))
        ds = DirectionSet(x, y[0] if y else None, dir_type, _attrs(cfg))
        ds.check_fits(model, "`directions`")
        return ds

    return keys, build


def _attrs(cfg: Config) -> dict[str, Any]:
    d = cfg.directions
    return {"kind": d.kind, "norm": "none", "ignore": d.ignore, "seed": d.seed}


def _interpolation_type(cfg: Config, model: nn.Module) -> str:
    """As a configured interpolation: 'states' for a BN model whose statistics stay put."""
    if cfg.directions.type != "auto":
        return cfg.directions.type
    moves_stats = cfg.compute.bn == "keep" and has_batchnorm(model)
    return "states" if moves_stats else "weights"


def _is_direction(obj: Any) -> bool:
    if isinstance(obj, Mapping):
        return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())
    return (
        isinstance(obj, Sequence)
        and not isinstance(obj, str)
        and bool(obj)
        and all(isinstance(t, torch.Tensor) for t in obj)
    )


def _axes(obj: Any) -> list[Mapping[str, torch.Tensor] | Sequence[torch.Tensor]]:
    """One direction, or a pair (x, y), each a state dict or tensors."""
    if _is_direction(obj):
        return [obj]
    if (
        isinstance(obj, Sequence)
        and not isinstance(obj, str)
        and len(obj) in (1, 2)
        and all(_is_direction(a) for a in obj)
    ):
        return list(obj)
    raise ConfigError(f"{_EXPECTED}, but got {type(obj).__name__}.")


def _tensor_type(cfg: Config, model: nn.Module, first: Any) -> str:
    """``directions.type``, or for 'auto' the set the caller's tensors match: parameters
    ('weights'), else the whole state dict ('states')."""
    if cfg.directions.type != "auto":
        return cfg.directions.type
    weights = [n for n, _ in targets(model, "weights")]
    if isinstance(first, Mapping):
        return "weights" if set(first) == set(weights) else "states"
    return "weights" if len(first) == len(weights) else "states"


def _ordered(
    direction: Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
    named: list[tuple[str, torch.Tensor]],
    axis: str,
) -> list[torch.Tensor]:
    """The direction's tensors in the model's order, float32 on the CPU (copies)."""
    if isinstance(direction, Mapping):
        names = [n for n, _ in named]
        missing = [n for n in names if n not in direction]
        extra = [n for n in direction if n not in set(names)]
        if missing or extra:
            what = f"missing {missing[:3]}" if missing else f"unknown {extra[:3]}"
            raise ConfigError(
                f"`directions` {axis}: the state dict does not fit the model ({what})."
            )
        tensors = [direction[n] for n in names]
    else:
        tensors = list(direction)
    out = []
    for t, (_, like) in zip(tensors, named, strict=False):
        if torch.is_floating_point(like):
            out.append(t.detach().to("cpu", torch.float32).clone().contiguous())
        else:
            out.append(torch.zeros(like.shape, dtype=torch.float32))
    return out + [t.detach().to("cpu", torch.float32).clone() for t in tensors[len(named) :]]
