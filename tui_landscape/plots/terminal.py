"""Loss-landscape surfaces and curves rendered as text with plotext.

Used by the CLI (printed directly) and later by the Textual TUI. Everything returns a plain
string; NaN always means "missing point" (unfinished or failed evaluation) and is skipped.

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

__all__ = ["contour_levels", "contour_map", "curve_plot", "iso_lines"]

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
    plt.title(title if len(title) <= width else title[: width - 1] + "…")
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
    color: bool = True,
) -> str:
    """Braille iso-line map of ``z`` (shape ``(ny, nx)``, ``z[i, j]`` at ``(x[j], y[i])``).

    The title reports the minimum (value and location) and the level range. A grid with one row
    or column is drawn as a curve of ``z`` along the other axis instead.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    z = np.asarray(z, dtype=float).reshape(len(y), len(x))
    color = _use_color(color)
    notes = []
    if mark_min and np.isfinite(z).any():
        i, j = np.unravel_index(np.nanargmin(z), z.shape)
        notes.append(f"min {z[i, j]:.4g} at ({x[j]:.3g}, {y[i]:.3g})")
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
    if lv.size:
        notes.append(f"levels {lv[0]:.3g}..{lv[-1]:.3g}")
    elif np.isfinite(z).any():
        notes.append("constant" if np.nanmin(z) == np.nanmax(z) else "no levels")
    _start(width, height, " | ".join(filter(None, [title, *notes])), xlabel)
    plt.ylabel(ylabel)
    colors = _ramp(len(lv))
    for k, (xs, ys) in enumerate(iso_lines(x, y, z, lv) if lv.size else []):
        if xs.size:  # plotext cannot take an empty series
            plt.plot(xs.tolist(), ys.tolist(), marker="braille", color=colors[k] if color else None)
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
    plt.xlim(*_limits(x))
    plt.ylim(*_limits(y))
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
