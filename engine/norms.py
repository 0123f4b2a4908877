"""Direction norms: how a random direction is scaled against the model's weights.

Each norm is a function ``fn(d, w)`` that scales the direction ``d`` in place against the
weights ``w`` (a tensor with 2+ dims, as ``engine.directions`` calls it). They are the
registry ``NORMS``: a new norm is a function here with ``@register_norm("name")``, and the
config's ``directions.norm`` accepts it. Tensor methods only, no torch import: the config
reads the names at import, before torch loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.registry import Registry

if TYPE_CHECKING:
    import torch

__all__ = ["NORMS", "normalize_direction", "register_norm"]

NormFn = Callable[["torch.Tensor", "torch.Tensor"], None]

NORMS: Registry[NormFn] = Registry("direction norm", "directions.norm")


def register_norm(name: str) -> Callable[[NormFn], NormFn]:
    """Register ``fn(d, w)`` (scales ``d`` in place against ``w``) as the norm ``name``."""
    return NORMS.register(name, lambda fn: fn)


def normalize_direction(d: torch.Tensor, w: torch.Tensor, norm: str) -> None:
    """Scale ``d`` in place against the weights ``w`` by the registered norm ``norm``."""
    NORMS.get(norm)(d, w)


@register_norm("filter")
def filter_norm(d: torch.Tensor, w: torch.Tensor) -> None:
    """Each slice along dim 0 (a filter, or a row of a linear layer) gets its weights' norm."""
    dn = d.flatten(1).norm(dim=1)
    wn = w.flatten(1).norm(dim=1)
    d.mul_((wn / (dn + 1e-10)).view(-1, *([1] * (d.dim() - 1))))


@register_norm("layer")
def layer_norm(d: torch.Tensor, w: torch.Tensor) -> None:
    """The whole tensor gets its weights' norm."""
    d.mul_(w.norm() / (d.norm() + 1e-10))


@register_norm("weight")
def weight_norm(d: torch.Tensor, w: torch.Tensor) -> None:
    """Each entry is scaled by its weight."""
    d.mul_(w)


@register_norm("none")
def no_norm(d: torch.Tensor, w: torch.Tensor) -> None:
    """The Gaussian draw as it is."""
