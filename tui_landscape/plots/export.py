"""Publication figures (PNG, SVG, PDF) drawn with matplotlib.

The same kinds of figure as the reference's ``plot_1D.py``, ``plot_2D.py`` and
``plot_trajectory.py`` (Li et al. 2018, tomgoldstein/loss-landscape), with their known faults
fixed: the 3D surface is made with ``add_subplot(projection="3d")`` (``Axes3D(fig)`` draws a blank
figure on current matplotlib), heat maps keep their coordinates, extent and orientation (y grows
upwards), and missing points (NaN: unfinished or failed evaluations) are drawn as missing, never
as zero. Kinds, contour levels and colour limits are decided in ``plots.spec`` (the same
choices as the terminal's); ``export_spec`` draws a resolved ``PlotSpec`` and decides nothing,
each kind by the renderer it registered in ``FIGURES`` (``plots.kinds``), every map with the
same overlays as the terminal's (``_overlays``: path, cursor, best point).

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError, LandscapeError
from tui_landscape.plots.kinds import renderer, renders
from tui_landscape.plots.spec import (
    PlotSpec,
    best_point,
    finite_values,
    level_knots,
    tick_format,
)

__all__ = [
    "FIGURES",
    "FORMATS",
    "export_spec",
    "export_specs",
    "spec_figure",
    "specs_figure",
]

FORMATS = (".png", ".svg", ".pdf")
CMAP = "viridis"
CMAP_DIVERGING = "RdBu_r"  # a difference (PlotSpec.signs): blue below 0, white at 0, red above
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


def _level_norm(mpl: Any, levels: np.ndarray, lo: float, hi: float) -> Any:
    """A norm that puts each level an equal colour step above the one below
    (``spec.level_knots``), linear in between; the colour bar's axis follows it."""
    knots, frac = level_knots(levels, lo, hi)

    def forward(v: Any) -> Any:
        return np.interp(np.asarray(v, dtype=float), knots, frac)

    def inverse(f: Any) -> Any:
        return np.interp(np.asarray(f, dtype=float), frac, knots)

    return mpl.colors.FuncNorm((forward, inverse), vmin=lo, vmax=hi)


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
        self.by_level = spec.level_colors
        if spec.level_colors:  # an exploding rim: colours step evenly from level to level
            self.norm = _level_norm(mpl, self.levels, self.lo, self.hi)
        else:
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
        if spec.signs is not None:  # missing points grey: white is where the files agree
            self.cmap = mpl.colormaps[CMAP_DIVERGING].with_extremes(bad="0.6")


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


def _curve_panel(ax: Any, spec: PlotSpec, scale: _Scale) -> None:
    """A map one point wide drawn as a curve on the same scale as its 2D siblings, its best
    point starred (the training path, if any, is drawn alone: ``_overlays``)."""
    assert spec.z is not None
    curve = _as_curve(spec.x, spec.y, spec.z, spec.xlabel, spec.ylabel)
    assert curve is not None
    t, v, tl = curve
    if spec.path is not None:
        ax.set_xlabel(spec.xlabel)
        ax.set_ylabel(spec.ylabel)
        return
    _line(ax, t, v, color="tab:blue", lw=1.2, marker=".", ms=4)
    if scale.log:
        ax.set_yscale("log", nonpositive="mask")
    if (best := best_point(spec)) is not None:
        k = best[1] if t is spec.x else best[0]
        ax.plot(t[k], v[k], marker="*", ms=11, color="tab:red", linestyle="none", zorder=5)
    if scale.empty:
        _no_data(ax)
    _xlim(ax, t)
    ax.set_xlabel(tl)
    ax.set_ylabel(spec.zlabel)


# The figure renderers, one per drawn kind (plots.kinds): (ax, spec, scale) -> the mappable a
# colour bar is drawn for (None: none). A map's values come masked where missing.
FIGURES: dict[str, Callable[..., Any]] = {}


def _masked(spec: PlotSpec, scale: _Scale) -> Any:
    zm = np.ma.masked_invalid(spec.z)
    return np.ma.masked_less_equal(zm, 0) if scale.log else zm


@renders(FIGURES, "contour")
def _contour(ax: Any, spec: PlotSpec, scale: _Scale) -> Any:
    m = ax.contour(spec.x, spec.y, _masked(spec, scale), levels=scale.levels, linewidths=1.0,
                   cmap=scale.cmap, norm=scale.norm)  # fmt: skip
    if m.levels.size:
        ax.clabel(m, inline=True, fontsize=7, fmt="%.3g")
    return m


