"""What a plot shows, decided once for the terminal and for figures: the plot spec.

``resolve`` turns one surface file and the user's options (kind, surface name, levels, log
scale, ...) into a ``PlotSpec``; ``resolve_compare`` does the same for several files on one
scale. The terminal renderer (``plots.terminal.draw``) and the matplotlib one
(``plots.export.export_spec``) draw a spec and decide nothing themselves, so ``plot``,
``plot --export``, ``compare``, the app and the demo show the same kind, contour levels and
colour limits for the same file (as torchmetrics writes the arithmetic once for both forms).
The level rules (``levels_for``, ``limits_for``: a loss's, an exploding rim's, the ratio's, any
other metric's), ``--levels`` parsing and the app's level steps live in ``plots.levels`` (and
are exported here too); the best point (``best_point``) lives here only.

No plotting package is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import ArrayLike

from engine.errors import ConfigError
from engine.formats import SURFACE_SPLITS, clean_text
from engine.sharpness import eigen_ratio, surface_ratio
from tui_landscape.plots.hessian import (
    accuracy,
    flagged_points,
    is_hessian,
    not_converged,
    title_note,
)
from tui_landscape.plots.kinds import (
    APP_KINDS,
    FIGURE_ONLY,
    KINDS,
    SPECTRUM_KINDS,
    SURFACE_KINDS,
    check_kind,
)
from tui_landscape.plots.levels import (
    LEVELS_RANGE,
    REF_VMAX,
    finite_values,
    level_fraction,
    level_knots,
    levels_for,
    limits_for,
    next_levels,
    parse_levels,
    rim_for,
    rim_rises,
    tick_format,
)

if TYPE_CHECKING:
    from engine.formats import Surface

__all__ = [
    "APP_KINDS",
    "KINDS",
    "LEVELS_RANGE",
    "REF_VMAX",
    "SURFACE_KINDS",
    "PlotSpec",
    "best_for",
    "best_point",
    "check_kind",
    "finite_values",
    "grid_spec",
    "is_loss",
    "level_fraction",
    "level_knots",
    "levels_for",
    "limits_for",
    "map_kind",
    "next_kind",
    "next_levels",
    "parse_levels",
    "require_one_ndim",
    "resolve",
    "resolve_compare",
    "rim_rises",
    "slice_spec",
    "surface_label",
    "surface_values",
    "tick_format",
]

RATIO_LABEL = "|min eig / max eig|"
# Surfaces made from others, drawn on the ratio's fixed scale: the Hessian's |min/max| ratio,
# and the 2D train loss's own non-convexity (engine.sharpness.surface_ratio) for any 2D file.
CONVEXITY = "convexity"
CONVEXITY_LABEL = "non-convexity of the train loss in the plane"
RATIO_NAMES = {"ratio": RATIO_LABEL, CONVEXITY: CONVEXITY_LABEL}


class _Path(Protocol):
    """A projected training path (``plots.views.Trajectory`` or anything shaped like it)."""

    x: np.ndarray
    y: np.ndarray
    explained: tuple[float, float] | None


@dataclass(frozen=True, eq=False)
class PlotSpec:
    """Everything a renderer needs to draw one plot; every choice is already made.

    A map (``kind`` contour, filled, heatmap, surface3d) has ``z`` of shape ``(ny, nx)`` (or
    ``(nx,)`` with ``y`` None, drawn as a curve), ``levels`` and colour limits ``vmin``/``vmax``
    in data units; ``flagged`` are points marked as not converged (a Hessian map's). A curve
    (``kind`` curve) has ``series`` on the left axis and ``right`` on a twin right axis. The
    eigenvalue density (``kind`` density, ``plots.density``) is one series over eigenvalues,
    ``marks`` drawn as vertical lines (the top-k eigenvalues) and ``notes`` as a legend. NaN
    is a missing point everywhere.
    """

    kind: str
    x: np.ndarray
    y: np.ndarray | None = None
    z: np.ndarray | None = None
    series: Mapping[str, np.ndarray] = field(default_factory=dict)
    right: Mapping[str, np.ndarray] = field(default_factory=dict)
    levels: np.ndarray = field(default_factory=lambda: np.empty(0))
    vmin: float | None = None
    vmax: float | None = None
    log: bool = False
    ratio: bool = False  # z is |min_eig / max_eig| on RATIO_SCALE
    level_colors: bool = False  # colours step evenly from level to level (level_fraction)
    title: str = ""
    xlabel: str = "x"
    ylabel: str = "y"
    zlabel: str = "loss"
    left_label: str = "loss"
    right_label: str = "accuracy (%)"
    mark_min: bool = True  # mark (and report) the best point, ``best``
    best: str = "min"  # "min", or "max" for an accuracy: the point a reader looks for
    path: tuple[np.ndarray, np.ndarray] | None = None  # a training path over the map
    cursor: tuple[float, float] | None = None
    # A difference (plots.difference): what below and above 0 mean, e.g. ("b.h5 lower",
    # "b.h5 higher"); its colours diverge from 0 and the renderers say which sign is which.
    signs: tuple[str, str] | None = None
    flagged: tuple[np.ndarray, np.ndarray] | None = None  # (xs, ys) of unconverged points
    marks: np.ndarray = field(default_factory=lambda: np.empty(0))  # x of vertical lines
    notes: tuple[str, ...] = ()  # legend lines: beside a figure, below the terminal's plot


def map_kind(kind: str, ratio: bool = False) -> str:
    """What a 2D map of ``kind`` is drawn as: ``auto`` is a heat map of the ratio and a
    contour map of anything else."""
    if kind in ("auto", "ratio"):
        return "heatmap" if ratio else "contour"
    return kind


def next_kind(kind: str, ratio: bool = False) -> str:
    """The app's next map kind after ``kind`` (``k``): from what ``auto`` is drawn as, so each
    step shows a different map."""
    shown = map_kind(kind, ratio)
    return (
        APP_KINDS[(APP_KINDS.index(shown) + 1) % len(APP_KINDS)]
        if shown in APP_KINDS
        else APP_KINDS[0]
    )


def best_for(name: str) -> str:
    """Which extreme of surface ``name`` is its best point: the maximum of an accuracy
    (``*_acc``), the minimum of anything else (a loss)."""
    return "max" if name.endswith("_acc") else "min"


def is_loss(name: str) -> bool:
    """Whether surface ``name`` takes a loss's levels (the reference's 0.1 to 10, log-spaced
    around a deep basin, colours clipped at 10). Any other surface (an accuracy in %, an error
    metric, an eigenvalue) gets levels and colours spanning its own range."""
    return name.endswith("_loss")


def surface_label(name: str) -> str:
    """Surface ``name`` as an axis reads it: a metric's split and name ("train abs_err" for
    ``train_abs_err``), the ratio's formula, any other name as it is."""
    if name in RATIO_NAMES:
        return RATIO_NAMES[name]
    split, _, metric = name.partition("_")
    return f"{split} {metric}" if split in SURFACE_SPLITS and metric else name


