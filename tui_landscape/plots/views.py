"""What to draw for a surface file, as text: shared by ``plot``, ``compare`` and the TUI.

Each function takes ``Surface`` objects (``engine.storage``), resolves them into a plot spec
(``plots.spec``, where every choice is made) and returns text from ``plots.terminal``;
unfinished and failed points are NaN there and are drawn as missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from engine.errors import ConfigError, LandscapeError
from engine.storage import Surface
from tui_landscape.plots.spec import resolve, resolve_compare
from tui_landscape.plots.terminal import draw

__all__ = [
    "Trajectory",
    "has_trajectory",
    "read_trajectory",
    "render",
    "render_compare",
]


@dataclass(frozen=True)
class Trajectory:
    """A training path projected on the surface's plane, and its axes' explained variance."""

    x: np.ndarray
    y: np.ndarray
    explained: tuple[float, float] | None


def read_trajectory(path: str | Path, surface: Surface | None = None) -> Trajectory:
    """A projection file (``proj_xcoord``, ``proj_ycoord``: the reference's layout).

    The explained variance ratios come from the file itself or else from the surface's
    direction file (``explained_variance_ratio_``, as the reference's PCA directions hold).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"trajectory file not found: {p}")
    try:
        with h5py.File(p, "r", locking=False) as f:
            if "proj_xcoord" not in f or "proj_ycoord" not in f:
                raise LandscapeError(f"{p} is not a projection file (no proj_xcoord/proj_ycoord)")
            x = np.asarray(f["proj_xcoord"][()], dtype=float).ravel()
            y = np.asarray(f["proj_ycoord"][()], dtype=float).ravel()
            ev = f["explained_variance_ratio_"][()] if "explained_variance_ratio_" in f else None
    except OSError as e:
        raise LandscapeError(f"{p} cannot be opened as HDF5: {e}") from None
    if ev is None and surface is not None and surface.dir_file:
        d = Path(surface.dir_file)
        d = d if d.is_absolute() else surface.path.parent / d
        try:
            with h5py.File(d, "r", locking=False) as f:
                if "explained_variance_ratio_" in f:
                    ev = f["explained_variance_ratio_"][()]
        except OSError:
            ev = None  # the labels then say "PC" without a percentage
    explained = None if ev is None else (float(ev[0]), float(ev[1]))
    return Trajectory(x, y, explained)


def has_trajectory(path: str | Path) -> bool:
    """Whether a file holds a projected path (``proj_xcoord`` and ``proj_ycoord``)."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return "proj_xcoord" in f and "proj_ycoord" in f
    except OSError:
        return False


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