@renders(FIGURES, "filled")
def _filled(ax: Any, spec: PlotSpec, scale: _Scale) -> Any:
    return ax.contourf(spec.x, spec.y, _masked(spec, scale), levels=scale.levels,
                       extend=scale.fill_extend, cmap=scale.cmap, norm=scale.norm)  # fmt: skip


@renders(FIGURES, "heatmap")
def _heatmap(ax: Any, spec: PlotSpec, scale: _Scale) -> Any:
    # Cell centres on the grid coordinates: correct extent, y upwards, uneven steps allowed.
    return ax.pcolormesh(spec.x, spec.y, _masked(spec, scale), shading="nearest",
                         cmap=scale.cmap, norm=scale.norm)  # fmt: skip


@renders(FIGURES, "surface3d")
def _surface3d(ax: Any, spec: PlotSpec, scale: _Scale) -> Any:
    mpl = _mpl()
    zm = _masked(spec, scale)
    X, Y = np.meshgrid(spec.x, spec.y)
    zplot = np.ma.log10(zm) if scale.log else zm  # 3D axes have no working log scale
    ny, nx = zm.shape
    norm = mpl.colors.Normalize(np.log10(scale.lo), np.log10(scale.hi)) if scale.log else scale.norm
    surf = ax.plot_surface(X, Y, zplot, cmap=scale.cmap, norm=norm, rcount=min(ny, 120),
                           ccount=min(nx, 120), linewidth=0, antialiased=False)  # fmt: skip
    if scale.log:
        ax.zaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{10**v:.3g}"))
        # The colour bar must read in the data's units, so it gets a mappable of its own.
        surf = mpl.cm.ScalarMappable(norm=scale.norm, cmap=scale.cmap)
    ax.set_zlabel(spec.zlabel)
    return surf


def _map_panel(ax: Any, spec: PlotSpec, scale: _Scale) -> Any:
    """A map spec drawn on ``ax`` at ``scale`` (one figure's, or the shared one of several),
    with its overlays; returns the mappable for a colour bar (None for a one-wide map)."""
    if _as_curve(spec.x, spec.y, spec.z, spec.xlabel, spec.ylabel) is not None:
        _curve_panel(ax, spec, scale)
        _overlays(ax, spec, scale)
        return None
    draw = renderer(FIGURES, spec.kind)
    if spec.signs is not None and spec.kind == "filled":
        ax.set_facecolor("0.6")  # unfilled (missing) is grey, as the heat map's: white is 0
    if scale.empty and spec.kind != "surface3d":
        # contour() of a fully masked array warns; show the empty frame at the right extent.
        mappable = _heatmap(ax, spec, scale)
    else:
        mappable = draw(ax, spec, scale)
    if scale.empty:
        _no_data(ax)
    _overlays(ax, spec, scale)
    ax.set_xlabel(spec.xlabel)
    ax.set_ylabel(spec.ylabel)
    return mappable


def _overlays(ax: Any, spec: PlotSpec, scale: _Scale) -> None:
    """What every map shows over its values, as the terminal's: the training path (start and
    end marked, as plot_contour_trajectory), the points that did not converge ('?'), the
    cursor, and the best point on top. A 3D
    surface has them on its floor, but its best point on the surface."""
    three_d = getattr(ax, "name", "") == "3d"
    floor = {"zs": ax.get_zlim()[0]} if three_d else {}
    if spec.path is not None:
        px, py = (np.asarray(p, dtype=float).ravel() for p in spec.path)
        ax.plot(px, py, color="tab:red", marker=".", ms=5, lw=1.0, label="path", zorder=4,
                **floor)  # fmt: skip
        ok = np.flatnonzero(np.isfinite(px) & np.isfinite(py))
        if ok.size:
            s, e = ok[0], ok[-1]
            ax.plot(px[s : s + 1], py[s : s + 1], "o", ms=8, color="tab:green", mec="black",
                    label="start", zorder=5, **floor)  # fmt: skip
            ax.plot(px[e : e + 1], py[e : e + 1], "*", ms=13, color="gold", mec="black",
                    label="end", zorder=5, **floor)  # fmt: skip
        ax.legend(loc="best", fontsize="small")
    if spec.flagged is not None:  # a Hessian map's points that did not converge
        fx, fy = (np.asarray(p, dtype=float).ravel() for p in spec.flagged)
        ax.plot(fx, fy, marker="$?$", ms=9, color="tab:orange", linestyle="none",
                label="not converged", zorder=6, **floor)  # fmt: skip
        ax.legend(loc="best", fontsize="small")
    if spec.cursor is not None:
        cx, cy = spec.cursor
        ax.plot([cx], [cy], marker="+", ms=12, mew=2, color="tab:red", linestyle="none",
                zorder=6, **floor)  # fmt: skip
    best = best_point(spec)
    if best is None or _as_curve(spec.x, spec.y, spec.z, "", "") is not None:
        return  # a one-wide map stars its best point on its curve
    i, j = best
    assert spec.z is not None and spec.y is not None
    if three_d:
        zv = np.log10(spec.z[i, j]) if scale.log else spec.z[i, j]
        ax.scatter([spec.x[j]], [spec.y[i]], [zv], marker="*", s=90, color="tab:red",
                   depthshade=False, zorder=10)  # fmt: skip
    else:
        ax.plot(spec.x[j], spec.y[i], marker="*", ms=11, color="tab:red", mec="white",
                linestyle="none", zorder=7)  # fmt: skip