def derived_surfaces(s: Surface) -> list[str]:
    """The surfaces drawn from a file's own: ``ratio`` where it holds both eigenvalues (a file
    with one of them offered it, and drawing it failed), ``convexity`` for a 2D train loss."""
    return [
        *(["ratio"] if "max_eig" in s.values and "min_eig" in s.values else []),
        *([CONVEXITY] if s.y is not None and "train_loss" in s.values else []),
    ]


def surface_values(s: Surface, name: str) -> np.ndarray:
    """The named surface, or ``ratio`` (|min_eig / max_eig|, missing where the eigenvalues did
    not converge: ``hessian_converged`` 0), or ``convexity`` (the 2D train loss's own
    non-convexity, ``engine.sharpness.surface_ratio``); one clear error if absent."""
    if name == "ratio":
        if "max_eig" not in s.values or "min_eig" not in s.values:
            raise ConfigError(
                f"{s.path} has no Hessian eigenvalues (max_eig, min_eig) for a ratio map"
            )
        r = eigen_ratio(s.values["min_eig"], s.values["max_eig"])
        return np.where(not_converged(s), np.nan, r)
    if name == CONVEXITY:
        if s.y is None or "train_loss" not in s.values:
            raise ConfigError(f"{s.path} has no 2D train_loss for a {CONVEXITY} map")
        return surface_ratio(s.x, s.y, s.values["train_loss"])
    if name not in s.values:
        have = ", ".join([*s.values, *derived_surfaces(s)])
        raise ConfigError(f"{s.path} has no surface {name!r}; it has: {have}")
    return s.values[name]


