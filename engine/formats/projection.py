"""Projection files (HDF5): a training path projected on a surface's plane.

The reference's layout: ``proj_xcoord`` and ``proj_ycoord``, one float64 per checkpoint in
epoch order. Ours add ``explained_variance_ratio_`` (2,) for axis labels and provenance
attributes. A PCA surface file holds the same datasets (and the least-squares ``*_lsq``
pair), so a surface file is read as a projection file too.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from engine import __version__
from engine.errors import ConfigError, LandscapeError
from engine.formats.constants import (
    ATTR_CREATED,
    ATTR_FORMAT,
    ATTR_TOOL_VERSION,
    EXPLAINED_VARIANCE_RATIO,
    PROJ_X,
    PROJ_X_LSQ,
    PROJ_Y,
    PROJ_Y_LSQ,
    PROJECTION_FORMAT,
)
from engine.formats.directions import ratio_pair, read_explained_variance
from engine.formats.files import fresh_hdf5, open_checked, real_dataset, writing
from engine.formats.layout import damaged

if TYPE_CHECKING:
    from engine.formats.reader import Surface

__all__ = [
    "Trajectory",
    "has_trajectory",
    "path_datasets",
    "read_trajectory",
    "write_projection",
]


@dataclass(frozen=True)
class Trajectory:
    """A training path projected on the surface's plane, and its axes' explained variance."""

    x: np.ndarray
    y: np.ndarray
    explained: tuple[float, float] | None


def path_datasets(coords_cos: np.ndarray, coords_lsq: np.ndarray) -> dict[str, np.ndarray]:
    """A PCA surface's path as root datasets: the reference's cosine projection under its
    names, and the exact least-squares coordinates beside it; each (n, 2) in epoch order."""
    cos, lsq = _pairs(coords_cos), _pairs(coords_lsq)
    return {PROJ_X: cos[:, 0], PROJ_Y: cos[:, 1], PROJ_X_LSQ: lsq[:, 0], PROJ_Y_LSQ: lsq[:, 1]}


def _pairs(coords: np.ndarray) -> np.ndarray:
    c = np.asarray(coords, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"Expected `coords` to have shape (n, 2), but got {c.shape}.")
    return c


def write_projection(
    path: str | Path, coords: np.ndarray, explained_variance_ratio: np.ndarray | None = None
) -> None:
    """Write a projection file in the reference's layout.

    ``proj_xcoord`` and ``proj_ycoord`` hold one float64 per checkpoint in epoch order;
    ``explained_variance_ratio_`` (2,) is our addition, which our plots use for axis labels.
    """
    c = _pairs(coords)
    # Built in memory and written out whole: a full disk is one line, never a crash.
    with writing(Path(path)), fresh_hdf5(Path(path)) as f:
        f.create_dataset(PROJ_X, data=c[:, 0])
        f.create_dataset(PROJ_Y, data=c[:, 1])
        if explained_variance_ratio is not None:
            ev = np.asarray(explained_variance_ratio, dtype=np.float64).reshape(-1)
            if ev.shape != (2,):
                raise ValueError(
                    f"Expected `explained_variance_ratio` to have 2 values, but got {ev.shape}."
                )
            f.create_dataset(EXPLAINED_VARIANCE_RATIO, data=ev)
        f.attrs[ATTR_FORMAT] = PROJECTION_FORMAT
        f.attrs[ATTR_TOOL_VERSION] = __version__
        f.attrs[ATTR_CREATED] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def read_trajectory(path: str | Path, surface: Surface | None = None) -> Trajectory:
    """A projection file (``proj_xcoord``, ``proj_ycoord``: the reference's layout).

    The explained variance ratios come from the file itself or else from the surface's
    direction file (``explained_variance_ratio_``, as the reference's PCA directions hold).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"trajectory file not found: {p}")
    with open_checked(p) as f:
        if PROJ_X not in f or PROJ_Y not in f:
            raise LandscapeError(f"{p} is not a projection file (no {PROJ_X}/{PROJ_Y})")
        try:
            x, y = (_coordinates(f[name]) for name in (PROJ_X, PROJ_Y))
            ev = f[EXPLAINED_VARIANCE_RATIO][()] if EXPLAINED_VARIANCE_RATIO in f else None
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise damaged(p, e) from None
    if x is None or y is None or x.size != y.size:
        raise LandscapeError(
            f"{p} is not a readable projection file: its {PROJ_X} and {PROJ_Y} are not real "
            "numbers of one length"
        )
    explained = ratio_pair(ev)  # malformed: the labels say "PC" with no percentage
    if explained is None and surface is not None and surface.dir_file:
        d = Path(surface.dir_file)
        # Without it the labels say "PC" with no percentage.
        explained = read_explained_variance(d if d.is_absolute() else surface.path.parent / d)
    return Trajectory(x, y, explained)


def _coordinates(d: object) -> np.ndarray | None:
    """A path's coordinates as float64, or None where ``d`` is no dataset of real numbers."""
    if not real_dataset(d):
        return None
    return np.asarray(d[()], dtype=np.float64).reshape(-1)


def has_trajectory(path: str | Path) -> bool:
    """Whether a file holds a projected path (``proj_xcoord`` and ``proj_ycoord``)."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return PROJ_X in f and PROJ_Y in f
    except OSError:
        return False