def _colorbar(fig: Any, mappable: Any, axes: Any, scale: _Scale, label: str, kind: str) -> None:
    kw: dict[str, Any] = {"ax": axes, "label": label}
    if kind == "surface3d":
        kw.update(shrink=0.6, pad=0.1)
    if kind != "filled":  # contourf carries its own extend
        kw["extend"] = scale.extend
    ticker = _mpl().ticker
    if scale.log:
        kw.update(ticks=ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    elif scale.by_level:  # evenly spaced on the bar: every other level is a tick
        kw.update(ticks=scale.levels[::2])
    bar = fig.colorbar(mappable, **kw)
    if scale.log or scale.by_level or hasattr(mappable, "levels"):
        # Ticks at contour levels (or log ticks) get matplotlib's fixed-decimal labels
        # ("0.0000" for every level below 5e-5): enough significant digits to tell them apart.
        bar.formatter = ticker.FormatStrFormatter(tick_format(bar.get_ticks()))


def _bar_label(spec: PlotSpec) -> str:
    """The colour bar's label; a difference's names what each sign means."""
    if spec.signs is None:
        return spec.zlabel
    return f"{spec.zlabel}\n< 0: {spec.signs[0]}; > 0: {spec.signs[1]}"


@renders(FIGURES, "curve")
def _curves(ax: Any, spec: PlotSpec, scale: _Scale | None = None) -> None:
    """Curves: ``series`` (loss) on the left axis, ``right`` (accuracy) on a twin right axis,
    as the reference's ``plot_1d_loss_err``; blue for the left axis, red for the right, one
    line style per series. NaN points leave gaps."""
    mpl = _mpl()
    series_l, series_r = dict(spec.series), dict(spec.right)

    def draw(axis: Any, series: dict[str, np.ndarray], base: str, shades: str) -> list[Any]:
        n = len(series)
        colors = (
            [base] * n if n <= len(_LINESTYLES) else mpl.colormaps[shades](np.linspace(1, 0.45, n))
        )
        return [
            _line(axis, spec.x, v, color=colors[i], lw=1.2, label=k, ls=_LINESTYLES[i % 4])
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
    _xlim(ax, spec.x)
    if spec.signs is not None:  # a difference: where the files agree, and which side is which
        ax.axhline(0.0, color="0.5", lw=0.8, zorder=0)
        ax.set_ylabel(f"{spec.left_label}\n< 0: {spec.signs[0]}; > 0: {spec.signs[1]}")
    if len(handles) > 1:
        ax.legend(handles=handles, loc="best", fontsize="small")


@renders(FIGURES, "density")
def _density(ax: Any, spec: PlotSpec, scale: _Scale | None = None) -> None:
    """The eigenvalue density as stored (on a log scale from the spec's ``vmin`` up), the
    ``marks`` (top-k eigenvalues) as dashed lines, the ``notes`` as the legend."""
    lines = _mpl().lines
    t = np.asarray(spec.x, dtype=float)
    rho = np.asarray(next(iter(spec.series.values())), dtype=float)
    handles = [ax.plot(t, rho, color="tab:blue", lw=1.2, label=spec.left_label)[0]]
    notes = list(spec.notes)
    for k, m in enumerate(np.asarray(spec.marks, dtype=float)):
        line = ax.axvline(m, color="tab:red", ls="--", lw=0.8)
        if k == 0 and notes:
            line.set_label(notes.pop(0))  # the first note names the marked eigenvalues
            handles.append(line)
    # The other notes (trace, params) as legend lines without a symbol.
    handles += [lines.Line2D([], [], ls="none", label=n) for n in notes]
    if spec.log:
        ax.set_yscale("log")
        if spec.vmin is not None:
            ax.set_ylim(bottom=spec.vmin)
    _xlim(ax, t, np.asarray(spec.marks, dtype=float))
    ax.set_xlabel(spec.xlabel)
    ax.set_ylabel(spec.left_label)
    ax.legend(handles=handles, loc="best", fontsize="x-small")


def _wrapped(title: str, width: int) -> str:
    """A long title on several lines, broken between its ' | ' parts: matplotlib cuts a title
    wider than its figure (a Hessian map's notes) off at both ends."""
    lines: list[str] = []
    for part in title.split(" | "):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " | " + part
        else:
            lines.append(part)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# public API


def spec_figure(spec: PlotSpec, *, dpi: float = 150, size: Sequence[float] = (6, 4.5)) -> Any:
    """One resolved ``spec`` (``plots.spec``) drawn as a matplotlib ``Figure`` (not saved).
    A map one point wide is drawn as a curve (under a training path: the path alone)."""
    fig = _figure(size, dpi)
    if spec.z is None:  # a curve, or the eigenvalue density
        ax = fig.add_subplot()
        renderer(FIGURES, spec.kind)(ax, spec)
    else:
        assert spec.z is not None
        scale = _Scale(spec, [spec.z])
        flat = _as_curve(spec.x, spec.y, spec.z, "", "") is not None
        ax = fig.add_subplot(projection="3d" if spec.kind == "surface3d" and not flat else None)
        m = _map_panel(ax, spec, scale)
        # The reference's contour plot has labels on its lines instead of a colour bar.
        if m is not None and spec.kind != "contour" and spec.path is None:
            _colorbar(fig, m, ax, scale, _bar_label(spec), spec.kind)
    if spec.title:
        ax.set_title(_wrapped(spec.title, round(11 * float(size[0]))))  # ~11 characters an inch
    return fig


def export_spec(
    path: str | os.PathLike[str],
    spec: PlotSpec,
    *,
    dpi: float = 150,
    size: Sequence[float] = (6, 4.5),
) -> Path:
    """Draw one resolved ``spec`` (``spec_figure``) into ``path`` (.png, .svg or .pdf).
    Returns the written path."""
    target, fmt = _target(path)
    return _save(spec_figure(spec, dpi=dpi, size=size), target, fmt, dpi)


def specs_figure(
    specs: Sequence[PlotSpec],
    *,
    dpi: float = 150,
    size: Sequence[float] | None = None,
    title: str = "",
) -> Any:
    """Several map specs side by side in one row on the first one's scale (``resolve_compare``
    gives them one), each titled with its own title; one curve spec as ``spec_figure``."""
    if not specs:
        raise ValueError("a figure needs at least one spec")
    if specs[0].z is None:
        if len(specs) > 1:
            raise ConfigError("curves of several 2D files go in one figure each: use `plot`")
        return spec_figure(specs[0], dpi=dpi, size=size or (6, 4.5))
    zs = [s.z for s in specs if s.z is not None]
    scale = _Scale(specs[0], zs)
    kind, n = specs[0].kind, len(specs)
    fig = _figure(size or (3.6 * n + 1.2, 3.8), dpi)
    flat = any(_as_curve(s.x, s.y, s.z, "", "") is not None for s in specs)
    kw = {"projection": "3d"} if kind == "surface3d" and not flat else {}
    axes = [fig.add_subplot(1, n, i + 1, **kw) for i in range(n)]
    mappable = None
    for ax, spec in zip(axes, specs, strict=True):
        mappable = _map_panel(ax, spec, scale)
        # The colour bar takes about 1.2 inches; a panel's title font is the same.
        ax.set_title(_wrapped(spec.title, max(20, round(10 * (fig.get_figwidth() - 1.2) / n))))
    if kw:  # 3D: one z range too, so the heights compare
        lims = [ax.get_zlim() for ax in axes]
        for ax in axes:
            ax.set_zlim(min(lo for lo, _ in lims), max(hi for _, hi in lims))
    if mappable is not None:
        _colorbar(fig, mappable, axes, scale, _bar_label(specs[0]), kind)
    if title:
        fig.suptitle(title)
    return fig


def export_specs(
    path: str | os.PathLike[str],
    specs: Sequence[PlotSpec],
    *,
    dpi: float = 150,
    size: Sequence[float] | None = None,
    title: str = "",
) -> Path:
    """``specs_figure`` written to ``path`` (.png, .svg or .pdf). Returns the written path."""
    target, fmt = _target(path)
    return _save(specs_figure(specs, dpi=dpi, size=size, title=title), target, fmt, dpi)
