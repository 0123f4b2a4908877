"""The kinds of plot: one registry of names, and the renderers each kind is drawn by.

Kept apart from ``spec`` so that a command's ``--help`` can name the kinds without importing
numpy (``spec`` re-exports them). The renderers register themselves here from their own
modules (``terminal.py`` for text, ``export.py`` for matplotlib figures) with ``renders``, and
every dispatch goes through ``renderer``, which raises on a kind nobody draws. A new kind is
one ``PlotKind`` line here plus one renderer in each module;
``tests/test_plots_terminal.py`` checks that every kind has both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.errors import ConfigError

__all__ = [
    "APP_KINDS",
    "DRAWN_KINDS",
    "FIGURE_ONLY",
    "KINDS",
    "MAP_KINDS",
    "REGISTRY",
    "SPECTRUM_KINDS",
    "SURFACE_KINDS",
    "PlotKind",
    "check_kind",
    "renderer",
    "renders",
]


@dataclass(frozen=True)
class PlotKind:
    """One kind a user can ask for (``--kind``).

    ``drawn``: a spec can have this kind (False: ``spec.resolve`` turns it into a drawn kind,
    as ``auto`` and ``ratio``). ``is_map``: a map of z over (x, y), with the overlays (the best
    point, a training path, the cursor). ``terminal``: plotext can draw it (False: figures
    only). ``app``: on the app's ``k`` key among the maps. ``spectrum``: drawn from the
    file's ``hessian_spectrum`` group, not from a surface (``plots.density``; the plot view's
    ``k`` offers it where the file has one).
    """

    name: str
    doc: str
    drawn: bool = True
    is_map: bool = True
    terminal: bool = True
    app: bool = False
    spectrum: bool = False


REGISTRY: dict[str, PlotKind] = {
    k.name: k
    for k in (
        PlotKind(
            "auto", "a curve in 1D, a contour map in 2D, a heat map of the ratio", drawn=False
        ),
        PlotKind("contour", "iso-lines at the levels", app=True),
        PlotKind("filled", "bands between the levels", app=True),
        PlotKind("heatmap", "one colour per grid point", app=True),
        PlotKind(
            "surface3d", "a 3D surface (figures only: plotext has no 3D view)", terminal=False
        ),
        PlotKind("ratio", "|min_eig / max_eig| as a heat map on a fixed scale", drawn=False),
        PlotKind("curve", "1D (the middle row of a 2D file)", is_map=False),
        PlotKind(
            "density",
            "the Hessian's eigenvalue density at the center (hessian run), top-k and trace",
            is_map=False,
            spectrum=True,
        ),
    )
}

KINDS = tuple(REGISTRY)
"""Every kind a user can ask for (``--kind``)."""
DRAWN_KINDS = tuple(k for k, v in REGISTRY.items() if v.drawn)
"""The kinds a resolved spec has: each has a terminal and a figure renderer."""
MAP_KINDS = tuple(k for k in DRAWN_KINDS if REGISTRY[k].is_map)
FIGURE_ONLY = tuple(k for k in DRAWN_KINDS if not REGISTRY[k].terminal)
# What a 2D grid can be drawn as when the caller passes the values themselves (grid_spec).
SURFACE_KINDS = tuple(k for k, v in REGISTRY.items() if v.is_map and k != "auto")
# The app's `k` key: the 2D maps (the ratio is a surface on `s`, curves are the `r`/`c` slices).
# No "auto": it draws as one of them, so a step onto it would change nothing on screen.
APP_KINDS = tuple(k for k, v in REGISTRY.items() if v.app)
SPECTRUM_KINDS = tuple(k for k, v in REGISTRY.items() if v.spectrum)
"""Drawn from the file's spectrum (``plots.density``), not from a surface."""


def check_kind(kind: str, allowed: tuple[str, ...] = KINDS) -> None:
    """One message for an unknown kind, from every front end."""
    if kind not in allowed:
        raise ConfigError(
            f"Expected the plot kind (`--kind`) to be one of {', '.join(allowed)}, "
            f"but got {kind!r}."
        )


F = TypeVar("F", bound=Callable[..., Any])


def renders(table: dict[str, Callable[..., Any]], *kinds: str) -> Callable[[F], F]:
    """Register the decorated function in ``table`` (a renderer module's) as the one that
    draws ``kinds``; an unknown or twice-registered kind is a programming error, raised at
    import."""

    def deco(fn: F) -> F:
        for kind in kinds:
            if kind not in DRAWN_KINDS:
                raise ValueError(f"{kind!r} is not a drawn plot kind ({', '.join(DRAWN_KINDS)})")
            if kind in table:
                raise ValueError(f"plot kind {kind!r} has two renderers")
            table[kind] = fn
        return fn

    return deco


def renderer(table: dict[str, Callable[..., Any]], kind: str) -> Callable[..., Any]:
    """The function ``table`` draws ``kind`` with; an unknown kind raises, naming the known."""
    try:
        return table[kind]
    except KeyError:
        check_kind(kind, tuple(k for k in DRAWN_KINDS if k in table))
        raise
