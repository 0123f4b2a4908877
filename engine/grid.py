"""Grid specs (``min:max:num``) and the mapping between grid points and array cells.

Orientation follows the reference code's meshgrid order: a 2D surface ``Z`` has
shape ``(ny, nx)`` and ``Z[i, j]`` is the value at ``(x[j], y[i])``; flat index
``k`` is cell ``(k // nx, k % nx)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.errors import ConfigError

__all__ = ["Axis", "Grid", "parse_axis"]


@dataclass(frozen=True)
class Axis:
    """One axis of a grid: ``num`` evenly spaced points from ``lo`` to ``hi``."""

    lo: float
    hi: float
    num: int

    def coordinates(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self.num, dtype=np.float64)

    def spec(self) -> str:
        return f"{self.lo:g}:{self.hi:g}:{self.num}"


def parse_axis(spec: str, key: str = "grid.x") -> Axis:
    """Parse ``'min:max:num'``; errors name ``key`` and the expected form."""
    expected = f"Expected `{key}` to be 'min:max:num' with min < max and an integer num >= 2"
    parts = str(spec).split(":")
    if len(parts) != 3:
        raise ConfigError(f"{expected}, but got {spec!r}.")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(f"{expected}, but got {spec!r}.") from None
    try:
        num = int(parts[2])
    except ValueError:
        # A float count ('1:2:5.0') crashed the reference on current numpy; refuse it clearly.
        raise ConfigError(f"{expected}, but got {spec!r} (num must be an integer).") from None
    if num == 1 and lo == hi and math.isfinite(lo):
        return Axis(lo, hi, 1)  # one point ('0:0:1': a Hessian run at the centre alone)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi or num < 2:
        raise ConfigError(f"{expected} (or one point, 'c:c:1'), but got {spec!r}.")
    axis = Axis(lo, hi, num)
    if num <= MAX_POINTS:  # a larger count is refused by Grid.parse without building it
        with np.errstate(over="ignore", invalid="ignore"):
            c = axis.coordinates()
        # -1e308:1e308 overflows the span to inf; a span near float spacing repeats points
        if not (np.isfinite(c).all() and (np.diff(c) > 0).all()):
            raise ConfigError(
                f"{expected}, but got {spec!r}: its points are not finite and distinct in float64."
            )
    return axis


MAX_POINTS = 4_000_000  # 2000 x 2000; the in-memory surfaces alone then take ~160 MB


@dataclass(frozen=True)
class Grid:
    """A 1D grid (``y is None``) or a 2D grid."""

    x: Axis
    y: Axis | None = None

    @classmethod
    def parse(cls, x: str, y: str = "") -> Grid:
        g = cls(parse_axis(x, "grid.x"), parse_axis(y, "grid.y") if y else None)
        if g.size > MAX_POINTS:
            raise ConfigError(
                f"Expected at most {MAX_POINTS:,} grid points, but `grid.x` and `grid.y` give "
                f"{g.size:,}; a typo in num?"
            )
        return g

    @property
    def ndim(self) -> int:
        return 1 if self.y is None else 2

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.x.num,) if self.y is None else (self.y.num, self.x.num)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def point(self, k: int) -> tuple[float, float]:
        """Coordinates ``(a, b)`` of flat index ``k`` (``b = 0`` on a 1D grid)."""
        xs = _floats(self.x)
        if self.y is None:
            return xs[k], 0.0
        i, j = divmod(k, self.x.num)
        return xs[j], _floats(self.y)[i]

    def points(self) -> np.ndarray:
        """All coordinates as an array of shape ``(size, 2)`` in flat-index order."""
        if self.y is None:
            xs = self.x.coordinates()
            return np.stack([xs, np.zeros_like(xs)], axis=1)
        xx, yy = np.meshgrid(self.x.coordinates(), self.y.coordinates())
        return np.stack([xx.ravel(), yy.ravel()], axis=1)

    def center_index(self) -> int:
        """Flat index of the grid point nearest to the origin."""
        pts = self.points()
        return int(np.argmin(np.hypot(pts[:, 0], pts[:, 1])))


@lru_cache(maxsize=16)
def _floats(axis: Axis) -> tuple[float, ...]:
    """An axis's coordinates as floats, built once: a run asks for every point's (building
    both axes' arrays each time cost 30 us a point, a few percent of a small model's)."""
    return tuple(float(c) for c in axis.coordinates())