def best_point(spec: PlotSpec) -> tuple[int, int] | None:
    """The grid cell ``(i, j)`` of a map's best point (``spec.best``: its minimum, or maximum),
    which both renderers mark; None when the map marks none or has no finite value."""
    if spec.z is None or not spec.mark_min:
        return None
    z = np.asarray(spec.z, dtype=float).reshape(-1 if spec.y is None else len(spec.y), len(spec.x))
    if not np.isfinite(z).any():
        return None
    arg = np.nanargmax if spec.best == "max" else np.nanargmin
    i, j = np.unravel_index(arg(z), z.shape)
    return int(i), int(j)


# ---------------------------------------------------------------------------------------------
# specs


def grid_spec(
    x: ArrayLike,
    y: ArrayLike | None,
    z: ArrayLike,
    *,
    kind: str = "auto",
    levels: int | ArrayLike | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    ratio: bool = False,
    title: str = "",
    xlabel: str = "x",
    ylabel: str = "y",
    zlabel: str | None = None,
    mark_min: bool = True,
    best: str = "min",
    path: tuple[np.ndarray, np.ndarray] | None = None,
    cursor: tuple[float, float] | None = None,
    scale: tuple[np.ndarray, tuple[float, float]]
    | tuple[np.ndarray, tuple[float, float], bool]
    | None = None,
    loss: bool = True,
    flagged: tuple[np.ndarray, np.ndarray] | None = None,
) -> PlotSpec:
    """A map of ``z`` over ``(x, y)``. ``kind="ratio"`` (or ``ratio=True``) reads ``z`` as the
    eigenvalue ratio: ``|z|`` as a heat map on the fixed scale. ``scale`` (levels, limits)
    shares another resolution's scale (compare), with its ``level_colors`` as a third item
    (default False). ``best``: the extreme marked, "min" or "max".
    ``loss``: the loss's level rule (``levels_for``); False for an accuracy or other metric."""
    check_kind(kind, ("auto", *SURFACE_KINDS))
    ratio = ratio or kind == "ratio"
    za = np.asarray(z, dtype=float)
    if ratio:
        za = np.abs(za)
    kind = map_kind(kind, ratio)
    if scale is None:
        rule = {"vmin": vmin, "vmax": vmax, "log": log, "ratio": ratio, "loss": loss}
        lv = levels_for(za, levels, **rule)
        lim = limits_for(za, lv, **rule)
        by_level = rim_for(za, levels, log, ratio, loss, vmin, vmax) is not None
    else:
        lv, lim, by_level = (*scale, False)[:3]
    return PlotSpec(
        kind,
        np.asarray(x, dtype=float),
        None if y is None else np.asarray(y, dtype=float),
        za,
        levels=lv,
        vmin=lim[0],
        vmax=lim[1],
        log=log and not ratio,
        ratio=ratio,
        level_colors=bool(by_level),
        title=title,
        xlabel=xlabel,
        ylabel=ylabel,
        zlabel=zlabel or (RATIO_LABEL if ratio else "loss"),
        mark_min=mark_min and not ratio,
        best=best,
        path=path,
        cursor=cursor,
        flagged=flagged,
    )


def _pc_label(axis: int, t: _Path | None, fallback: str) -> str:
    if t is None:
        return fallback
    name = ("1st PC", "2nd PC")[axis]
    e = None if t.explained is None else t.explained[axis]
    return name if e is None or not np.isfinite(e) else f"{name}: {100 * e:.2f} %"


def _curve(s: Surface, name: str, z: np.ndarray, title: str, log: bool) -> PlotSpec:
    """1D: every loss on the left axis and every accuracy (if any) on the right, as the
    reference; any other metric, or an accuracy without a loss, alone on the left."""
    label = surface_label(name)
    if z.ndim == 2:  # a grid one point wide along y, or kind=curve on a 2D file: the middle row
        row = z.shape[0] // 2
        z = z[row]
        if s.y is not None and len(s.y) > 1:
            title = f"{title} (the row at y={s.y[row]:.3g})"
            return PlotSpec("curve", s.x, series={name: z}, title=title, left_label=label, log=log)
    left, right = {name: z}, {}
    if name.endswith(("_loss", "_acc")):
        losses = {n: v for n, v in s.values.items() if n.endswith("_loss") and v.ndim == 1}
        if losses:
            accs = {n: v for n, v in s.values.items() if n.endswith("_acc") and v.ndim == 1}
            left, right, label = losses, accs, "loss"
    return PlotSpec("curve", s.x, series=left, right=right, title=title, left_label=label, log=log)


