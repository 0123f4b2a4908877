"""What to draw for a surface file, as text: shared by ``plot``, ``compare`` and the TUI.

Each function takes ``Surface`` objects (``engine.formats``), resolves them into a plot spec
(``plots.spec``, where every choice is made) and returns text from ``plots.terminal``;
unfinished and failed points are NaN there and are drawn as missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.formats import Surface, Trajectory
from tui_landscape.plots.spec import resolve, resolve_compare
from tui_landscape.plots.terminal import draw

__all__ = [
    "render",
    "render_compare",
]


def render(
    s: Surface,
    name: str = "train_loss",
    kind: str = "auto",
    *,
    levels: int | np.ndarray | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    width: int = 80,
    height: int = 24,
    color: bool = True,
    trajectory: Trajectory | None = None,
    title: str | None = None,
    cursor: tuple[float, float] | None = None,
) -> str:
    """One surface of a file drawn as ``kind`` (auto: a curve in 1D, a contour map in 2D)."""
    spec = resolve(
        s, name, kind, levels=levels, vmin=vmin, vmax=vmax, log=log,
        trajectory=trajectory, title=title, cursor=cursor,
    )  # fmt: skip
    return draw(spec, width=width, height=height, color=color)


def render_compare(
    surfaces: Sequence[Surface],
    name: str = "train_loss",
    kind: str = "auto",
    *,
    levels: int | np.ndarray | None = None,
    log: bool = False,
    width: int = 80,
    height: int = 20,
    color: bool = True,
) -> list[str]:
    """Each surface drawn on one shared scale: the same iso-levels or the same colour range.

    1D files are overlaid on one set of axes. Mixing 1D and 2D files is refused.
    """
    specs = resolve_compare(surfaces, name, kind, levels=levels, log=log)
    return [draw(spec, width=width, height=height, color=color) for spec in specs]
