"""Sharpness numbers of a loss surface around its minimum (pure numpy).

A surface is ``z`` of shape ``(nx,)`` over ``x`` (1D) or ``(ny, nx)`` over ``x, y`` with
``z[i, j]`` the value at ``(x[j], y[i])`` (see ``engine/grid.py``). Non-finite values (NaN for
unfinished or failed points, +-inf for diverged ones) are missing data: they are skipped
everywhere, never read as zero. ``docs/sharpness.md`` states each definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from engine.errors import ConfigError, LandscapeError, describe

__all__ = [
    "FIT_RADIUS",
    "MIN_FIT_POINTS",
    "RATIO_SCALE",
    "AxisSharpness",
    "Sharpness",
    "check_options",
    "curvature_notes",
    "eigen_ratio",
    "fit_label",
    "format_number",
    "format_sharpness",
    "sharpness",
    "surface_ratio",
]

# The reference's fixed colour scale for |min_eig / max_eig| (plot_2d_eig_ratio): a ratio above
# 0.5 already means strong negative curvature, and a fixed scale keeps maps comparable.
RATIO_SCALE = (0.0, 0.5)

# The curvature is fitted within this distance of the minimum, in coordinate units (the
# directions' units), so two grids of one model measure the same thing. 0.35 is the smallest
# radius that holds MIN_FIT_POINTS points of a 21-point grid over -1..1; the default grid
# (-1:1:51) puts 17 there. The biweight makes its rms distance 0.13 (docs/sharpness.md).
FIT_RADIUS = 0.35
# Fewer finite points inside the fit radius than this and the curvature is NaN with a reason:
# 3 points are only a finite difference at the grid's step, which is what made the numbers
# depend on the resolution. With 7 the non-quadratic part of the fit is within 15% of its
# fine-grid value, with 9 within 6% (docs/sharpness.md, "Sampling error").
MIN_FIT_POINTS = 7

# Points whose distance to the minimum equals `radius` up to rounding of the grid coordinates
# (linspace gives 0.25000000000000006 for 0.25) still count as "within radius".
_RADIUS_RTOL = 1e-9


@dataclass(frozen=True)
class AxisSharpness:
    """Sharpness along one axis, on the grid line through the minimum."""

    axis: str  # "x" or "y"
    curvature: float  # 2*c2 of a weighted quadratic fit within the fit radius; NaN: see `note`
    width: float  # length of the contiguous sub-(min + margin) run through the minimum
    open_ended: bool  # that run reaches the last finite point on at least one side
    fit_points: int = 0  # finite points the curvature fit used (weight > 0)
    note: str = ""  # why `curvature` is NaN ("" when it is a number)


@dataclass(frozen=True)
class Sharpness:
    """Minimum of a surface and how sharp the surface is around it."""

    min_value: float
    min_coords: tuple[float, ...]  # (x,) in 1D, (x, y) in 2D
    axes: tuple[AxisSharpness, ...]  # one per axis with at least 2 points, x first
    margin: float
    radius: float
    mean_increase: (
        float  # mean of (L - min) over finite points within `radius`; NaN if only the min
    )
    fit: int | None = None  # the old fit's half-width in grid steps, if asked for; else None
    fit_radius: float = FIT_RADIUS  # the curvature fit's radius (NaN with `fit`)


def sharpness(
    x: ArrayLike,
    y: ArrayLike | None,
    z: ArrayLike,
    *,
    margin: float = 0.1,
    radius: float = 0.25,
    fit: int | None = None,
    fit_radius: float | None = None,
) -> Sharpness:
    """Minimum, per-axis curvature and basin width, and mean increase near the minimum.

    ``y`` is None for a 1D surface. The curvature is fitted to the points within
    ``fit_radius`` (coordinate units; default ``FIT_RADIUS``) of the minimum, so grids of one
    model at different resolutions agree to within their sampling; too few points there give
    NaN with the reason in ``AxisSharpness.note``. ``fit=N`` asks for the older fit instead
    (+-N grid steps, unweighted), whose number depends on the resolution.

    Raises ``ConfigError`` for a bad ``margin``, ``radius``, ``fit`` or ``fit_radius`` (or both
    of the last two) and ``LandscapeError`` for mismatched shapes or a surface without a finite
    value.
    """
    check_options(margin, radius, fit, fit_radius)
    window = _Window(fit, FIT_RADIUS if fit_radius is None else float(fit_radius))
    xs = _coordinates(x, "x")
    zs = _array(z, "z")
    if y is None:
        if zs.shape != (xs.size,):
            raise LandscapeError(
                f"Expected a 1D `z` of shape (nx,) = ({xs.size},) to match x, but got {zs.shape}."
            )
        ys = None
    else:
        ys = _coordinates(y, "y")
        if zs.shape != (ys.size, xs.size):
            raise LandscapeError(
                f"Expected a 2D `z` of shape (ny, nx) = ({ys.size}, {xs.size}) to match y and x, "
                f"but got {zs.shape}."
            )

    finite = np.isfinite(zs)
    if not finite.any():
        raise LandscapeError("The surface has no finite value (every point is NaN or inf).")
    # argmin over finite values only; ties go to the first point in C order.
    flat = np.where(finite, zs, np.inf).ravel()
    k = int(np.argmin(flat))
    min_value = float(flat[k])

    if ys is None:
        j = k
        min_coords = (float(xs[j]),)
        lines = [("x", xs, zs, j)]
        dist = np.abs(xs - xs[j])
    else:
        i, j = divmod(k, xs.size)
        min_coords = (float(xs[j]), float(ys[i]))
        lines = [("x", xs, zs[i, :], j), ("y", ys, zs[:, j], i)]
        dist = np.hypot(xs[np.newaxis, :] - xs[j], ys[:, np.newaxis] - ys[i])

    axes = tuple(
        _axis(name, coords, line, idx, min_value, margin, window)
        for name, coords, line, idx in lines
        if coords.size >= 2
    )

    near = finite & (dist <= radius * (1.0 + _RADIUS_RTOL))
    # The minimum alone says nothing about the rise around it: a grid coarser than the radius
    # gets NaN ("not measurable here"), not a mean of one zero that reads as perfectly flat.
    mean_increase = float(np.mean(zs[near] - min_value)) if near.sum() > 1 else math.nan
    return Sharpness(
        min_value=min_value,
        min_coords=min_coords,
        axes=axes,
        margin=float(margin),
        radius=float(radius),
        mean_increase=mean_increase,
        fit=window.steps,
        fit_radius=math.nan if window.steps is not None else window.radius,
    )


def eigen_ratio(min_eig: ArrayLike, max_eig: ArrayLike) -> np.ndarray:
    """``|min_eig / max_eig|`` per point, the reference's measure of non-convexity.

    Near 0 the surface is locally convex (the most negative curvature is small against the
    largest positive one); NaN where either eigenvalue is missing or ``max_eig`` is 0. Shown on
    ``RATIO_SCALE``.
    """
    lo, hi = np.asarray(min_eig, dtype=float), np.asarray(max_eig, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.abs(lo / hi)
    return np.where(np.isfinite(r), r, np.nan)


# A point whose curvature is below this fraction of the map's median curvature is left out of
# ``surface_ratio``: on a plateau the finite differences are rounding noise, ratio ~1 by chance.
FLAT_POINT = 1e-3


def surface_ratio(x: ArrayLike, y: ArrayLike, z: ArrayLike) -> np.ndarray:
    """The surface's own non-convexity per interior grid point: from the 2x2 Hessian of
    ``z[iy, ix]`` by central differences, ``max(0, -e_min) / max(|e_min|, |e_max|)``.

    0 where the plane is locally convex, ``|e_min / e_max|`` at a saddle (the reference's
    ratio, restricted to the plane), 1 where it is concave. A cheap stand-in for the Hessian's
    ratio map when Hessian-vector products are out of reach (the poster's Fig. 5 reads the
    same non-convexity off the 2D surface). NaN on the rim, at non-finite values and on flat
    points (curvature below ``FLAT_POINT`` of the map's median).
    """
    xs, ys = _coordinates(x, "x"), _coordinates(y, "y")
    z = _array(z, "z").reshape(len(ys), len(xs))
    out = np.full(z.shape, np.nan)
    if len(xs) < 3 or len(ys) < 3:
        return out
    # Three-point second differences at the interior points (the grid may be uneven).
    c = z[1:-1, 1:-1]
    hl, hr = np.diff(xs)[:-1], np.diff(xs)[1:]
    kl, kr = np.diff(ys)[:-1, None], np.diff(ys)[1:, None]
    zxx = 2 * (hl * z[1:-1, 2:] - (hl + hr) * c + hr * z[1:-1, :-2]) / (hl * hr * (hl + hr))
    zyy = 2 * (kl * z[2:, 1:-1] - (kl + kr) * c + kr * z[:-2, 1:-1]) / (kl * kr * (kl + kr))
    zxy = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / ((hl + hr) * (kl + kr))
    mean, half = (zxx + zyy) / 2, np.sqrt(((zxx - zyy) / 2) ** 2 + zxy**2)
    lo, hi = mean - half, mean + half
    big = np.maximum(np.abs(lo), np.abs(hi))
    ok = np.isfinite(big)
    if not ok.any():
        return out
    ok &= big > FLAT_POINT * np.median(big[ok])
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:-1, 1:-1] = np.where(ok, np.maximum(0.0, -lo) / big, np.nan)
    return out


def format_sharpness(s: Sharpness) -> list[str]:
    """Short human-readable lines, numbers with 4 significant digits; a curvature that could
    not be fitted is "n/a" with its reason on a line of its own."""
    names = ("x", "y")
    where = ", ".join(f"{n}={format_number(c)}" for n, c in zip(names, s.min_coords, strict=False))
    lines = [f"min {format_number(s.min_value)} at ({where})"]
    if s.axes:
        fits = ", ".join(f"{a.axis} {format_number(a.curvature)}" for a in s.axes)
        lines.append(f"curvature {fits} ({fit_label(s)})")
        lines.extend(f"  {a.axis} n/a: {why}" for a, why in curvature_notes(s))
        widths = ", ".join(
            f"{a.axis} {format_number(a.width)}{'+' if a.open_ended else ''}" for a in s.axes
        )
        # Short: the longest line stays within 80 columns with two 4-digit widths.
        note = " (+: to the grid edge)" if any(a.open_ended for a in s.axes) else ""
        lines.append(f"basin width (loss <= min + {format_number(s.margin)}): {widths}{note}")
    rise = format_number(s.mean_increase)
    if not math.isfinite(s.mean_increase):
        rise += " (no grid point within r of the minimum: a finer grid or a larger --radius)"
    lines.append(f"mean increase within r={format_number(s.radius)}: {rise}")
    return lines


def fit_label(s: Sharpness) -> str:
    """How the curvatures were fitted, in a few words: "quadratic fit within 0.35"."""
    if s.fit is not None:
        return f"quadratic fit, +-{s.fit} points"
    return f"quadratic fit within {format_number(s.fit_radius)}"


def curvature_notes(s: Sharpness) -> list[tuple[AxisSharpness, str]]:
    """Each axis whose curvature is NaN, with why and what to do about it."""
    hint = "" if s.fit is not None else ": a finer grid or a larger fit radius"
    return [(a, a.note + hint) for a in s.axes if a.note]


# --- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """Where the curvature is fitted: within ``radius`` of the minimum (weighted), or, when
    ``steps`` is set, within +-steps grid steps (unweighted, the older fit)."""

    steps: int | None
    radius: float


def _axis(
    name: str,
    coords: np.ndarray,
    line: np.ndarray,
    idx: int,
    min_value: float,
    margin: float,
    window: _Window,
) -> AxisSharpness:
    """Curvature and basin width along one grid line through the minimum at ``line[idx]``."""
    finite = np.isfinite(line)
    if window.steps is None:
        curvature, used, note = _fit_radius(coords, line, idx, finite, window.radius)
    else:
        curvature, used, note = _fit_steps(coords, line, idx, finite, window.steps)

    # Width: walk the finite points outwards (missing points are skipped, not read as a wall).
    pos = np.flatnonzero(finite)
    vals = line[pos]
    k = int(np.searchsorted(pos, idx))
    threshold = min_value + margin
    left, left_open = _run_end(coords[pos], vals, k, -1, threshold)
    right, right_open = _run_end(coords[pos], vals, k, +1, threshold)
    return AxisSharpness(
        axis=name,
        curvature=curvature,
        width=float(abs(right - left)),
        open_ended=left_open or right_open,
        fit_points=used,
        note=note,
    )


def _fit_radius(
    coords: np.ndarray, line: np.ndarray, idx: int, finite: np.ndarray, radius: float
) -> tuple[float, int, str]:
    """2*c2 of a quadratic fitted by weighted least squares to the finite points within
    ``radius`` of the minimum, with Tukey's biweight ``(1 - (d/r)^2)^2``: a point that enters
    or leaves the window as the grid changes does so with a weight near 0, so the fit changes
    little with the resolution (a hard window jumps by a whole point)."""
    u = (coords - coords[idx]) / radius  # in units of the radius: a well-conditioned design
    inside = finite & (np.abs(u) < 1.0 - _RADIUS_RTOL)  # a point at r has weight 0
    n = int(inside.sum())
    if n < MIN_FIT_POINTS:
        note = (
            f"{n} finite point{'s' if n != 1 else ''} within {radius:g} of the minimum "
            f"(the fit needs {MIN_FIT_POINTS})"
        )
        return math.nan, n, note
    d = u[inside]
    sw = 1.0 - d * d  # sqrt of the biweight: lstsq minimises sum((sw * residual)^2)
    design = np.stack([np.ones_like(d), d, d * d], axis=1) * sw[:, np.newaxis]
    coef = np.linalg.lstsq(design, line[inside] * sw, rcond=None)[0]
    return float(2.0 * coef[2] / (radius * radius)), n, ""


def _fit_steps(
    coords: np.ndarray, line: np.ndarray, idx: int, finite: np.ndarray, steps: int
) -> tuple[float, int, str]:
    """The older fit: unweighted over +-``steps`` grid steps. The window is counted in grid
    steps (not in finite points), so missing points narrow the fit instead of widening it."""
    lo, hi = max(0, idx - steps), min(line.size, idx + steps + 1)
    window = np.arange(lo, hi)[finite[lo:hi]]
    if window.size < 3:
        return math.nan, int(window.size), f"{window.size} finite points within {steps} steps"
    d = coords[window] - coords[idx]  # centred on the minimum: c1, c2 are local
    design = np.stack([np.ones_like(d), d, d * d], axis=1)
    coef = np.linalg.lstsq(design, line[window], rcond=None)[0]
    return float(2.0 * coef[2]), int(window.size), ""


def _run_end(
    coords: np.ndarray, vals: np.ndarray, k: int, step: int, threshold: float
) -> tuple[float, bool]:
    """Where the sub-threshold run from ``k`` ends going ``step``; True if it hit the edge."""
    m = k
    while 0 <= m + step < vals.size and vals[m + step] <= threshold:
        m += step
    if not 0 <= m + step < vals.size:
        return float(coords[m]), True  # no point beyond: stop at the edge, extent unknown
    a_in, a_out = float(coords[m]), float(coords[m + step])
    l_in, l_out = float(vals[m]), float(vals[m + step])
    # l_in <= threshold < l_out, so the crossing lies in [a_in, a_out).
    return a_in + (threshold - l_in) / (l_out - l_in) * (a_out - a_in), False


def check_options(
    margin: float, radius: float, fit: int | None = None, fit_radius: float | None = None
) -> None:
    """Refuse bad options (``ConfigError``) before any work: ``sharpness`` checks them too."""
    # `not x >= 0` (rather than `x < 0`) also rejects NaN.
    if not margin >= 0:
        raise ConfigError(f"Expected `margin` >= 0, but got {margin}.")
    if not radius > 0:
        raise ConfigError(f"Expected `radius` > 0, but got {radius}.")
    if fit is not None:
        if isinstance(fit, bool) or not isinstance(fit, int | np.integer) or fit < 1:
            raise ConfigError(f"Expected `fit` to be an integer >= 1, but got {fit!r}.")
        if fit_radius is not None:
            raise ConfigError(
                "Expected one of `fit` (grid steps, the older fit) and `fit_radius`, but got both."
            )
    if fit_radius is not None and not (fit_radius > 0 and math.isfinite(fit_radius)):
        raise ConfigError(f"Expected `fit_radius` > 0, but got {fit_radius}.")


def _array(values: ArrayLike, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise LandscapeError(f"Expected `{name}` to be an array of numbers ({describe(e)}).") from e


def _coordinates(values: ArrayLike, name: str) -> np.ndarray:
    a = _array(values, name)
    if a.ndim != 1 or a.size == 0:
        raise LandscapeError(f"Expected `{name}` to be a non-empty 1D array, but got {a.shape}.")
    if not np.isfinite(a).all():
        raise LandscapeError(f"Expected every `{name}` coordinate to be finite.")
    step = np.diff(a)
    # Widths interpolate between neighbours, which needs the coordinates in order.
    if a.size > 1 and not ((step > 0).all() or (step < 0).all()):
        raise LandscapeError(f"Expected `{name}` coordinates to be strictly monotonic.")
    return a


def format_number(v: float) -> str:
    """One sharpness number as every front end shows it: 4 significant digits, "n/a" for NaN
    (not measurable)."""
    if math.isnan(v):
        return "n/a"
    return f"{v + 0.0:.4g}"  # + 0.0 turns -0.0 into 0.0
