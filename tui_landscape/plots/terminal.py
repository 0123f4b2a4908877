"""Loss-landscape surfaces and curves rendered as text with plotext.

``draw`` renders a ``PlotSpec`` (``plots.spec``: kind, levels, colour limits and the best
point are decided there, never here) with the renderer its kind registered
(``plots.kinds``). Used by the CLI (printed directly) and the Textual app. Everything returns
a plain string; NaN always means "missing point" (unfinished or failed evaluation) and is
skipped.

Every map kind draws the same overlays from ``_marks``: a training path (start 'o', end '*'),
the points whose eigenvalues did not converge '?', the cursor '+' and the best point 'x', in
that order, so the best point is on top.

plotext keeps one global figure, so these functions are not thread-safe: call them from one
thread (the TUI's worker should serialise renders).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import contourpy
import numpy as np
import plotext as plt

from engine.errors import ConfigError, LandscapeError, describe
from tui_landscape.plots.kinds import FIGURE_ONLY, renderer, renders
from tui_landscape.plots.spec import PlotSpec, best_point, level_fraction, tick_format

__all__ = [
    "FLAG_MARKER",
    "MIN_MARKER",
    "RENDERERS",
    "curve_plot",
    "draw",
    "iso_lines",
]

MIN_MARKER = "x"
FLAG_MARKER = "?"  # a Hessian map's point whose eigenvalues did not converge
CURSOR_MARKER = "+"
PATH_MARKER = "•"  # plotext's "dot" marker
START_MARKER, END_MARKER = "o", "*"
# Blue -> cyan -> green -> yellow -> red: low loss reads "cold", high loss "hot", and every stop
# stays legible on both dark and light terminal backgrounds (unlike viridis' dark purple).
_RAMP = np.array([(70, 110, 255), (0, 200, 220), (60, 210, 80), (240, 210, 40), (240, 60, 40)])
# A difference (``PlotSpec.signs``): blue below 0, grey at 0 (no difference), red above.
_DIVERGING = np.array([(70, 110, 255), (150, 150, 160), (240, 60, 40)])
_SERIES_COLORS = ["blue+", "red+", "green+", "orange+", "magenta+", "cyan+"]
# Without colour the series must still be told apart, so they differ by marker instead.
_SERIES_MARKERS = ["braille", "dot", "+", "*", "o", "#"]
# A heat map without colour: no shade is an overlay's character (+, *, o, x, •).
_SHADES = ".:-=≡#%@"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

RENDERERS: dict[str, Callable[..., str]] = {}
"""kind -> its text renderer ``(spec, width, height, color) -> str`` (``plots.kinds``)."""


def _use_color(color: bool) -> bool:
    # https://no-color.org: any non-empty NO_COLOR disables colour regardless of the argument.
    return color and not os.environ.get("NO_COLOR")


def _ramp(n: int, diverging: bool = False) -> list[tuple[int, int, int]]:
    """``n`` RGB colours evenly spaced along the blue-to-red ramp (``diverging``: through grey
    at its middle, for a scale centred at 0)."""
    stops = _DIVERGING if diverging else _RAMP
    t = np.linspace(0.0, 1.0, max(n, 1)) * (len(stops) - 1)
    i = np.minimum(t.astype(int), len(stops) - 2)
    rgb = stops[i] + (stops[i + 1] - stops[i]) * (t - i)[:, None]
    return [tuple(round(c) for c in row) for row in rgb.tolist()]


def _axis_range(v: np.ndarray) -> tuple[float, float]:
    """The extent of a coordinate axis (not a colour scale: that is the spec's). plotext
    divides by (hi - lo), so a degenerate range (one grid point) gets padded."""
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return -1.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:
        pad = 0.5 * abs(lo) or 0.5
        return lo - pad, hi + pad
    return lo, hi


def _start(width: int, height: int, title: str, xlabel: str) -> None:
    plt.clear_figure()  # also resets the theme, which clear_figure() leaves at plotext's default
    # plotext otherwise shrinks the plot to the terminal (80x24 when not attached to one),
    # which would break the width/height contract for the TUI and for piped output.
    plt.limit_size(False, False)
    plt.plotsize(width, height)
    # "clear" drops plotext's white canvas so the plot sits on the terminal's own background.
    plt.theme("clear")
    # plotext drops a title wider than the plot area (the width less the y-axis ticks).
    room = width - 8
    plt.title(title if len(title) <= room else title[: room - 1] + "…")
    plt.xlabel(xlabel)


def _finish(color: bool) -> str:
    try:
        out = plt.build()
    except (ArithmeticError, ValueError) as e:
        # plotext's axis arithmetic fails where a range's width overflows (values of 1e308)
        # or its tick rounding does (coordinates of 1e-320): a file others wrote, not a bug.
        raise LandscapeError(
            f"this plot cannot be drawn in the terminal: its values or coordinates span a "
            f"range that plotext cannot scale ({describe(e)})"
        ) from None
    # Even the "clear" theme emits a reset code per line; strip all codes for plain text.
    out = out if color else _ANSI.sub("", out)
    return out.removesuffix("\n")  # one line per row, no trailing blank line


def _runs(x: np.ndarray, y: np.ndarray) -> list[tuple[list[float], list[float]]]:
    """Split ``(x, y)`` into maximal runs where both are finite, as plain float lists."""
    ok = np.isfinite(x) & np.isfinite(y)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], ok.astype(int), [0]))))
    return [
        (x[a:b].tolist(), y[a:b].tolist()) for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


def _fg(rgb: tuple[int, int, int]) -> str:
    return f"\x1b[38;2;{rgb[0]};{rgb[1]};{rgb[2]}m"


def _bg(rgb: tuple[int, int, int]) -> str:
    return f"\x1b[48;2;{rgb[0]};{rgb[1]};{rgb[2]}m"


# ---------------------------------------------------------------------------------------------
# what every map shows besides its values: title notes and overlays, from the spec


def _grid(spec: PlotSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert spec.z is not None and spec.y is not None  # a map spec
    x, y = np.asarray(spec.x, dtype=float).ravel(), np.asarray(spec.y, dtype=float).ravel()
    return x, y, np.asarray(spec.z, dtype=float).reshape(len(y), len(x))


def _notes(spec: PlotSpec, z: np.ndarray, levels: np.ndarray | None) -> list[str]:
    """The title's notes: the best point (value and place) and, where the map draws levels,
    their range."""
    x, y, _ = _grid(spec)
    notes = []
    best = best_point(spec)
    if best is not None:
        i, j = best
        notes.append(f"{spec.best} {spec.z[i, j]:.4g} at ({x[j]:.3g}, {y[i]:.3g})")
    if not np.isfinite(z).any():
        return [*notes, "no finite values"]
    if levels is None:
        return notes
    if np.nanmin(z) == np.nanmax(z):
        return [*notes, "constant"]  # levels padded around one value cross nothing
    if not levels.size:
        return [*notes, "no levels"]
    fmt = tick_format([levels[0], levels[-1]])
    return [*notes, f"levels {fmt % levels[0]}..{fmt % levels[-1]}"]


class _Mark(NamedTuple):
    xs: np.ndarray
    ys: np.ndarray
    char: str
    line: bool  # a polyline (the path), else points
    color: str  # plotext's colour name; heat maps draw marks in black or white for contrast


def _marks(spec: PlotSpec) -> list[_Mark]:
    """The overlays of a map, bottom first: the path, its start and end, the points that did
    not converge, the cursor, the best point. Both map renderers draw exactly these."""
    marks = []
    if spec.path is not None and len(spec.path[0]):
        px, py = (np.asarray(p, dtype=float).ravel() for p in spec.path)
        ok = np.flatnonzero(np.isfinite(px) & np.isfinite(py))
        marks.append(_Mark(px, py, PATH_MARKER, True, "magenta+"))
        if ok.size:
            s, e = ok[0], ok[-1]
            marks.append(_Mark(px[s : s + 1], py[s : s + 1], START_MARKER, False, "default"))
            marks.append(_Mark(px[e : e + 1], py[e : e + 1], END_MARKER, False, "default"))
    if spec.flagged is not None:
        fx, fy = (np.asarray(p, dtype=float).ravel() for p in spec.flagged)
        marks.append(_Mark(fx, fy, FLAG_MARKER, False, "orange+"))
    if spec.cursor is not None:
        cx, cy = spec.cursor
        marks.append(_Mark(np.array([cx]), np.array([cy]), CURSOR_MARKER, False, "red+"))
    best = best_point(spec)
    if best is not None:
        x, y, _ = _grid(spec)
        i, j = best
        marks.append(_Mark(x[j : j + 1], y[i : i + 1], MIN_MARKER, False, "default"))
    return marks


def _extent(spec: PlotSpec) -> tuple[tuple[float, float], tuple[float, float]]:
    """The axes' ranges: the grid's, widened to take in a training path."""
    x, y, _ = _grid(spec)
    if spec.path is not None:
        x, y = np.r_[x, spec.path[0]], np.r_[y, spec.path[1]]
    return _axis_range(x), _axis_range(y)


def iso_lines(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, levels: Sequence[float]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each level, the ``(xs, ys)`` of all its iso-lines joined by NaN separators, so that
    one ``plt.plot`` call draws a whole level (plotext breaks a line at NaN). NaN in ``z`` is
    masked by contourpy, so no line crosses a missing point. Needs ``z.shape >= (2, 2)``."""
    gen = contourpy.contour_generator(x, y, np.ma.masked_invalid(z), line_type="Separate")
    sep = np.full((1, 2), np.nan)
    out = []
    for level in levels:
        pieces = [p for line in gen.lines(level) for p in (line, sep)][:-1]
        pts = np.concatenate(pieces) if pieces else np.empty((0, 2))
        out.append((pts[:, 0], pts[:, 1]))
    return out


def _thinned(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid kept to twice the braille dots of a ``width`` x ``height`` plot (2 x 4 a cell):
    finer iso-lines cannot be drawn, and on 2000 x 2000 points of noise contourpy and plotext
    took minutes (the app froze)."""
    ix, iy = _spread(len(x), 4 * width), _spread(len(y), 8 * height)
    return x[ix], y[iy], z[np.ix_(iy, ix)]


def _spread(n: int, most: int) -> np.ndarray:
    """At most ``most`` indices of ``range(n)``, evenly spread, the first and last kept."""
    return np.arange(n) if n <= most else np.unique(np.linspace(0, n - 1, most).round()).astype(int)


# ---------------------------------------------------------------------------------------------
# renderers, one per drawn kind (plots.kinds)


def _nearest(cells: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each cell coordinate, the nearest grid point and whether the cell lies on the grid
    (a cell beyond it by more than half a step, where a path widened the axes, is blank)."""
    idx = np.abs(cells[:, None] - grid[None, :]).argmin(axis=1)
    half = 0.5 * (grid.max() - grid.min()) / (len(grid) - 1) if len(grid) > 1 else np.inf
    inside = (cells >= grid.min() - half * 1.0001) & (cells <= grid.max() + half * 1.0001)
    return idx, inside


def _line_cells(pts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Every cell on the straight steps between consecutive cells, so a path reads as a line."""
    out = pts[:1]
    for (r0, c0), (r1, c1) in itertools.pairwise(pts):
        n = max(abs(r1 - r0), abs(c1 - c0), 1)
        out += [
            (r0 + round((r1 - r0) * s / n), c0 + round((c1 - c0) * s / n)) for s in range(1, n + 1)
        ]
    return out


@renders(RENDERERS, "filled", "heatmap")
def _heat(spec: PlotSpec, width: int, height: int, color: bool) -> str:
    """A heat map (``heatmap``) or filled contour map (``filled``: each cell takes the colour
    of the band between the spec's levels its value falls in) in half-block cells, two grid
    rows per text row. Missing points stay blank. Without colour the cells are shade
    characters, one grid row per text row."""
    x, y, z = _grid(spec)
    color = _use_color(color)
    assert spec.vmin is not None and spec.vmax is not None  # a map spec has its limits
    lo, hi, log = float(spec.vmin), float(spec.vmax), spec.log
    tf = np.log10 if log else (lambda v: v)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_lo, t_hi = tf(max(lo, 1e-300) if log else lo), tf(max(hi, 1e-300) if log else hi)
    span = (t_hi - t_lo) or 1.0
    margin = 9
    cols, text_rows = max(width - margin, 4), max(height - 4, 2)
    rows = 2 * text_rows if color else text_rows
    (xlo, xhi), (ylo, yhi) = _extent(spec)
    j, jin = _nearest(np.linspace(xlo, xhi, cols), x)
    i, iin = _nearest(np.linspace(yhi, ylo, rows), y)  # top row = max y
    grid = np.where(iin[:, None] & jin[None, :], z[np.ix_(i, j)], np.nan)

    def frac(v: np.ndarray) -> np.ndarray:
        if spec.level_colors:  # an exploding rim: colours step evenly per level
            return level_fraction(v, spec.levels, lo, hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (tf(v) - t_lo) / span

    t = np.clip(frac(grid), 0.0, 1.0)
    missing = ~np.isfinite(grid) | ~np.isfinite(t) | (log & (grid <= 0))
    n_colors = 64
    bands = spec.levels if spec.kind == "filled" else None
    if bands is not None and len(bands):
        with np.errstate(invalid="ignore", divide="ignore"):
            edges = frac(np.asarray(bands, dtype=float))
        k = np.searchsorted(edges, t, side="right")
        t = (k / max(len(edges), 1)).clip(0, 1)
        n_colors = len(edges) + 1
    palette = _ramp(n_colors, spec.signs is not None)
    idx = np.rint(np.nan_to_num(t) * (n_colors - 1)).astype(int)

    # The overlays as (grid row, column) -> character, later marks on top of earlier ones.
    over: dict[tuple[int, int], str] = {}

    def cell(px: float, py: float) -> tuple[int, int]:
        c = round((px - xlo) / (xhi - xlo) * (cols - 1))
        return round((yhi - py) / (yhi - ylo) * (rows - 1)), c

    for m in _marks(spec):
        pts = [cell(a, b) for a, b in zip(m.xs, m.ys, strict=True) if np.isfinite([a, b]).all()]
        if m.line:
            pts = _line_cells(pts)
        for r, c in pts:
            if 0 <= r < rows and 0 <= c < cols:
                over[r, c] = m.char

    notes = _notes(spec, z, spec.levels if spec.kind == "filled" else None)
    title = " | ".join(filter(None, [spec.title, *notes]))
    lines = [title[:width]] if title else []
    ylab = [f"{yhi:.3g}", "", f"{ylo:.3g}"]
    for r in range(text_rows):
        label = ylab[0] if r == 0 else ylab[2] if r == text_rows - 1 else ""
        out = [f"{label:>{margin - 2}} │"]
        for c in range(cols):
            if not color:
                mark = over.get((r, c))
                shade = " " if missing[r, c] else _SHADES[int(t[r, c] * (len(_SHADES) - 1))]
                out.append(mark or shade)
                continue
            top, bot = (2 * r, c), (2 * r + 1, c)
            mark = over.get(top) or over.get(bot)
            if mark:
                # The mark's own half's colour behind it, the character black or white on it.
                under = [h for h in ((top, bot) if top in over else (bot, top)) if not missing[h]]
                rgb = palette[idx[under[0]]] if under else None
                ink = "\x1b[1m"  # bold, the terminal's own colour where no cell is behind
                if rgb is not None:
                    light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140
                    ink = "\x1b[1;38;2;0;0;0m" if light else "\x1b[1;38;2;255;255;255m"
                out.append((_bg(rgb) if rgb else "") + ink + mark + "\x1b[0m")
            elif missing[top] and missing[bot]:
                out.append(" ")
            elif missing[top]:
                out.append(_fg(palette[idx[bot]]) + "▄\x1b[0m")
            elif missing[bot]:
                out.append(_fg(palette[idx[top]]) + "▀\x1b[0m")
            else:
                out.append(_fg(palette[idx[top]]) + _bg(palette[idx[bot]]) + "▀\x1b[0m")
        lines.append("".join(out))
    xl, xr = f"{xlo:.3g}", f"{xhi:.3g}"
    lines.append(" " * (margin - 1) + "└" + "─" * cols)
    lines.append(" " * margin + xl + spec.xlabel.center(max(cols - len(xl) - len(xr), 0)) + xr)
    ramp = _ramp(min(cols - 30, 40) if cols > 40 else 10, spec.signs is not None)
    bar = "".join(_fg(c) + "█" for c in ramp)
    bar = bar + "\x1b[0m" if color else _SHADES
    fmt = tick_format([lo, hi], 4)  # two ends of a narrow range must still read differently
    how = " (log)" if log else " (by level)" if spec.level_colors else ""
    scale = f"{spec.ylabel} │ colour: {fmt % lo} {bar} {fmt % hi}{how}"
    lines.append(scale)
    return "\n".join(lines)


@renders(RENDERERS, "contour")
def _contour(spec: PlotSpec, width: int, height: int, color: bool) -> str:
    """Braille iso-lines at the spec's levels (``z[i, j]`` at ``(x[j], y[i])``), one colour
    per level. A log scale is drawn as log10 of the values (plotext has no log colour scale
    for iso-lines). A grid with one row or column is drawn as a curve along the other axis."""
    x, y, z = _grid(spec)
    color = _use_color(color)
    lv, title = np.asarray(spec.levels, dtype=float), spec.title
    if spec.log:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(z > 0, np.log10(z), np.nan)
        lv, title = np.log10(lv[lv > 0]), f"{title} (log10)"
    if min(z.shape) == 1:  # contourpy needs a 2x2 grid; show the single row/column as a curve
        along_x = len(x) > 1 or len(y) == 1
        t, label = (x, spec.xlabel) if along_x else (y, spec.ylabel)
        title = " | ".join(filter(None, [title, *_notes(spec, z, None)]))
        return curve_plot(t, {"z": z.ravel()}, width=width, height=height, title=title,
                          xlabel=label, left_label="z", color=color)  # fmt: skip
    _start(width, height, " | ".join(filter(None, [title, *_notes(spec, z, lv)])), spec.xlabel)
    plt.ylabel(spec.ylabel)
    colors = _ramp(len(lv), spec.signs is not None)
    for k, (xs, ys) in enumerate(
        iso_lines(*_thinned(x, y, z, width, height), lv) if lv.size else []
    ):
        if xs.size:  # plotext cannot take an empty series
            plt.plot(xs.tolist(), ys.tolist(), marker="braille", color=colors[k] if color else None)
    for m in _marks(spec):
        # The best point is drawn last, on top of any iso-line crossing its cell, in the
        # terminal's foreground in bold: visible on dark and light backgrounds alike.
        style = {"color": m.color if color else None}
        if m.char == MIN_MARKER and color:
            style["style"] = "bold"
        if m.line:
            plt.plot(m.xs.tolist(), m.ys.tolist(), marker="dot", **style)
        else:
            plt.scatter(m.xs.tolist(), m.ys.tolist(), marker=m.char, **style)
    (xlo, xhi), (ylo, yhi) = _extent(spec)
    plt.xlim(xlo, xhi)
    plt.ylim(ylo, yhi)
    return _finish(color)


@renders(RENDERERS, *FIGURE_ONLY)
def _figure_only(spec: PlotSpec, width: int, height: int, color: bool) -> str:
    """plotext has no 3D view: the terminal's answer for a figure-only kind is a clear no."""
    raise ConfigError(f"a {spec.kind} plot is for --export only")


def curve_plot(
    x: np.ndarray,
    left: Mapping[str, np.ndarray],
    right: Mapping[str, np.ndarray] | None = None,
    *,
    width: int = 80,
    height: int = 20,
    title: str = "",
    xlabel: str = "x",
    left_label: str = "loss",
    right_label: str = "accuracy (%)",
    color: bool = True,
) -> str:
    """1D plot with ``left`` series on the left y axis and ``right`` ones on a twin right axis
    (loss and accuracy, as in the reference plots). NaN points are gaps in the curve."""
    x = np.asarray(x, dtype=float).ravel()
    color = _use_color(color)
    _start(width, height, title, xlabel)
    plt.ylabel(left_label, yside="left")
    sides = [("left", left), ("right", right or {})]
    if right:
        plt.ylabel(right_label, yside="right")
    k = 0
    for side, series in sides:
        for name, values in series.items():
            v = np.asarray(values, dtype=float).ravel()
            # One call per finite run: a series' colour/marker is fixed here so all runs match,
            # and only the first run carries the legend label.
            style = {
                "color": _SERIES_COLORS[k % len(_SERIES_COLORS)] if color else None,
                "marker": "braille" if color else _SERIES_MARKERS[k % len(_SERIES_MARKERS)],
            }
            for r, (xs, ys) in enumerate(_runs(x, v)):
                plt.plot(xs, ys, yside=side, label=name if r == 0 else None, **style)
            k += 1
    plt.xlim(*_axis_range(x))
    return _finish(color)


@renders(RENDERERS, "curve")
def _curve(spec: PlotSpec, width: int, height: int, color: bool) -> str:
    """Curves: ``series`` on the left axis, ``right`` on a twin right axis; a log scale as
    log10 of the left series."""
    left, label = dict(spec.series), spec.left_label
    if spec.log:
        with np.errstate(divide="ignore", invalid="ignore"):
            left = {f"log10 {n}": np.where(v > 0, np.log10(v), np.nan) for n, v in left.items()}
        label = f"log10 {label}"
    return curve_plot(
        spec.x, left, dict(spec.right) or None, width=width, height=height, title=spec.title,
        xlabel=spec.xlabel, left_label=label, right_label=spec.right_label, color=color,
    )  # fmt: skip


@renders(RENDERERS, "density")
def _density(spec: PlotSpec, width: int, height: int, color: bool) -> str:
    """The eigenvalue density: one braille curve (on a log scale log10 of it, from the spec's
    ``vmin`` up), the ``marks`` (top-k eigenvalues) as vertical lines, and the ``notes`` (the
    legend) as lines below the plot, within ``height``."""
    color = _use_color(color)
    notes = [n if len(n) <= width else n[: width - 1] + "…" for n in spec.notes]
    t = np.asarray(spec.x, dtype=float)
    rho = np.asarray(next(iter(spec.series.values())), dtype=float)
    label = spec.left_label
    if spec.log:
        floor = spec.vmin if spec.vmin is not None else np.finfo(float).tiny
        rho, label = np.log10(np.maximum(rho, floor)), f"log10 {label}"
    _start(width, max(height - len(notes), 8), spec.title, spec.xlabel)
    plt.ylabel(label)
    for xs, ys in _runs(t, rho):
        plt.plot(xs, ys, marker="braille", color="blue+" if color else None)
    for m in np.asarray(spec.marks, dtype=float):
        plt.vline(float(m), "red+" if color else None)
    plt.xlim(*_axis_range(np.r_[t, spec.marks]))
    return "\n".join([_finish(color), *notes])


def draw(spec: PlotSpec, *, width: int = 80, height: int = 24, color: bool = True) -> str:
    """``spec`` as text, by the renderer of its kind; the levels, limits, series and overlays
    are the spec's. A difference (``spec.signs``) gets a last line saying which sign is which."""
    draw_kind = renderer(RENDERERS, spec.kind)
    if spec.signs is None:
        return draw_kind(spec, width, height, color)
    return draw_kind(spec, width, max(height - 1, 4), color) + "\n" + _sign_line(spec, width, color)


def _sign_line(spec: PlotSpec, width: int, color: bool) -> str:
    """What below and above 0 mean, in the colours (or shades) the map draws them in."""
    assert spec.signs is not None
    below, above = spec.signs
    if spec.kind == "curve":
        low, high = "< 0", "> 0"
    elif _use_color(color):
        blue, red = (_fg(tuple(int(v) for v in _DIVERGING[k])) for k in (0, -1))
        low, high = f"{blue}█\x1b[0m < 0", f"{red}█\x1b[0m > 0"
    elif spec.kind in ("heatmap", "filled"):
        low, high = f"'{_SHADES[0]}' < 0", f"'{_SHADES[-1]}' > 0"
    else:  # iso-lines without colour: the levels' signs are in the title's range
        low, high = "< 0", "> 0"
    over = len(_ANSI.sub("", f"{low}: {below}; {high}: {above}")) - width
    if over > 0:  # shortened in the file names' text only, never inside a colour code
        above = above[: max(len(above) - over - 1, 0)] + "…"
    return f"{low}: {below}; {high}: {above}"
