"""Publication figures (PNG, SVG, PDF) drawn with matplotlib.

The same kinds of figure as the reference's ``plot_1D.py``, ``plot_2D.py`` and
``plot_trajectory.py`` (Li et al. 2018, tomgoldstein/loss-landscape), with their known faults
fixed: the 3D surface is made with ``add_subplot(projection="3d")`` (``Axes3D(fig)`` draws a blank
figure on current matplotlib), heat maps keep their coordinates, extent and orientation (y grows
upwards), and missing points (NaN: unfinished or failed evaluations) are drawn as missing, never
as zero. Kinds, contour levels and colour limits are decided in ``plots.spec`` (the same
choices as the terminal's); ``export_spec`` draws a resolved ``PlotSpec`` and decides nothing.

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

from engine.errors import ConfigError, LandscapeError
from tui_landscape.plots.spec import (
    SURFACE_KINDS,
    PlotSpec,
    check_kind,
    finite_values,
    grid_spec,
    levels_for,
    limits_for,
    tick_format,
)

__all__ = [
    "FORMATS",
    "export_compare",
    "export_curve",
    "export_path",
    "export_spec",
    "export_specs",
    "export_surface",
]

FORMATS = (".png", ".svg", ".pdf")
CMAP = "viridis"
_MISSING = "matplotlib is needed for --export; install it with: pip install 'tui-landscape[export]'"
_LINESTYLES = ("-", "--", ":", "-.")
_EXTEND = ("neither", "min", "max", "both")  # indexed by below + 2 * above
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
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):  # the user's path in the message, not the temporary one
            raise LandscapeError(f"cannot write {path}: {e.strerror or e}") from None
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


class _Scale:
    """A spec's levels and colour limits as matplotlib objects, shared by a figure's panels."""

    def __init__(self, spec: PlotSpec, arrays: Sequence[np.ndarray]) -> None:
        mpl = _mpl()
        self.ratio, self.log = spec.ratio, spec.log
        finite = finite_values(arrays, self.log)
        self.empty = finite.size == 0
        self.levels = np.asarray(spec.levels, dtype=float)
        assert spec.vmin is not None and spec.vmax is not None  # a map spec always has limits
        self.lo, self.hi = float(spec.vmin), float(spec.vmax)
        norm = mpl.colors.LogNorm if self.log else mpl.colors.Normalize
        self.norm = norm(vmin=self.lo, vmax=self.hi)
        # The colour bar shows an arrow where data lies beyond the limits.
        below = bool(finite.size and finite.min() < self.lo)
        above = bool(finite.size and finite.max() > self.hi)
        self.extend = _EXTEND[int(below) + 2 * int(above)]
        # Filled bands end at the first and last level, and the colour limits reach the data's
        # minimum: without an open band below the first level the basin was left white.
        below = bool(finite.size and self.levels.size and finite.min() < self.levels[0])
        above = bool(finite.size and self.levels.size and finite.max() > self.levels[-1])
        self.fill_extend = _EXTEND[int(below) + 2 * int(above)]
        self.cmap = mpl.colormaps[CMAP]


def _argbest(z: np.ndarray, best: str = "min") -> tuple[int, ...] | None:
    """Where ``z`` has its best point (``best``: "min", or "max" for an accuracy)."""
    if not np.isfinite(z).any():
        return None
    arg = np.nanargmax if best == "max" else np.nanargmin
    return tuple(int(i) for i in np.unravel_index(arg(z), z.shape))


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
    finite_values(arrays, log=True)  # raises when nothing is positive
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
    best: str = "min",
    label: str | None = None,
    color: str | None = None,
) -> Any:
    """A one-point-wide surface drawn as a curve on the same scale as its 2D siblings."""
    line = _line(ax, t, v, color=color or "tab:blue", lw=1.2, label=label, marker=".", ms=4)
    if scale.log:
        ax.set_yscale("log", nonpositive="mask")
    if mark_min and (k := _argbest(v, best)) is not None:
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
    best: str = "min",
) -> Any:
    """Draw one 2D surface of ``kind`` on ``ax``; returns the mappable for a colour bar."""
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
        mappable = ax.contourf(x, y, zm, levels=scale.levels, extend=scale.fill_extend, **common)
    elif kind == "heatmap":
        # Cell centres on the grid coordinates: correct extent, y upwards, uneven steps allowed.
        mappable = ax.pcolormesh(x, y, zm, shading="nearest", **common)
    else:  # surface3d
        mappable = _surface3d(ax, x, y, zm, scale, zlabel)
    if mark_min and (k := _argbest(zm.filled(np.nan), best)) is not None:
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
    ticker = _mpl().ticker
    if scale.log:
        kw.update(ticks=ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    bar = fig.colorbar(mappable, **kw)
    if scale.log or hasattr(mappable, "levels"):
        # Ticks at contour levels (or log ticks) get matplotlib's fixed-decimal labels
        # ("0.0000" for every level below 5e-5): enough significant digits to tell them apart.
        bar.formatter = ticker.FormatStrFormatter(tick_format(bar.get_ticks()))


def _path(ax: Any, px: np.ndarray, py: np.ndarray) -> None:
    """A training path over a map, start and end marked, as plot_contour_trajectory."""
    ax.plot(px, py, color="tab:red", marker=".", ms=5, lw=1.0, label="path", zorder=4)
    ok = np.flatnonzero(np.isfinite(px) & np.isfinite(py))
    if ok.size:
        s, e = ok[0], ok[-1]
        ax.plot(px[s], py[s], "o", ms=8, color="tab:green", mec="black", label="start", zorder=5)
        ax.plot(px[e], py[e], "*", ms=13, color="gold", mec="black", label="end", zorder=5)
    ax.legend(loc="best", fontsize="small")


# ---------------------------------------------------------------------------------------------
# public API: specs


def export_spec(
    path: str | os.PathLike[str],
    spec: PlotSpec,
    *,
    dpi: float = 150,
    size: Sequence[float] = (6, 4.5),
) -> Path:
    """Draw one resolved ``spec`` (``plots.spec``) into ``path`` (.png, .svg or .pdf).

    A map one point wide is drawn as a curve (under a training path: the path alone).
    Returns the written path."""
    target, fmt = _target(path)
    if spec.kind == "curve":
        return _curve_figure(target, fmt, spec, dpi, size)
    assert spec.z is not None
    fig = _figure(size, dpi)
    scale = _Scale(spec, [spec.z])
    curve = _as_curve(spec.x, spec.y, spec.z, spec.xlabel, spec.ylabel)
    if curve is not None:
        ax = fig.add_subplot()
        if spec.path is None:
            t, v, tl = curve
            _curve_panel(
                ax, t, v, scale, xlabel=tl, zlabel=spec.zlabel, mark_min=spec.mark_min,
                best=spec.best,
            )  # fmt: skip
        else:
            ax.set_xlabel(spec.xlabel)
            ax.set_ylabel(spec.ylabel)
    else:
        assert spec.y is not None
        ax = fig.add_subplot(projection="3d") if spec.kind == "surface3d" else fig.add_subplot()
        m = _spec_panel(ax, spec, spec.kind, scale)
        # The reference's contour plot has labels on its lines instead of a colour bar.
        if spec.kind != "contour" and spec.path is None:
            _colorbar(fig, m, ax, scale, spec.zlabel, spec.kind)
    if spec.path is not None:
        _path(ax, *(np.asarray(p, dtype=float).ravel() for p in spec.path))
    if spec.title:
        ax.set_title(spec.title)
    return _save(fig, target, fmt, dpi)


def _spec_panel(ax: Any, spec: PlotSpec, kind: str, scale: _Scale) -> Any:
    """A map spec drawn on ``ax`` at ``scale`` (one figure's, or the shared one of several)."""
    return _surface_panel(
        ax, spec.x, spec.y, spec.z, kind, scale,
        xlabel=spec.xlabel, ylabel=spec.ylabel, zlabel=spec.zlabel,
        mark_min=spec.mark_min, best=spec.best,
    )  # fmt: skip


def export_specs(
    path: str | os.PathLike[str],
    specs: Sequence[PlotSpec],
    *,
    dpi: float = 150,
    size: Sequence[float] | None = None,
    title: str = "",
) -> Path:
    """Several map specs side by side in one row on the first one's scale (``resolve_compare``
    gives them one), each titled with its own title; one curve spec as ``export_spec``."""
    if not specs:
        raise ValueError("export_specs needs at least one spec")
    if specs[0].kind == "curve":
        if len(specs) > 1:
            raise ConfigError("curves of several 2D files go in one figure each: use `plot`")
        return export_spec(path, specs[0], dpi=dpi, size=size or (6, 4.5))
    target, fmt = _target(path)
    zs = [s.z for s in specs if s.z is not None]
    scale = _Scale(specs[0], zs)
    kind, n = specs[0].kind, len(specs)
    fig = _figure(size or (3.6 * n + 1.2, 3.8), dpi)
    kw = {"projection": "3d"} if kind == "surface3d" else {}
    axes = [fig.add_subplot(1, n, i + 1, **kw) for i in range(n)]
    mappable = None
    for ax, spec in zip(axes, specs, strict=True):
        assert spec.y is not None and spec.z is not None
        mappable = _spec_panel(ax, spec, kind, scale)
        ax.set_title(spec.title)
    if kind == "surface3d":  # one z range too, so the heights compare
        lims = [ax.get_zlim() for ax in axes]
        for ax in axes:
            ax.set_zlim(min(lo for lo, _ in lims), max(hi for _, hi in lims))
    _colorbar(fig, mappable, axes, scale, specs[0].zlabel, kind)
    if title:
        fig.suptitle(title)
    return _save(fig, target, fmt, dpi)


def _curve_figure(
    target: Path, fmt: str, spec: PlotSpec, dpi: float, size: Sequence[float]
) -> Path:
    """Curves: ``series`` (loss) on the left axis, ``right`` (accuracy) on a twin right axis,
    as the reference's ``plot_1d_loss_err``; blue for the left axis, red for the right, one
    line style per series. NaN points leave gaps."""
    xa = spec.x
    series_l, series_r = dict(spec.series), dict(spec.right)
    fig = _figure(size, dpi)
    mpl = _mpl()
    ax = fig.add_subplot()

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
    if spec.log:
        _set_log(ax, list(series_l.values()))
    ax.set_xlabel(spec.xlabel)
    ax.set_ylabel(spec.left_label)
    if series_r:
        ax.yaxis.label.set_color("tab:blue")
        ax.tick_params("y", colors="tab:blue")
        ax2 = ax.twinx()
        handles += draw(ax2, series_r, "tab:red", "Reds")
        ax2.set_ylabel(spec.right_label, color="tab:red")
        ax2.tick_params("y", colors="tab:red")
        finite = finite_values(list(series_r.values()))
        if finite.size and finite.min() >= 0 and finite.max() <= 100:
            ax2.set_ylim(0, 100)  # accuracy in %, as the reference
    if not finite_values([*series_l.values(), *series_r.values()]).size:
        _no_data(ax)
    _xlim(ax, xa)
    if len(handles) > 1:
        ax.legend(handles=handles, loc="best", fontsize="small")
    if spec.title:
        ax.set_title(spec.title)
    return _save(fig, target, fmt, dpi)


# ---------------------------------------------------------------------------------------------
# public API: arrays (resolved through plots.spec, then drawn as above)


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
    axis, as the reference's ``plot_1d_loss_err``. Returns the written path."""
    target, fmt = _target(path)
    xa = _vector(x, "x")
    series_l = {k: _vector(v, k) for k, v in left.items()}
    series_r = {k: _vector(v, k) for k, v in (right or {}).items()}
    if not series_l:
        raise ValueError("export_curve needs at least one left series")
    for k, v in {**series_l, **series_r}.items():
        if v.size != xa.size:
            raise ValueError(f"series {k!r} has {v.size} points but x has {xa.size}")
    spec = PlotSpec(
        "curve",
        xa,
        series=series_l,
        right=series_r,
        log=log,
        title=title,
        xlabel=xlabel,
        left_label=left_label,
        right_label=right_label,
    )
    return _curve_figure(target, fmt, spec, dpi, size)


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
    (``|z|`` as a heat map on the reference's fixed 0 to 0.5 scale; see
    ``engine.sharpness.eigen_ratio``). Levels and limits: ``plots.spec.levels_for`` and
    ``limits_for``.

    NaN points are masked. A grid one point wide is drawn as a curve. ``mark_min`` stars the
    lowest finite point. Returns the written path."""
    check_kind(kind, SURFACE_KINDS)
    _target(path)
    xa, ya, za = _grid(x, y, z)
    spec = grid_spec(
        xa,
        ya,
        za,
        kind=kind,
        levels=levels,
        vmin=vmin,
        vmax=vmax,
        log=log,
        title=title,
        xlabel=xlabel,
        ylabel=ylabel,
        zlabel=zlabel,
        mark_min=mark_min,
    )
    return export_spec(path, spec, dpi=dpi, size=size)


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
    _target(path)
    xa, ya, za = _grid(x, y, z)
    pxa, pya = _vector(px, "px"), _vector(py, "py")
    if pxa.size != pya.size:
        raise ValueError(f"px has {pxa.size} points but py has {pya.size}")
    ex = np.asarray(explained, dtype=float).ravel()
    known = np.isfinite(ex)
    if ex.size != 2 or np.any(ex[known] < 0) or np.any(ex[known] > 1):
        raise ValueError(f"explained must be two ratios in 0..1, got {explained!r}")
    # NaN (explained variance not recorded) leaves the percentage off.
    spec = grid_spec(
        xa,
        ya,
        za,
        kind="contour",
        levels=levels,
        title=title,
        mark_min=False,
        xlabel=f"1st PC: {ex[0] * 100:.2f} %" if known[0] else "1st PC",
        ylabel=f"2nd PC: {ex[1] * 100:.2f} %" if known[1] else "2nd PC",
        path=(pxa, pya),
    )
    return export_spec(path, spec, dpi=dpi, size=size)


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
    check_kind(kind, SURFACE_KINDS)
    target, fmt = _target(path)
    if not surfaces:
        raise ValueError("export_compare needs at least one surface")
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
    ratio = kind == "ratio"
    joined = np.concatenate([np.abs(g[3]).ravel() if ratio else g[3].ravel() for g in grids])
    lv = levels_for(joined, levels, vmin=vmin, vmax=vmax, log=log, ratio=ratio)
    shared = (lv, limits_for(joined, lv, vmin=vmin, vmax=vmax, log=log, ratio=ratio))
    specs = [
        grid_spec(
            x,
            y,
            z,
            kind=kind,
            log=log,
            title=name,
            xlabel=xlabel,
            ylabel=ylabel,
            zlabel=zlabel,
            scale=shared,
        )
        for name, x, y, z in grids
    ]
    if not curves:
        return export_specs(target, specs, dpi=dpi, size=size, title=title)

    fig = _figure(size or (6, 4.5), dpi)
    ax = fig.add_subplot()
    scale = _Scale(specs[0], [g[3] for g in grids])
    for i, ((name, t, v, _), spec) in enumerate(zip(curves, specs, strict=True)):
        v = np.abs(v) if spec.ratio else v
        _curve_panel(
            ax,
            t,
            v,
            scale,
            xlabel=curves[0][3],
            zlabel=spec.zlabel,
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
