"""What to draw for a surface file, as text: shared by ``plot``, ``compare`` and the TUI.

Each function takes ``Surface`` objects (``engine.formats``), resolves them into a plot spec
(``plots.spec``, where every choice is made) and returns text from ``plots.terminal``;
unfinished and failed points are NaN there and are drawn as missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.formats import Surface, Trajectory
from tui_landscape.plots.spec import PlotSpec, resolve, resolve_compare
from tui_landscape.plots.terminal import draw

__all__ = [
    "relabel",
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
    names: Sequence[str] | None = None,
) -> list[str]:
    """Each surface drawn on one shared scale: the same iso-levels or the same colour range.

    1D files are overlaid on one set of axes. Mixing 1D and 2D files is refused. ``names``:
    what the files are called (``relabel``), else their names.
    """
    specs = resolve_compare(surfaces, name, kind, levels=levels, log=log)
    if names is not None:
        specs = relabel(specs, names)
    return [draw(spec, width=width, height=height, color=color) for spec in specs]


def relabel(specs: list[PlotSpec], names: Sequence[str]) -> list[PlotSpec]:
    """``resolve_compare``'s specs with the files named by ``names`` (a study's members share
    file names): each map's title, or the curves of the one 1D plot."""
    import dataclasses

    if len(specs) == 1 and specs[0].kind == "curve" and len(specs[0].series) == len(names):
        series = dict(zip(names, specs[0].series.values(), strict=True))
        return [dataclasses.replace(specs[0], series=series)]
    if len(specs) != len(names):
        return specs
    return [
        dataclasses.replace(sp, title=f"{n}: {sp.title.rpartition(': ')[2]}")
        for sp, n in zip(specs, names, strict=True)
    ]
