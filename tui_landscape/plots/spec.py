"""What a plot shows, decided once for the terminal and for figures: the plot spec.

``resolve`` turns one surface file and the user's options (kind, surface name, levels, log
scale, ...) into a ``PlotSpec``; ``resolve_compare`` does the same for several files on one
scale. The terminal renderer (``plots.terminal.draw``) and the matplotlib one
(``plots.export.export_spec``) draw a spec and decide nothing themselves, so ``plot``,
``plot --export``, ``compare``, the app and the demo show the same kind, contour levels and
colour limits for the same file (as torchmetrics writes the arithmetic once for both forms).
The level rules (``levels_for``, ``limits_for``: a loss's, the ratio's, any other metric's),
``--levels`` parsing, the app's level steps and the best point (``best_point``) live here only.

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
from engine.sharpness import RATIO_SCALE, eigen_ratio
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

if TYPE_CHECKING:
    from engine.formats import Surface

__all__ = [
    "APP_KINDS",
    "KINDS",
    "SURFACE_KINDS",
    "PlotSpec",
    "best_for",
    "best_point",
    "check_kind",
    "finite_values",
    "grid_spec",
    "is_loss",
    "levels_for",
    "limits_for",
    "map_kind",
    "next_kind",
    "next_levels",
    "parse_levels",
    "require_one_ndim",
    "resolve",
    "resolve_compare",
    "slice_spec",
    "surface_label",
    "surface_values",
    "tick_format",
]

# plot_2D.py's defaults: contours every 0.5 from 0.1 up to (not including) 10.
REF_VMIN, REF_VMAX, REF_STEP = 0.1, 10.0, 0.5
MIN_REF_LEVELS = 5  # fewer reference levels than this inside the data's range: they don't fit
N_LEVELS = 15
# A positive surface spanning this many times its minimum (a loss around a minimum) gets
# log-spaced levels: linear ones would leave the whole basin inside the lowest one.
BASIN_SPAN, BASIN_LEVELS = 100.0, 10
LEVELS_RANGE = (2, 40)  # what the app's +/- keys step between
RATIO_LABEL = "|min eig / max eig|"


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
    if name == "ratio":
        return RATIO_LABEL
    split, _, metric = name.partition("_")
    return f"{split} {metric}" if split in SURFACE_SPLITS and metric else name


def surface_values(s: Surface, name: str) -> np.ndarray:
    """The named surface, or ``ratio`` (|min_eig / max_eig|, missing where the eigenvalues did
    not converge: ``hessian_converged`` 0); one clear error if absent."""
    if name == "ratio":
        if "max_eig" not in s.values or "min_eig" not in s.values:
            raise ConfigError(
                f"{s.path} has no Hessian eigenvalues (max_eig, min_eig) for a ratio map"
            )
        r = eigen_ratio(s.values["min_eig"], s.values["max_eig"])
        return np.where(not_converged(s), np.nan, r)
    if name not in s.values:
        have = ", ".join([*s.values, *(["ratio"] if "max_eig" in s.values else [])])
        raise ConfigError(f"{s.path} has no surface {name!r}; it has: {have}")
    return s.values[name]


# ---------------------------------------------------------------------------------------------
# levels and limits


def finite_values(values: ArrayLike | Sequence[ArrayLike], log: bool = False) -> np.ndarray:
    """The finite values of an array, or of several arrays of any shapes, as one flat array;
    on a log scale the positive ones (none at all is an error)."""
    if isinstance(values, list | tuple):
        parts = [np.asarray(a, dtype=float).ravel() for a in values]
        v = np.concatenate(parts) if parts else np.empty(0)
    else:
        v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if log:
        positive = v[v > 0]
        if v.size and not positive.size:
            raise ConfigError("a log scale needs positive values, but every value is <= 0")
        v = positive
    return v


def _value_range(
    values: np.ndarray, vmin: float | None, vmax: float | None, log: bool
) -> tuple[float, float]:
    lo = float(vmin) if vmin is not None else (float(values.min()) if values.size else None)
    hi = float(vmax) if vmax is not None else (float(values.max()) if values.size else None)
    if lo is None and hi is None:
        lo, hi = (1.0, 10.0) if log else (0.0, 1.0)
    elif lo is None:
        lo = hi / 10 if log else hi - 1.0
    elif hi is None:
        hi = lo * 10 if log else lo + 1.0
    if log and lo <= 0:
        raise ConfigError(f"a log scale needs a positive vmin, got {lo:g}")
    if hi < lo:
        which = "" if vmin is not None and vmax is not None else " (from the data)"
        raise ConfigError(f"vmin ({lo:g}) must not be above vmax ({hi:g}){which}")
    if hi == lo:  # a constant surface still needs a range to draw
        if log:
            return lo / 2, hi * 2
        pad = 0.5 * abs(lo) or 0.5
        return lo - pad, hi + pad
    return lo, hi


def levels_for(
    values: ArrayLike,
    levels: int | ArrayLike | None = None,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    ratio: bool = False,
    loss: bool = True,
) -> np.ndarray:
    """The contour levels of ``values`` (any shape, NaN ignored): the one rule of every plot.

    Given levels are used as they are (sorted; positive ones only on a log scale). A count
    gives that many levels strictly inside the range, log-spaced on a log scale. Otherwise, in
    this order: the ratio's fixed scale in steps of 0.05; 15 log-spaced levels on a log scale;
    for a loss (``loss``, see ``is_loss``) 10 log-spaced levels strictly inside a positive
    range spanning over two decades (a loss around its minimum), or the reference's levels
    (0.1 to 10 every 0.5) when at least five fall inside the range; else 15 levels evenly
    spaced over the range (an accuracy, any other metric). The range is the finite values'
    (or ``vmin``/``vmax``), padded when constant.
    """
    if levels is not None and not isinstance(levels, int | np.integer):
        lv = np.unique(np.asarray(levels, dtype=float).ravel())
        lv = lv[np.isfinite(lv) & ((lv > 0) if log and not ratio else True)]
        if lv.size == 0:
            raise ConfigError(
                "no usable contour levels given" + (" for a log scale" if log else "")
            )
        return lv
    log = log and not ratio
    if ratio:
        lo = RATIO_SCALE[0] if vmin is None else float(vmin)
        hi = RATIO_SCALE[1] if vmax is None else float(vmax)
    else:
        lo, hi = _value_range(finite_values(values, log), vmin, vmax, log)
    if levels is not None:
        n = int(levels) + 2
        return (np.geomspace(lo, hi, n) if log else np.linspace(lo, hi, n))[1:-1]
    if ratio:
        return np.linspace(lo, hi, 11)
    if log:
        return np.geomspace(lo, hi, N_LEVELS)
    if not loss:
        return np.linspace(lo, hi, N_LEVELS)
    if lo > 0 and hi >= BASIN_SPAN * lo:
        return np.geomspace(lo, hi, BASIN_LEVELS + 2)[1:-1]
    ref = np.round(np.arange(REF_VMIN, REF_VMAX, REF_STEP), 10)
    inside = ref[(ref >= lo) & (ref <= hi)]
    if inside.size >= MIN_REF_LEVELS:
        return inside
    return np.linspace(lo, hi, N_LEVELS)


def limits_for(
    values: ArrayLike,
    levels: np.ndarray,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    ratio: bool = False,
    loss: bool = True,
) -> tuple[float, float]:
    """The colour range ``(lo, hi)`` of a map drawn with ``levels``.

    The ratio keeps its fixed scale. Otherwise colours reach down to the lowest point (the
    basin is what a reader looks at) and up to the data's top; for a loss (``loss``) no higher
    than the reference's vmax of 10 unless the levels go there: exploded corners are clipped
    as in plot_2D.py. ``vmin``/``vmax`` win over both.
    """
    if ratio:
        return (
            RATIO_SCALE[0] if vmin is None else float(vmin),
            RATIO_SCALE[1] if vmax is None else float(vmax),
        )
    finite = finite_values(values, log)
    lo, hi = float(levels[0]), float(levels[-1])
    if finite.size:
        lo = min(lo, float(finite.min()))
        hi = max(hi, min(float(finite.max()), REF_VMAX) if loss else float(finite.max()))
    lo = float(vmin) if vmin is not None else lo
    hi = float(vmax) if vmax is not None else hi
    if hi <= lo:  # one given level, or a constant surface
        lo, hi = _value_range(np.array([lo]), None, None, log)
    return lo, hi


def tick_format(values: ArrayLike, digits: int = 3) -> str:
    """The shortest ``%.Ng`` (N >= ``digits``) that writes every distinct value differently:
    colour-bar labels of a narrow range (0.0010 to 0.0013, or 1.0001 to 1.0004) never repeat,
    as fixed decimals ("0.00") or too few significant digits ("1") do."""
    t = np.unique(finite_values(values))
    for n in range(digits, 16):
        if len({f"{v:.{n}g}" for v in t}) == t.size:
            return f"%.{n}g"
    return "%.17g"


def parse_levels(text: str | None) -> int | np.ndarray | None:
    """``--levels``: 'vmin:vmax:step' (the reference's form, vmax excluded as in its
    ``arange``), or a count of evenly spaced levels; None or '' for the default."""
    if not text:
        return None
    if ":" not in text:
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(
                f"Expected `--levels` to be 'vmin:vmax:step' or a count >= 1, but got {text!r}."
            )
        return n
    try:
        lo, hi, step = (float(v) for v in text.split(":"))
    except ValueError:
        lo = hi = step = float("nan")
    if not (np.isfinite([lo, hi, step]).all() and step > 0 and hi > lo):
        raise ConfigError(
            f"Expected `--levels` to be 'vmin:vmax:step' with vmax > vmin and step > 0, "
            f"but got {text!r}."
        )
    if (hi - lo) / step > 1000:
        raise ConfigError(f"`--levels` {text!r} gives more than 1000 levels; use a larger step.")
    return np.arange(lo, hi, step)


def next_levels(shown: int, step: int) -> int:
    """The count of levels after the app's ``+``/``-`` (``step``) on a map showing ``shown``
    levels (its default ones, or a count chosen before), kept within ``LEVELS_RANGE``."""
    lo, hi = LEVELS_RANGE
    return min(max(shown + step, lo), hi)


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
    scale: tuple[np.ndarray, tuple[float, float]] | None = None,
    loss: bool = True,
    flagged: tuple[np.ndarray, np.ndarray] | None = None,
) -> PlotSpec:
    """A map of ``z`` over ``(x, y)``. ``kind="ratio"`` (or ``ratio=True``) reads ``z`` as the
    eigenvalue ratio: ``|z|`` as a heat map on the fixed scale. ``scale`` (levels, limits)
    shares another resolution's scale (compare). ``best``: the extreme marked, "min" or "max".
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
    else:
        lv, lim = scale
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
    scale: tuple[np.ndarray, tuple[float, float]] | None = None,
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
    ratio = name == "ratio"
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
        zlabel=None if ratio or name.endswith("_loss") else surface_label(name),
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
        ratio = name == "ratio"
        joined = np.concatenate([np.asarray(z, dtype=float).ravel() for z in zs])
        rule = {"log": log, "ratio": ratio, "loss": is_loss(name)}
        lv = levels_for(joined, levels, **rule)
        scale = (lv, limits_for(joined, lv, **rule))
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
