"""Publication figures (PNG, SVG, PDF) drawn with matplotlib.

The same kinds of figure as the reference's ``plot_1D.py``, ``plot_2D.py`` and
``plot_trajectory.py`` (Li et al. 2018, tomgoldstein/loss-landscape), with their known faults
fixed: the 3D surface is made with ``add_subplot(projection="3d")`` (``Axes3D(fig)`` draws a blank
figure on current matplotlib), heat maps keep their coordinates, extent and orientation (y grows
upwards), the reference's fixed levels are used only when they fit the data, and missing points
(NaN: unfinished or failed evaluations) are drawn as missing, never as zero.

Conventions: a 2D surface is ``z`` of shape ``(ny, nx)`` with ``z[i, j]`` at ``(x[j], y[i])``; a 1D
curve is ``z`` of shape ``(nx,)``. A grid one point wide in either axis is drawn as a curve.

matplotlib is an optional extra and is imported inside the functions only. Figures are made
with ``matplotlib.figure.Figure`` on an Agg canvas, never through pyplot, so nothing touches a
display or pyplot's global state. Every file is written to a temporary name beside the target
and moved into place with ``os.replace``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError

__all__ = [
    "FORMATS",
    "KINDS",
    "eig_ratio",
    "export_compare",
    "export_curve",
    "export_path",
    "export_surface",
    "surface_levels",
]

KINDS = ("contour", "filled", "heatmap", "surface3d", "ratio")
FORMATS = (".png", ".svg", ".pdf")
# plot_2D.py's defaults: contours every 0.5 from 0.1 up to (not including) 10.
REF_VMIN, REF_VMAX, REF_STEP = 0.1, 10.0, 0.5
MIN_REF_LEVELS = 5  # fewer reference levels than this inside the data's range: they don't fit
N_LEVELS = 15
RATIO_RANGE = (0.0, 0.5)  # plot_2d_eig_ratio's fixed colour scale
RATIO_LABEL = "|min eig / max eig|"
CMAP = "viridis"
_MISSING = "matplotlib is needed for --export; install it with: pip install 'tui-landscape[export]'"
_LINESTYLES = ("-", "--", ":", "-.")
# No dates in SVG/PDF files, so the same data gives the same bytes.
_METADATA: dict[str, dict[str, Any]] = {
    "png": {},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None},
}


# ---------------------------------------------------------------------------------------------
# matplotlib, files and figures


def _mpl() -> Any:
    """The matplotlib package, imported on first use; a ConfigError when it is not installed."""
    try:
        import matplotlib
        import matplotlib.colors
        import matplotlib.figure
        import matplotlib.ticker
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise ConfigError(_MISSING) from None
    return matplotlib


def _target(path: str | os.PathLike[str]) -> tuple[Path, str]:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            f"cannot export to {str(p)!r}: the file name must end in {', '.join(FORMATS)}"
        )
    return p, suffix[1:]


def _figure(size: Sequence[float], dpi: float) -> Any:
    """A figure of ``size`` inches on an Agg canvas (no pyplot, no display)."""
    mpl = _mpl()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    w, h = (float(s) for s in size)
    if not (w > 0 and h > 0 and float(dpi) > 0):
        raise ValueError(f"size and dpi must be positive, got size={tuple(size)} dpi={dpi}")
    fig = mpl.figure.Figure(figsize=(w, h), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path, fmt: str, dpi: float) -> Path:
    """Write ``fig`` to a temporary file beside ``path``, then move it into place."""
    if not path.parent.is_dir():  # a typo in the folder must not create folders silently
        raise ConfigError(f"output folder does not exist: {path.parent}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        # No bbox_inches="tight": the file must be exactly size * dpi pixels.
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


# ---------------------------------------------------------------------------------------------
# data


def _vector(v: Any, name: str) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1D array, got shape {a.shape}")
    return a


def _grid(x: Any, y: Any, z: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xa, ya = _vector(x, "x"), _vector(y, "y")
    za = np.asarray(z, dtype=float)
    if za.shape != (ya.size, xa.size):
        raise ValueError(f"z has shape {za.shape}, expected (ny, nx) = ({ya.size}, {xa.size})")
    return xa, ya, za


def _as_curve(
    x: np.ndarray, y: np.ndarray | None, z: np.ndarray, xlabel: str, ylabel: str
) -> tuple[np.ndarray, np.ndarray, str] | None:
    """``(t, values, axis label)`` when the surface is 1D or one point wide, else None."""
    if z.ndim == 1:
        return x, z, xlabel
    assert y is not None
    if z.shape[0] == 1:
        return x, z[0], xlabel
    if z.shape[1] == 1:
        return y, z[:, 0], ylabel
    return None


def _finite(arrays: Sequence[np.ndarray], log: bool = False) -> np.ndarray:
    v = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays] or [np.empty(0)])
    v = v[np.isfinite(v)]
    if log:
        positive = v[v > 0]
        if v.size and not positive.size:
            raise ConfigError("a log scale needs positive values, but every value is <= 0")
        v = positive
    return v


def eig_ratio(min_eig: Any, max_eig: Any) -> np.ndarray:
    """``|min_eig / max_eig|`` (the reference's curvature ratio), NaN where undefined."""
    lo, hi = np.asarray(min_eig, dtype=float), np.asarray(max_eig, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.abs(lo / hi)
    r[~np.isfinite(r)] = np.nan
    return r


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


def surface_levels(
    values: Any,
    *,
    levels: Sequence[float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
) -> np.ndarray:
    """Contour levels for ``values`` (any shape; NaN ignored).

    Given ``levels`` are used as they are (sorted). Otherwise the reference's levels (0.1 to 10
    every 0.5), clipped to the range, when at least a few of them fall inside it, else
    ``N_LEVELS`` levels evenly spaced between the finite minimum and maximum (or ``vmin`` and
    ``vmax`` when given). ``log=True`` gives log-spaced levels over the positive values.
    """
    if levels is not None:
        lv = np.unique(np.asarray(levels, dtype=float).ravel())
        lv = lv[np.isfinite(lv) & ((lv > 0) if log else True)]
        if lv.size == 0:
            raise ConfigError(
                "no usable contour levels given" + (" for a log scale" if log else "")
            )
        return lv
    lo, hi = _value_range(_finite([np.asarray(values)], log), vmin, vmax, log)
    if log:
        return np.geomspace(lo, hi, N_LEVELS)
    ref = np.round(np.arange(REF_VMIN, REF_VMAX, REF_STEP), 10)
    inside = ref[(ref >= lo) & (ref <= hi)]
    if inside.size >= MIN_REF_LEVELS:
        return inside
    return np.linspace(lo, hi, N_LEVELS)


class _Scale:
    """One colour scale (norm + levels) shared by every panel of a figure."""

    def __init__(
        self,
        arrays: Sequence[np.ndarray],
        kind: str,
        levels: Sequence[float] | None,
        vmin: float | None,
        vmax: float | None,
        log: bool,
    ) -> None:
        mpl = _mpl()
        self.ratio = kind == "ratio"
        self.log = log and not self.ratio
        finite = _finite(arrays, self.log)
        self.empty = finite.size == 0
        if self.ratio:
            lo, hi = RATIO_RANGE
            self.levels = np.linspace(lo, hi, 11)
        else:
            self.levels = surface_levels(finite, levels=levels, vmin=vmin, vmax=vmax, log=self.log)
            lo, hi = float(self.levels[0]), float(self.levels[-1])
            if finite.size:
                # Colours reach down to the lowest point (the basin is what a reader looks at)
                # and up to the data's top, but no higher than the reference's vmax of 10 unless
                # the levels go there: exploded corners are clipped as in plot_2D.py.
                lo = min(lo, float(finite.min()))
                hi = max(hi, min(float(finite.max()), REF_VMAX))
            lo = float(vmin) if vmin is not None else lo
            hi = float(vmax) if vmax is not None else hi
            if hi <= lo:  # one given level, or a constant surface
                lo, hi = _value_range(np.array([lo]), None, None, self.log)
        self.lo, self.hi = lo, hi
        if self.log:
            self.norm = mpl.colors.LogNorm(vmin=lo, vmax=hi)
        else:
            self.norm = mpl.colors.Normalize(vmin=lo, vmax=hi)
        below = finite.size and finite.min() < lo
        above = finite.size and finite.max() > hi
        self.extend = {(0, 0): "neither", (1, 0): "min", (0, 1): "max", (1, 1): "both"}[
            (int(bool(below)), int(bool(above)))
        ]
        self.cmap = mpl.colormaps[CMAP]


def _argmin(z: np.ndarray) -> tuple[int, ...] | None:
    if not np.isfinite(z).any():
        return None
    return tuple(int(i) for i in np.unravel_index(np.nanargmin(z), z.shape))


# ---------------------------------------------------------------------------------------------
# drawing


def _no_data(ax: Any) -> None:
    text = getattr(ax, "text2D", ax.text)  # a 3D axes' text() wants x, y and z
    text(0.5, 0.5, "no finished points", ha="center", va="center", transform=ax.transAxes)


def _line(ax: Any, t: np.ndarray, v: np.ndarray, **style: Any) -> Any:
    """Plot one curve; NaN leaves a gap, and finite points between gaps still show as dots."""
    (line,) = ax.plot(t, v, **style)
    ok = np.isfinite(v)
    if not ok.all():
        prev = np.concatenate([[False], ok[:-1]])
        nxt = np.concatenate([ok[1:], [False]])
        alone = ok & ~prev & ~nxt
        if alone.any():
            ax.plot(t[alone], v[alone], linestyle="none", marker="o", ms=3, color=line.get_color())
    return line


def _set_log(ax: Any, arrays: Sequence[np.ndarray]) -> None:
    _finite(arrays, log=True)  # raises when nothing is positive
    ax.set_yscale("log", nonpositive="mask")


def _xlim(ax: Any, *ts: np.ndarray) -> None:
    t = np.concatenate(ts)
    t = t[np.isfinite(t)]
    if t.size and t.min() < t.max():
        ax.set_xlim(float(t.min()), float(t.max()))


def _curve_panel(
    ax: Any,
    t: np.ndarray,
    v: np.ndarray,
    scale: _Scale,
    *,
    xlabel: str,
    zlabel: str,
    mark_min: bool,
    label: str | None = None,
    color: str | None = None,
) -> Any:
    """A one-point-wide surface drawn as a curve on the same scale as its 2D siblings."""
    if scale.ratio:
        v = np.abs(v)
    line = _line(ax, t, v, color=color or "tab:blue", lw=1.2, label=label, marker=".", ms=4)
    if scale.log:
        ax.set_yscale("log", nonpositive="mask")
    if mark_min and not scale.ratio and (k := _argmin(v)) is not None:
        ax.plot(t[k[0]], v[k[0]], marker="*", ms=11, color="tab:red", linestyle="none", zorder=5)
    if scale.empty:
        _no_data(ax)
    _xlim(ax, t)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(zlabel)
    return line


def _surface_panel(
    ax: Any,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    kind: str,
    scale: _Scale,
    *,
    xlabel: str,
    ylabel: str,
    zlabel: str,
    mark_min: bool,
) -> Any:
    """Draw one 2D surface of ``kind`` on ``ax``; returns the mappable for a colour bar."""
    if kind == "ratio":
        z = np.abs(z)
    zm = np.ma.masked_invalid(z)
    if scale.log:
        zm = np.ma.masked_less_equal(zm, 0)
    common = {"cmap": scale.cmap, "norm": scale.norm}
    mappable: Any
    if scale.empty and kind != "surface3d":
        # contour() of a fully masked array warns; show the empty frame at the right extent.
        mappable = ax.pcolormesh(x, y, zm, shading="nearest", **common)
        _no_data(ax)
    elif kind == "contour":
        mappable = ax.contour(x, y, zm, levels=scale.levels, linewidths=1.0, **common)
        if mappable.levels.size:
            ax.clabel(mappable, inline=True, fontsize=7, fmt="%.3g")
    elif kind == "filled":
        mappable = ax.contourf(x, y, zm, levels=scale.levels, extend=scale.extend, **common)
    elif kind in ("heatmap", "ratio"):
        # Cell centres on the grid coordinates: correct extent, y upwards, uneven steps allowed.
        mappable = ax.pcolormesh(x, y, zm, shading="nearest", **common)
    else:  # surface3d
        mappable = _surface3d(ax, x, y, zm, scale, zlabel)
    if mark_min and kind != "ratio" and (k := _argmin(zm.filled(np.nan))) is not None:
        i, j = k
        if kind == "surface3d":
            zv = np.log10(z[i, j]) if scale.log else z[i, j]
            ax.scatter(
                [x[j]], [y[i]], [zv], marker="*", s=90, color="tab:red", depthshade=False, zorder=10
            )
        else:
            ax.plot(x[j], y[i], marker="*", ms=11, color="tab:red", mec="white", linestyle="none")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return mappable


def _surface3d(ax: Any, x: np.ndarray, y: np.ndarray, zm: Any, scale: _Scale, zlabel: str) -> Any:
    mpl = _mpl()
    X, Y = np.meshgrid(x, y)
    zplot = np.ma.log10(zm) if scale.log else zm  # 3D axes have no working log scale
    ny, nx = zm.shape
    surf = ax.plot_surface(
        X,
        Y,
        zplot,
        cmap=scale.cmap,
        norm=mpl.colors.Normalize(np.log10(scale.lo), np.log10(scale.hi))
        if scale.log
        else scale.norm,
        rcount=min(ny, 120),
        ccount=min(nx, 120),
        linewidth=0,
        antialiased=False,
    )
    if scale.log:
        ax.zaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{10**v:.3g}"))
        # The colour bar must read in the data's units, so it gets a mappable of its own.
        surf = mpl.cm.ScalarMappable(norm=scale.norm, cmap=scale.cmap)
    ax.set_zlabel(zlabel)
    if scale.empty:
        _no_data(ax)
    return surf


def _colorbar(fig: Any, mappable: Any, axes: Any, scale: _Scale, label: str, kind: str) -> None:
    kw: dict[str, Any] = {"ax": axes, "label": label}
    if kind == "surface3d":
        kw.update(shrink=0.6, pad=0.1)
    if kind != "filled":  # contourf carries its own extend
        kw["extend"] = scale.extend
    if scale.log:
        ticker = _mpl().ticker
        kw.update(ticks=ticker.LogLocator(subs=(1.0, 2.0, 5.0)), format="%.3g")
    fig.colorbar(mappable, **kw)


def _default_zlabel(kind: str, zlabel: str | None) -> str:
    if zlabel is not None:
        return zlabel
    return RATIO_LABEL if kind == "ratio" else "loss"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown plot kind {kind!r}; choose one of: {', '.join(KINDS)}")


# ---------------------------------------------------------------------------------------------
# public API


def export_curve(
    path: str | os.PathLike[str],
    x: Any,
    left: Mapping[str, np.ndarray],
    right: Mapping[str, np.ndarray] | None = None,
    *,
    title: str = "",
    xlabel: str = "x",
    left_label: str = "loss",
    right_label: str = "accuracy (%)",
    dpi: float = 150,
    size: Sequence[float] = (6, 4.5),
    log: bool = False,
) -> Path:
    """1D curves: ``left`` series (loss) on the left axis, ``right`` (accuracy) on a twin right
    axis, as the reference's ``plot_1d_loss_err``; blue for the left axis, red for the right,
    one line style per series. NaN points leave gaps. Returns the written path."""
    target, fmt = _target(path)
    xa = _vector(x, "x")
    series_l = {k: _vector(v, k) for k, v in left.items()}
    series_r = {k: _vector(v, k) for k, v in (right or {}).items()}
    if not series_l:
        raise ValueError("export_curve needs at least one left series")
    for k, v in {**series_l, **series_r}.items():
        if v.size != xa.size:
            raise ValueError(f"series {k!r} has {v.size} points but x has {xa.size}")
    fig = _figure(size, dpi)
    mpl = _mpl()
    ax = fig.add_subplot()
    twin = bool(series_r)

    def draw(axis: Any, series: dict[str, np.ndarray], base: str, shades: str) -> list[Any]:
        n = len(series)
        colors = (
            [base] * n if n <= len(_LINESTYLES) else mpl.colormaps[shades](np.linspace(1, 0.45, n))
        )
        return [
            _line(axis, xa, v, color=colors[i], lw=1.2, label=k, ls=_LINESTYLES[i % 4])
            for i, (k, v) in enumerate(series.items())
        ]

    handles = draw(ax, series_l, "tab:blue", "Blues")
    if log:
        _set_log(ax, list(series_l.values()))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(left_label)
    if twin:
        ax.yaxis.label.set_color("tab:blue")
        ax.tick_params("y", colors="tab:blue")
        ax2 = ax.twinx()
        handles += draw(ax2, series_r, "tab:red", "Reds")
        ax2.set_ylabel(right_label, color="tab:red")
        ax2.tick_params("y", colors="tab:red")
        finite = _finite(list(series_r.values()))
        if finite.size and finite.min() >= 0 and finite.max() <= 100:
            ax2.set_ylim(0, 100)  # accuracy in %, as the reference
    if not _finite([*series_l.values(), *series_r.values()]).size:
        _no_data(ax)
    _xlim(ax, xa)
    if len(handles) > 1:
        ax.legend(handles=handles, loc="best", fontsize="small")
    if title:
        ax.set_title(title)
    return _save(fig, target, fmt, dpi)


def export_surface(
    path: str | os.PathLike[str],
    x: Any,
    y: Any,
    z: Any,
    *,
    kind: str = "contour",
    levels: Sequence[float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    title: str = "",
    dpi: float = 150,
    size: Sequence[float] = (6, 4.5),
    mark_min: bool = True,
    xlabel: str = "x",
    ylabel: str = "y",
    zlabel: str | None = None,
) -> Path:
    """One 2D surface as ``kind``: "contour" (labelled iso-lines), "filled" (contourf + colour
    bar), "heatmap" (cells centred on the grid points, colour bar), "surface3d", or "ratio"
    (``|z|`` as a heat map on the reference's fixed 0 to 0.5 scale; see ``eig_ratio``).

    NaN points are masked. A grid one point wide is drawn as a curve. ``mark_min`` stars the
    lowest finite point. Returns the written path."""
    _check_kind(kind)
    target, fmt = _target(path)
    xa, ya, za = _grid(x, y, z)
    label = _default_zlabel(kind, zlabel)
    fig = _figure(size, dpi)
    scale = _Scale([za], kind, levels, vmin, vmax, log)
    curve = _as_curve(xa, ya, za, xlabel, ylabel)
    if curve is not None:
        ax = fig.add_subplot()
        t, v, tl = curve
        _curve_panel(ax, t, v, scale, xlabel=tl, zlabel=label, mark_min=mark_min)
    else:
        ax = fig.add_subplot(projection="3d") if kind == "surface3d" else fig.add_subplot()
        m = _surface_panel(
            ax,
            xa,
            ya,
            za,
            kind,
            scale,
            xlabel=xlabel,
            ylabel=ylabel,
            zlabel=label,
            mark_min=mark_min,
        )
        if kind != "contour":  # the reference's contour plot has labels on its lines instead
            _colorbar(fig, m, ax, scale, label, kind)
    if title:
        ax.set_title(title)
    return _save(fig, target, fmt, dpi)


def export_path(
    path: str | os.PathLike[str],
    x: Any,
    y: Any,
    z: Any,
    px: Any,
    py: Any,
    *,
    explained: tuple[float, float],
    levels: Sequence[float] | None = None,
    title: str = "",
    dpi: float = 150,
    size: Sequence[float] = (6, 4.5),
) -> Path:
    """An optimisation path ``(px, py)`` in PCA coordinates over the surface's contours, as the
    reference's ``plot_contour_trajectory``. ``explained`` holds the two explained-variance
    ratios (0..1) shown on the axes as "1st PC: 61.23 %" (NaN: not known, no percentage). Start
    and end are marked."""
    target, fmt = _target(path)
    xa, ya, za = _grid(x, y, z)
    pxa, pya = _vector(px, "px"), _vector(py, "py")
    if pxa.size != pya.size:
        raise ValueError(f"px has {pxa.size} points but py has {pya.size}")
    ex = np.asarray(explained, dtype=float).ravel()
    known = np.isfinite(ex)
    if ex.size != 2 or np.any(ex[known] < 0) or np.any(ex[known] > 1):
        raise ValueError(f"explained must be two ratios in 0..1, got {explained!r}")
    fig = _figure(size, dpi)
    ax = fig.add_subplot()
    scale = _Scale([za], "contour", levels, None, None, False)
    if _as_curve(xa, ya, za, "", "") is None and not scale.empty:
        cs = ax.contour(
            xa,
            ya,
            np.ma.masked_invalid(za),
            levels=scale.levels,
            cmap=scale.cmap,
            norm=scale.norm,
            linewidths=0.8,
        )
        if cs.levels.size:
            ax.clabel(cs, inline=True, fontsize=6, fmt="%.3g")
    ax.plot(pxa, pya, color="tab:red", marker=".", ms=5, lw=1.0, label="path", zorder=4)
    ok = np.flatnonzero(np.isfinite(pxa) & np.isfinite(pya))
    if ok.size:
        s, e = ok[0], ok[-1]
        ax.plot(pxa[s], pya[s], "o", ms=8, color="tab:green", mec="black", label="start", zorder=5)
        ax.plot(pxa[e], pya[e], "*", ms=13, color="gold", mec="black", label="end", zorder=5)
    # NaN (explained variance not recorded) leaves the percentage off.
    ax.set_xlabel(f"1st PC: {ex[0] * 100:.2f} %" if known[0] else "1st PC")
    ax.set_ylabel(f"2nd PC: {ex[1] * 100:.2f} %" if known[1] else "2nd PC")
    ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title)
    return _save(fig, target, fmt, dpi)


def export_compare(
    path: str | os.PathLike[str],
    surfaces: Sequence[tuple[str, Any, Any, Any]],
    *,
    kind: str = "contour",
    levels: Sequence[float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    dpi: float = 150,
    size: Sequence[float] | None = None,
    title: str = "",
    xlabel: str = "x",
    ylabel: str = "y",
    zlabel: str | None = None,
) -> Path:
    """Surfaces ``(label, x, y, z)`` side by side in one row, on ONE colour scale and one set of
    levels (from all their finite values unless given), each titled with its label. 1D
    surfaces (``z`` of shape ``(nx,)``, ``y`` ignored, or grids one point wide) are overlaid as
    curves on one axes instead; ``vmin``/``vmax`` then limit the y axis."""
    _check_kind(kind)
    target, fmt = _target(path)
    if not surfaces:
        raise ValueError("export_compare needs at least one surface")
    label = _default_zlabel(kind, zlabel)
    grids: list[tuple[str, np.ndarray, np.ndarray | None, np.ndarray]] = []
    curves: list[tuple[str, np.ndarray, np.ndarray, str]] = []
    for name, x, y, z in surfaces:
        za = np.asarray(z, dtype=float)
        if za.ndim == 1:
            xa = _vector(x, "x")
            if za.size != xa.size:
                raise ValueError(f"{name!r}: z has {za.size} points but x has {xa.size}")
            ya = None
        else:
            xa, ya, za = _grid(x, y, za)
        grids.append((str(name), xa, ya, za))
        c = _as_curve(xa, ya, za, xlabel, ylabel)
        if c is not None:
            curves.append((str(name), *c))
    if curves and len(curves) != len(grids):
        raise ConfigError("cannot compare 1D curves with 2D surfaces in one figure")
    scale = _Scale([g[3] for g in grids], kind, levels, vmin, vmax, log)

    if curves:
        fig = _figure(size or (6, 4.5), dpi)
        ax = fig.add_subplot()
        for i, (name, t, v, _) in enumerate(curves):
            _curve_panel(
                ax,
                t,
                v,
                scale,
                xlabel=curves[0][3],
                zlabel=label,
                mark_min=False,
                label=name,
                color=f"C{i % 10}",
            )
        _xlim(ax, *(c[1] for c in curves))
        if scale.ratio:
            ax.set_ylim(bottom=0)
        if vmin is not None or vmax is not None:
            ax.set_ylim(vmin, vmax)
        ax.legend(loc="best", fontsize="small")
        if title:
            ax.set_title(title)
        return _save(fig, target, fmt, dpi)

    n = len(grids)
    fig = _figure(size or (3.6 * n + 1.2, 3.8), dpi)
    kw = {"projection": "3d"} if kind == "surface3d" else {}
    axes = [fig.add_subplot(1, n, i + 1, **kw) for i in range(n)]
    mappable = None
    for ax, (name, xa, ya, za) in zip(axes, grids, strict=True):
        assert ya is not None
        mappable = _surface_panel(
            ax,
            xa,
            ya,
            za,
            kind,
            scale,
            xlabel=xlabel,
            ylabel=ylabel,
            zlabel=label,
            mark_min=True,
        )
        ax.set_title(name)
    if kind == "surface3d":  # one z range too, so the heights compare
        lims = [ax.get_zlim() for ax in axes]
        for ax in axes:
            ax.set_zlim(min(lo for lo, _ in lims), max(hi for _, hi in lims))
    _colorbar(fig, mappable, axes, scale, label, kind)
    if title:
        fig.suptitle(title)
    return _save(fig, target, fmt, dpi)