def resolve(
    s: Surface,
    name: str = "train_loss",
    kind: str = "auto",
    *,
    levels: int | ArrayLike | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    trajectory: _Path | None = None,
    title: str | None = None,
    cursor: tuple[float, float] | None = None,
    figure: bool = False,
    scale: tuple[np.ndarray, tuple[float, float]]
    | tuple[np.ndarray, tuple[float, float], bool]
    | None = None,
) -> PlotSpec:
    """Surface ``name`` of ``s`` as ``kind``: the one place a plot's choices are made.

    ``figure``: for matplotlib (which alone draws ``surface3d``). ``scale`` shares the levels
    and colour limits of several files (``resolve_compare``).
    """
    check_kind(kind)
    if kind in FIGURE_ONLY and not figure:
        raise ConfigError(f"`--kind {kind}` is for --export only")
    if kind in SPECTRUM_KINDS:  # the callers draw it with plots.density.density_spec
        raise ConfigError(f"`--kind {kind}` draws one file's spectrum: `plot FILE --kind {kind}`")
    if kind == "ratio":
        name = "ratio"
    z = surface_values(s, name)
    label = f"{clean_text(s.path.name)}: {name}" if title is None else title
    hessian = is_hessian(name)
    if hessian:  # every eigenvalue says how well it is known, and over what
        label = f"{label} | {title_note(accuracy(s))}"
    if s.y is None or kind == "curve":
        return _curve(s, name, z, label, log)
    ratio = name in RATIO_NAMES
    return grid_spec(
        s.x,
        s.y,
        z,
        kind="auto" if kind == "ratio" else kind,
        levels=levels,
        vmin=vmin,
        vmax=vmax,
        log=log,
        ratio=ratio,
        title=label,
        xlabel=_pc_label(0, trajectory, "x"),
        ylabel=_pc_label(1, trajectory, "y"),
        zlabel=None if name == "ratio" or name.endswith("_loss") else surface_label(name),
        best=best_for(name),
        path=None if trajectory is None else (trajectory.x, trajectory.y),
        cursor=cursor,
        scale=scale,
        loss=is_loss(name),
        flagged=flagged_points(s) if hessian else None,
    )


def slice_spec(s: Surface, name: str, cell: tuple[int, int], which: str) -> PlotSpec:
    """The 1D slice of a 2D surface through grid cell ``(i, j)``: its ``row`` or ``column``."""
    z = surface_values(s, name)
    i, j = cell
    assert s.y is not None
    if which == "row":
        label, t, v, axis = f"at y={s.y[i]:.3g}", s.x, z[i], "x"
    else:
        label, t, v, axis = f"at x={s.x[j]:.3g}", s.y, z[:, j], "y"
    return PlotSpec(
        "curve", t, series={f"{name} {label}": v}, xlabel=axis, left_label=surface_label(name)
    )


def resolve_compare(
    surfaces: Sequence[Surface],
    name: str = "train_loss",
    kind: str = "auto",
    *,
    levels: int | ArrayLike | None = None,
    log: bool = False,
    figure: bool = False,
) -> list[PlotSpec]:
    """Each surface on one shared scale: the same levels and the same colour range.

    1D files are overlaid as one curve plot (each file's own points only: nothing is
    interpolated). Mixing 1D and 2D files is refused.
    """
    check_kind(kind)
    require_one_ndim(surfaces)
    if kind == "ratio":
        name = "ratio"
    zs = [surface_values(s, name) for s in surfaces]
    if surfaces[0].y is None:
        xs = np.unique(np.concatenate([s.x for s in surfaces]))
        exact = {}
        for s, z in zip(surfaces, zs, strict=True):
            v = np.full(len(xs), np.nan)
            v[np.searchsorted(xs, s.x)] = z
            exact[_label(s, surfaces)] = v
        label = surface_label(name)
        return [PlotSpec("curve", xs, series=exact, title=name, left_label=label, log=log)]
    scale = None
    if kind != "curve":
        ratio = name in RATIO_NAMES
        joined = np.concatenate([np.asarray(z, dtype=float).ravel() for z in zs])
        rule = {"log": log, "ratio": ratio, "loss": is_loss(name)}
        lv = levels_for(joined, levels, **rule)
        by_level = rim_for(joined, levels, log, ratio, is_loss(name), None, None) is not None
        scale = (lv, limits_for(joined, lv, **rule), by_level)
    out = []
    for s in surfaces:
        title = f"{_label(s, surfaces)}: {name}"
        out.append(resolve(s, name, kind, log=log, figure=figure, scale=scale, title=title))
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
    return clean_text(s.path.name if names.count(s.path.name) == 1 else str(s.path))
