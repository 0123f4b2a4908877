"""Contour levels and colour limits: the one rule of every plot (``plots.spec`` applies it).

``levels_for`` chooses a map's levels (a loss's, an exploding rim's, the ratio's, any other
metric's), ``limits_for`` its colour range, ``level_fraction`` where a value falls on the colour
ramp when colours step per level; ``parse_levels`` reads ``--levels``, ``next_levels`` steps the
app's count and ``tick_format`` labels a colour bar. No plotting package is imported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from engine.errors import ConfigError
from engine.sharpness import RATIO_SCALE

__all__ = [
    "BASIN_LEVELS",
    "BASIN_SPAN",
    "LEVELS_RANGE",
    "MIN_REF_LEVELS",
    "N_LEVELS",
    "REF_STEP",
    "REF_VMAX",
    "REF_VMIN",
    "RIM_LEVELS",
    "RIM_QUANTILE",
    "RIM_SPAN",
    "finite_values",
    "level_fraction",
    "level_knots",
    "levels_for",
    "limits_for",
    "next_levels",
    "parse_levels",
    "rim_for",
    "rim_rises",
    "tick_format",
]

# plot_2D.py's defaults: contours every 0.5 from 0.1 up to (not including) 10.
REF_VMIN, REF_VMAX, REF_STEP = 0.1, 10.0, 0.5
MIN_REF_LEVELS = 5  # fewer reference levels than this inside the data's range: they don't fit
N_LEVELS = 15
# A positive surface spanning this many times its minimum (a loss around a minimum) gets
# log-spaced levels: linear ones would leave the whole basin inside the lowest one.
BASIN_SPAN, BASIN_LEVELS = 100.0, 10
# A loss map whose rim explodes (1e6..1e9 at the edges of deep nets without shortcuts): its
# largest rise above the minimum is over RIM_SPAN times the median rise. Its levels are the
# minimum plus geometric steps of the rise: RIM_LEVELS[0] from the rise of the minimum's nearest
# points (the RIM_QUANTILE of the rises) to the basin's edge (the median rise, at most the
# reference's REF_VMAX: the rim may cover most of the grid), RIM_LEVELS[1] above it to the
# rim, so the basin keeps half the levels however far the rim goes; colours step per level.
RIM_SPAN, RIM_QUANTILE, RIM_LEVELS = 1000.0, 0.02, (8, 6)
LEVELS_RANGE = (2, 40)  # what the app's +/- keys step between


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
    for a loss (``loss``, see ``is_loss``) whose rim explodes (``rim_rises``) the minimum plus
    geometric steps of the rise, half of them below the median rise (a count splits the same
    way); 10 log-spaced levels strictly inside a positive range spanning over two decades (a
    loss around its minimum), or the reference's levels
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
    rim = rim_for(values, levels, log, ratio, loss, vmin, vmax)
    if rim is not None:
        return _rim_levels(*rim, n=levels)
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


def rim_rises(values: ArrayLike) -> tuple[float, float, float, float] | None:
    """``(minimum, lowest rise, basin's edge, largest rise)`` of ``values`` above their
    minimum when they form an exploding rim (the largest rise over ``RIM_SPAN`` times the
    median rise), else None. The edge is the median rise, at most ``REF_VMAX``."""
    v = finite_values(values)
    if v.size < 8:
        return None
    lo = float(v.min())
    rise = v - lo
    rise = rise[rise > 0]
    if rise.size < 8:
        return None
    med, top = float(np.median(rise)), float(rise.max())
    if top <= RIM_SPAN * med:
        return None
    edge = min(med, REF_VMAX)
    return lo, min(float(np.quantile(rise, RIM_QUANTILE)), edge), edge, top


def rim_for(
    values: ArrayLike,
    levels: int | ArrayLike | None,
    log: bool,
    ratio: bool,
    loss: bool,
    vmin: float | None,
    vmax: float | None,
) -> tuple[float, float, float, float] | None:
    """``rim_rises`` where the rim rule applies: a loss's default levels (or a count of
    them) on a linear scale, no limits given."""
    given = levels is not None and not isinstance(levels, int | np.integer)
    if given or log or ratio or not loss or vmin is not None or vmax is not None:
        return None
    return rim_rises(values)


def _rim_levels(lo: float, low: float, edge: float, top: float, n: int | None = None) -> np.ndarray:
    """``n`` (default ``sum(RIM_LEVELS)``) levels: the minimum plus geometric steps of the
    rise, a share ``RIM_LEVELS[0] / sum(RIM_LEVELS)`` of them from ``low`` up to ``edge``."""
    n = sum(RIM_LEVELS) if n is None else max(int(n), 1)
    below = max(1, round(n * RIM_LEVELS[0] / sum(RIM_LEVELS)))
    basin = np.geomspace(low, edge, below) if below > 1 else np.array([edge])
    rim = np.geomspace(edge, top, n - below + 2)[1:-1]
    return np.unique(lo + np.concatenate([basin, rim]))


def level_knots(levels: ArrayLike, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The colour ramp of ``PlotSpec.level_colors``: ``lo``, the levels within ``[lo, hi]`` and
    ``hi`` (increasing), and their places on the ramp, evenly spaced from 0 to 1."""
    knots = np.unique(np.concatenate([[lo], np.asarray(levels, dtype=float), [hi]]))
    knots = knots[(knots >= lo) & (knots <= hi)]
    if knots.size < 2:
        knots = np.array([lo, hi if hi > lo else lo + 1.0])
    return knots, np.linspace(0.0, 1.0, knots.size)


def level_fraction(values: ArrayLike, levels: ArrayLike, lo: float, hi: float) -> np.ndarray:
    """Where ``values`` fall on the colour ramp (0 at ``lo``, 1 at ``hi``) when colours step
    evenly from level to level (``level_knots``), linear between levels; NaN stays NaN."""
    v = np.asarray(values, dtype=float)
    out = np.interp(v, *level_knots(levels, lo, hi))
    return np.where(np.isnan(v), np.nan, out)


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
