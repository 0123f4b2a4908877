"""Direction kinds: where a run's directions come from (``directions.kind``).

The registry ``KINDS`` names each kind with its one-line doc; the config accepts exactly
these names, and reads them at import (no torch here: the config loads before torch). Each
kind's builder is attached in ``engine.build`` with ``@kind_builder(name)``: a builder needs
the model, the data and the Hessian, which import the config, so it cannot live here without
an import cycle. ``build_kind`` dispatches; a kind with no builder raises.

A new kind: ``KINDS.add`` a line below, and its builder in ``engine/build.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError
from engine.registry import Registry

__all__ = ["KINDS", "Kind", "build_kind", "kind_builder"]


@dataclass
class Kind:
    """A direction kind: its name, what it is, and (once ``engine.build`` is imported) its
    builder ``build(ctx) -> (DirectionSet, PCAResult | None)``."""

    name: str
    doc: str
    build: Callable[[Any], Any] | None = None


KINDS: Registry[Kind] = Registry("direction kind", "directions.kind")

for _name, _doc in (
    ("random", "seeded Gaussian directions, normalised by directions.norm"),
    ("interpolate", "from the model to directions.target (1D)"),
    ("file", "read from directions.file"),
    ("pca", "the top two PCA directions of a training path (directions.checkpoints)"),
    ("hessian", "eigenvectors of the Hessian at the model (directions.pair)"),
):
    KINDS.add(_name, Kind(_name, _doc))


def kind_builder(name: str) -> Callable[[Callable], Callable]:
    """Attach the builder of the registered kind ``name`` (an unknown name raises)."""

    def deco(fn: Callable) -> Callable:
        KINDS.get(name).build = fn
        return fn

    return deco


def build_kind(name: str, ctx: Any) -> Any:
    """Build the directions of kind ``name`` from ``ctx``; unknown or builder-less raises."""
    kind = KINDS.get(name)
    if kind.build is None:
        raise ConfigError(f"direction kind {name!r} has no builder (engine/build.py)")
    return kind.build(ctx)
