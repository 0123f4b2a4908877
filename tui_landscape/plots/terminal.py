"""Loss-landscape surfaces and curves rendered as text with plotext.

``draw`` renders a ``PlotSpec`` (``plots.spec``: kind, levels and limits are decided there,
never here); the primitives below it take plain arrays. Used by the CLI (printed directly) and
the Textual app. Everything returns a plain string; NaN always means "missing point"
(unfinished or failed evaluation) and is skipped.

plotext keeps one global figure, so these functions are not thread-safe: call them from one
thread (the TUI's worker should serialise renders).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

import contourpy
import numpy as np
import plotext as plt

from engine.errors import ConfigError
from tui_landscape.plots.spec import PlotSpec, tick_format

__all__ = [
    "contour_levels",
    "contour_map",
    "curve_plot",
    "draw",
    "heat_map",
    "iso_lines",
    "parse_levels",
    "scale_limits",
]

DEFAULT_LEVELS = 10
MIN_MARKER = "x"
# Blue -> cyan -> green -> yellow -> red: low loss reads "cold", high loss "hot", and every stop
# stays legible on both dark and light terminal backgrounds (unlike viridis' dark purple).
_RAMP = np.array([(70, 110, 255), (0, 200, 220), (60, 210, 80), (240, 210, 40), (240, 60, 40)])
_SERIES_COLORS = ["blue+", "red+", "green+", "orange+", "magenta+", "cyan+"]
# Without colour the series must still be told apart, so they differ by marker instead.
_SERIES_MARKERS = ["braille", "dot", "+", "*", "o", "#"]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _use_color(color: bool) -> bool:
    # https://no-color.org: any non-empty NO_COLOR disables colour regardless of the argument.
    return color and not os.environ.get("NO_COLOR")


def _ramp(n: int) -> list[tuple[int, int, int]]:
    """``n`` RGB colours evenly spaced along the blue-to-red ramp."""
    t = np.linspace(0.0, 1.0, max(n, 1)) * (len(_RAMP) - 1)
    i = np.minimum(t.astype(int), len(_RAMP) - 2)
    rgb = _RAMP[i] + (_RAMP[i + 1] - _RAMP[i]) * (t - i)[:, None]
    return [tuple(round(c) for c in row) for row in rgb.tolist()]


def _limits(v: np.ndarray) -> tuple[float, float]:
    # plotext divides by (hi - lo), so a degenerate range (one grid point) gets padded.
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
    # plotext silently drops a title wider than the plot instead of cutting it, so cut it here.
    # plotext drops a title wider than the plot area (the width less the y-axis ticks).
    room = width - 8
    plt.title(title if len(title) <= room else title[: room - 1] + "…")
    plt.xlabel(xlabel)


def _finish(color: bool) -> str:
    out = plt.build()
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


def contour_levels(z: np.ndarray, levels: int | Sequence[float] | None = None) -> np.ndarray:
    """Iso-levels for ``z``: an int gives that many levels evenly spaced strictly between the
    finite min and max; a sequence is used as given. Empty for all-NaN or constant ``z``."""
    finite = z[np.isfinite(z)]
    if levels is None or isinstance(levels, int | np.integer):
        n = DEFAULT_LEVELS if levels is None else int(levels)
        if finite.size == 0 or finite.min() == finite.max() or n < 1:
            return np.empty(0)
        return np.linspace(finite.min(), finite.max(), n + 2)[1:-1]
    lv = np.asarray(levels, dtype=float)
    return np.sort(lv[np.isfinite(lv)])


def parse_levels(spec: str | None) -> int | np.ndarray | None:
    """``--levels``: 'vmin:vmax:step' (the reference's form, vmax excluded as in its
    ``arange``), or a count of evenly spaced levels; None or '' for the default."""
    if not spec:
        return None
    if ":" not in spec:
        try:
            n = int(spec)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(
                f"Expected `--levels` to be 'vmin:vmax:step' or a count >= 1, but got {spec!r}."
            )
        return n
    try:
        lo, hi, step = (float(v) for v in spec.split(":"))
    except ValueError:
        lo = hi = step = float("nan")
    if not (np.isfinite([lo, hi, step]).all() and step > 0 and hi > lo):
        raise ConfigError(
            f"Expected `--levels` to be 'vmin:vmax:step' with vmax > vmin and step > 0, "
            f"but got {spec!r}."
        )
    if (hi - lo) / step > 1000:
        raise ConfigError(f"`--levels` {spec!r} gives more than 1000 levels; use a larger step.")
    return np.arange(lo, hi, step)


def scale_limits(arrays: Sequence[np.ndarray], log: bool = False) -> tuple[float, float] | None:
    """One (vmin, vmax) over the finite values of all arrays (positive ones for a log scale)."""
    vals = [a[np.isfinite(a) & ((a > 0) if log else True)] for a in map(np.asarray, arrays)]
    vals = [v for v in vals if v.size]
    if not vals:
        return None
    return float(min(v.min() for v in vals)), float(max(v.max() for v in vals))


def _sample(x: np.ndarray, y: np.ndarray, z: np.ndarray, cols: int, rows: int) -> np.ndarray:
    """``z`` resampled by nearest grid point to ``rows`` x ``cols`` cells, top row = max y."""
    j = np.rint(np.linspace(0, len(x) - 1, cols)).astype(int)
    i = np.rint(np.linspace(len(y) - 1, 0, rows)).astype(int)
    return z[np.ix_(i, j)]


def heat_map(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    bands: Sequence[float] | None = None,
    width: int = 80,
    height: int = 24,
    title: str = "",
    xlabel: str = "x",
    ylabel: str = "y",
    color: bool = True,
) -> str:
    """Heat map of ``z`` (``(ny, nx)``) in half-block cells: two grid rows per text row.

    ``bands`` (level values) turn it into a filled contour map: each cell takes the colour of
    the band its value falls in. Missing points (NaN, inf) stay blank. Without colour the
    cells are shade characters, one grid row per text row.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    z = np.asarray(z, dtype=float).reshape(len(y), len(x))
    color = _use_color(color)
    lim = scale_limits([z], log)
    lo, hi = lim if lim else (0.0, 1.0)
    lo = lo if vmin is None else vmin
    hi = hi if vmax is None else vmax
    tf = np.log10 if log else (lambda v: v)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_lo, t_hi = tf(max(lo, 1e-300) if log else lo), tf(max(hi, 1e-300) if log else hi)
    span = (t_hi - t_lo) or 1.0
    margin = 9
    cols, text_rows = max(width - margin, 4), max(height - 4, 2)
    rows = 2 * text_rows if color else text_rows
    grid = _sample(x, y, z, cols, rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip((tf(grid) - t_lo) / span, 0.0, 1.0)
    missing = ~np.isfinite(grid) | ~np.isfinite(t) | (log & (grid <= 0))
    n_colors = 64
    if bands is not None and len(bands):
        with np.errstate(invalid="ignore", divide="ignore"):
            edges = (tf(np.asarray(bands, dtype=float)) - t_lo) / span
        k = np.searchsorted(edges, t, side="right")
        t = (k / max(len(edges), 1)).clip(0, 1)
        n_colors = len(edges) + 1
    palette = _ramp(n_colors)
    idx = np.rint(np.nan_to_num(t) * (n_colors - 1)).astype(int)
    lines = [title[:width]] if title else []
    ylab = [f"{y.max():.3g}", "", f"{y.min():.3g}"]
    shades = ".:-=+*#%@"
    for r in range(text_rows):
        label = ylab[0] if r == 0 else ylab[2] if r == text_rows - 1 else ""
        out = [f"{label:>{margin - 2}} │"]
        for c in range(cols):
            if not color:
                out.append(" " if missing[r, c] else shades[int(t[r, c] * (len(shades) - 1))])
                continue
            top, bot = (2 * r, c), (2 * r + 1, c)
            if missing[top] and missing[bot]:
                out.append(" ")
            elif missing[top]:
                out.append(_fg(palette[idx[bot]]) + "▄\x1b[0m")
            elif missing[bot]:
                out.append(_fg(palette[idx[top]]) + "▀\x1b[0m")
            else:
                out.append(_fg(palette[idx[top]]) + _bg(palette[idx[bot]]) + "▀\x1b[0m")
        lines.append("".join(out))
    xl, xr = f"{x.min():.3g}", f"{x.max():.3g}"
    lines.append(" " * (margin - 1) + "└" + "─" * cols)
    lines.append(" " * margin + xl + xlabel.center(max(cols - len(xl) - len(xr), 0)) + xr)
    bar = "".join(_fg(c) + "█" for c in _ramp(min(cols - 30, 40) if cols > 40 else 10))
    bar = bar + "\x1b[0m" if color else shades
    fmt = tick_format([lo, hi], 4)  # two ends of a narrow range must still read differently
    scale = f"{ylabel} │ colour: {fmt % lo} {bar} {fmt % hi}" + (" (log)" if log else "")
    lines.append(scale)
    return "\n".join(lines)


def _fg(rgb: tuple[int, int, int]) -> str:
    return f"\x1b[38;2;{rgb[0]};{rgb[1]};{rgb[2]}m"


def _bg(rgb: tuple[int, int, int]) -> str:
    return f"\x1b[48;2;{rgb[0]};{rgb[1]};{rgb[2]}m"


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


def contour_map(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    *,
    levels: int | Sequence[float] | None = None,
    width: int = 80,
    height: int = 24,
    title: str = "",
    xlabel: str = "x",
    ylabel: str = "y",
    mark_min: bool = True,
    best: str = "min",
    color: bool = True,
    path: tuple[np.ndarray, np.ndarray] | None = None,
    cursor: tuple[float, float] | None = None,
) -> str:
    """Braille iso-line map of ``z`` (shape ``(ny, nx)``, ``z[i, j]`` at ``(x[j], y[i])``).

    The title reports the minimum (value and location; the maximum when ``best`` is "max", as
    for an accuracy) and the level range. A grid with one row
    or column is drawn as a curve of ``z`` along the other axis instead. ``path`` (xs, ys)
    overlays a trajectory (a training path projected on the plane), start 'o', end '*'.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    z = np.asarray(z, dtype=float).reshape(len(y), len(x))
    color = _use_color(color)
    notes = []
    if mark_min and np.isfinite(z).any():
        arg = np.nanargmax if best == "max" else np.nanargmin
        i, j = np.unravel_index(arg(z), z.shape)
        notes.append(f"{best} {z[i, j]:.4g} at ({x[j]:.3g}, {y[i]:.3g})")
    elif not np.isfinite(z).any():
        notes.append("no finite values")
    full_title = " | ".join(filter(None, [title, *notes]))
    if min(z.shape) == 1:  # contourpy needs a 2x2 grid; show the single row/column as a curve
        along_x = len(x) > 1 or len(y) == 1
        t, label = (x, xlabel) if along_x else (y, ylabel)
        return curve_plot(
            t,
            {"z": z.ravel()},
            width=width,
            height=height,
            title=full_title,
            xlabel=label,
            left_label="z",
            color=color,
        )

    lv = contour_levels(z, levels)
    if np.isfinite(z).any() and np.nanmin(z) == np.nanmax(z):
        notes.append("constant")  # levels padded around one value cross nothing
    elif lv.size:
        fmt = tick_format([lv[0], lv[-1]])
        notes.append(f"levels {fmt % lv[0]}..{fmt % lv[-1]}")
    elif np.isfinite(z).any():
        notes.append("no levels")
    _start(width, height, " | ".join(filter(None, [title, *notes])), xlabel)
    plt.ylabel(ylabel)
    colors = _ramp(len(lv))
    for k, (xs, ys) in enumerate(iso_lines(x, y, z, lv) if lv.size else []):
        if xs.size:  # plotext cannot take an empty series
            plt.plot(xs.tolist(), ys.tolist(), marker="braille", color=colors[k] if color else None)
    if path is not None and len(path[0]):
        px, py = (np.asarray(p, dtype=float).ravel() for p in path)
        plt.plot(px.tolist(), py.tolist(), marker="dot", color="magenta+" if color else None)
        plt.scatter([px[0]], [py[0]], marker="o", color="default" if color else None)
        plt.scatter([px[-1]], [py[-1]], marker="*", color="default" if color else None)
    if cursor is not None:
        plt.scatter([cursor[0]], [cursor[1]], marker="+", color="red+" if color else None)
    if mark_min and np.isfinite(z).any():
        # Drawn last so the marker sits on top of any iso-line crossing the same cell.
        # Terminal foreground in bold: visible on dark and light backgrounds alike.
        plt.scatter(
            [float(x[j])],
            [float(y[i])],
            marker=MIN_MARKER,
            color="default" if color else None,
            style="bold" if color else None,
        )
    xs, ys = (x, y) if path is None else (np.r_[x, path[0]], np.r_[y, path[1]])
    plt.xlim(*_limits(xs))
    plt.ylim(*_limits(ys))
    return _finish(color)


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
    plt.xlim(*_limits(x))
    return _finish(color)


def draw(spec: PlotSpec, *, width: int = 80, height: int = 24, color: bool = True) -> str:
    """``spec`` as text. A log scale is drawn as log10 of the values (plotext has no log
    colour scale for iso-lines); the levels, limits and series are the spec's."""
    if spec.kind == "curve":
        left, label = dict(spec.series), spec.left_label
        if spec.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                left = {f"log10 {n}": np.where(v > 0, np.log10(v), np.nan) for n, v in left.items()}
            label = f"log10 {label}"
        return curve_plot(
            spec.x, left, dict(spec.right) or None, width=width, height=height, title=spec.title,
            xlabel=spec.xlabel, left_label=label, right_label=spec.right_label, color=color,
        )  # fmt: skip
    assert spec.z is not None and spec.y is not None
    if spec.kind == "contour":
        z, lv, title = spec.z, spec.levels, spec.title
        if spec.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(z > 0, np.log10(z), np.nan)
            lv, title = np.log10(lv[lv > 0]), f"{title} (log10)"
        return contour_map(
            spec.x, spec.y, z, levels=lv, width=width, height=height, title=title,
            xlabel=spec.xlabel, ylabel=spec.ylabel, mark_min=spec.mark_min, best=spec.best,
            color=color, path=spec.path, cursor=spec.cursor,
        )  # fmt: skip
    if spec.kind in ("filled", "heatmap"):
        return heat_map(
            spec.x, spec.y, spec.z, vmin=spec.vmin, vmax=spec.vmax, log=spec.log,
            bands=spec.levels if spec.kind == "filled" else None, width=width, height=height,
            title=spec.title, xlabel=spec.xlabel, ylabel=spec.ylabel, color=color,
        )  # fmt: skip
    raise ConfigError(f"a {spec.kind} plot is for --export only")
