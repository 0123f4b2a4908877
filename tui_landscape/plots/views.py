"""What to draw for a surface file: the kinds of plot, shared by ``plot``, ``compare`` and the TUI.

Each function takes ``Surface`` objects (``engine.storage``) and returns text from
``plots.terminal``; unfinished and failed points are NaN there and are drawn as missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.errors import ConfigError
from engine.formats import Surface, Trajectory
from tui_landscape.plots.terminal import (
    contour_levels,
    contour_map,
    curve_plot,
    heat_map,
    scale_limits,
)

__all__ = [
    "KINDS",
    "eigen_ratio",
    "render",
    "render_compare",
    "require_one_ndim",
    "shared_levels",
    "surface_values",
]

KINDS = ("auto", "contour", "filled", "heatmap", "curve", "ratio")
RATIO_MAX = 0.5  # the reference's fixed scale for |min_eig / max_eig|


def surface_values(s: Surface, name: str) -> np.ndarray:
    """The named surface, or ``ratio`` (|min_eig / max_eig|); one clear error if absent."""
    if name == "ratio":
        return eigen_ratio(s)
    if name not in s.values:
        have = ", ".join([*s.values, *(["ratio"] if "max_eig" in s.values else [])])
        raise ConfigError(f"{s.path} has no surface {name!r}; it has: {have}")
    return s.values[name]


def eigen_ratio(s: Surface) -> np.ndarray:
    """|min_eig / max_eig| per point (NaN where either is missing or max_eig is 0)."""
    if "max_eig" not in s.values or "min_eig" not in s.values:
        raise ConfigError(f"{s.path} has no Hessian eigenvalues (max_eig, min_eig) for a ratio map")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.abs(s.values["min_eig"] / s.values["max_eig"])
    return np.where(np.isfinite(r), r, np.nan)


def shared_levels(arrays: Sequence[np.ndarray], levels: int | np.ndarray | None) -> np.ndarray:
    """One set of iso-levels for several surfaces (compare): from all their finite values."""
    if levels is not None and not isinstance(levels, int | np.integer):
        return np.asarray(levels, dtype=float)
    joined = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    if levels is None and (lv := _default_levels(joined)) is not None:
        return lv
    return contour_levels(joined, levels)


def _default_levels(z: np.ndarray) -> np.ndarray | None:
    """Log-spaced levels for a positive surface spanning over two decades (a loss around a
    minimum: linear levels would leave the whole basin inside the lowest one); else None."""
    finite = z[np.isfinite(z)]
    if finite.size == 0 or finite.min() <= 0 or finite.max() < 100 * finite.min():
        return None
    return np.geomspace(finite.min(), finite.max(), 12)[1:-1]


def _pc_label(axis: int, t: Trajectory | None, fallback: str) -> str:
    if t is None:
        return fallback
    name = ("1st PC", "2nd PC")[axis]
    return name if t.explained is None else f"{name}: {100 * t.explained[axis]:.2f} %"


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
    if kind not in KINDS:
        raise ConfigError(f"Expected the plot kind to be one of {', '.join(KINDS)}, got {kind!r}.")
    if kind == "ratio":
        name = "ratio"
    z = surface_values(s, name)
    label = f"{s.path.name}: {name}" if title is None else title
    if s.y is None or kind == "curve":
        return _curve(s, name, z, width, height, color, label, log)
    if kind == "auto":
        kind = "heatmap" if name == "ratio" else "contour"
    if name == "ratio":
        vmin, vmax = 0.0 if vmin is None else vmin, RATIO_MAX if vmax is None else vmax
    xlabel, ylabel = _pc_label(0, trajectory, "x"), _pc_label(1, trajectory, "y")
    if kind == "contour":
        zz, lv = z, levels
        if lv is None and not log:
            lv = _default_levels(z)
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                zz = np.where(z > 0, np.log10(z), np.nan)
            label = f"{label} (log10)"
            if lv is not None and not isinstance(lv, int | np.integer):
                lv = np.log10(np.asarray(lv)[np.asarray(lv) > 0])
        path = None if trajectory is None else (trajectory.x, trajectory.y)
        return contour_map(
            s.x,
            s.y,
            zz,
            levels=lv,
            width=width,
            height=height,
            title=label,
            xlabel=xlabel,
            ylabel=ylabel,
            color=color,
            path=path,
            cursor=cursor,
        )
    bands = None
    if kind == "filled":
        bands = shared_levels([z], levels) if levels is None or isinstance(levels, int) else levels
    if levels is not None and not isinstance(levels, int | np.integer) and len(levels):
        vmin = float(levels[0]) if vmin is None else vmin
        vmax = float(levels[-1]) if vmax is None else vmax
    return heat_map(
        s.x,
        s.y,
        z,
        vmin=vmin,
        vmax=vmax,
        log=log,
        bands=bands,
        width=width,
        height=height,
        title=label,
        xlabel=xlabel,
        ylabel=ylabel,
        color=color,
    )


def _curve(
    s: Surface,
    name: str,
    z: np.ndarray,
    width: int,
    height: int,
    color: bool,
    label: str,
    log: bool,
) -> str:
    """1D: every loss on the left axis and every accuracy on the right, as the reference."""
    if z.ndim == 2:  # a grid one point wide along y, or kind=curve on a 2D file: the middle row
        row = z.shape[0] // 2
        z = z[row]
        if s.y is not None and len(s.y) > 1:
            label = f"{label} (the row at y={s.y[row]:.3g})"
            return curve_plot(s.x, {name: z}, width=width, height=height, title=label,
                              color=color, left_label=name)  # fmt: skip
    if name.endswith("_loss") or name.endswith("_acc"):
        left = {n: v for n, v in s.values.items() if n.endswith("_loss") and v.ndim == 1}
        right = {n: v for n, v in s.values.items() if n.endswith("_acc") and v.ndim == 1}
        if not left and not right:
            left = {name: z}
    else:
        left, right = {name: z}, {}
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            left = {f"log10 {n}": np.where(v > 0, np.log10(v), np.nan) for n, v in left.items()}
    return curve_plot(
        s.x,
        left,
        right or None,
        width=width,
        height=height,
        title=label,
        color=color,
        left_label="log10 loss" if log else "loss",
    )


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
    require_one_ndim(surfaces)
    zs = [surface_values(s, name) for s in surfaces]
    if surfaces[0].y is None:
        xs = np.unique(np.concatenate([s.x for s in surfaces]))
        exact = {}
        for s, z in zip(surfaces, zs, strict=True):
            v = np.full(len(xs), np.nan)  # each file's own points only: nothing interpolated
            v[np.searchsorted(xs, s.x)] = z
            exact[_label(s, surfaces)] = v
        return [
            curve_plot(
                xs, exact, width=width, height=height, title=name, color=color, left_label=name
            )
        ]
    if kind == "auto":
        kind = "heatmap" if name == "ratio" else "contour"
    lv = shared_levels(zs, levels) if kind in ("contour", "filled") else levels
    lim = scale_limits(zs, log)
    vmin, vmax = (None, None) if lim is None else lim
    out = []
    for s in surfaces:
        out.append(
            render(
                s,
                name,
                kind,
                levels=lv,
                vmin=vmin,
                vmax=vmax,
                log=log,
                width=width,
                height=height,
                color=color,
                title=f"{_label(s, surfaces)}: {name}",
            )
        )
    return out


def require_one_ndim(surfaces: Sequence[Surface]) -> None:
    """Refuse a mix of 1D and 2D surfaces: they cannot share one scale."""
    if len({s.y is None for s in surfaces}) > 1:
        ones = ", ".join(str(s.path) for s in surfaces if s.y is None)
        twos = ", ".join(str(s.path) for s in surfaces if s.y is not None)
        raise ConfigError(
            f"cannot compare 1D and 2D surfaces on one scale (1D: {ones}; 2D: {twos})"
        )


def _label(s: Surface, all_: Sequence[Surface]) -> str:
    """The file name, or the path where two files share a name."""
    names = [t.path.name for t in all_]
    return s.path.name if names.count(s.path.name) == 1 else str(s.path)
