"""engine.sharpness against values worked out by hand (see docs/sharpness.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import ConfigError, LandscapeError
from engine.sharpness import (
    RATIO_SCALE,
    AxisSharpness,
    Sharpness,
    eigen_ratio,
    format_sharpness,
    sharpness,
)

# Multiples of 1/8 are exact in binary, so grid points land exactly on the crossings below.
X = np.arange(-8, 9) * 0.125  # 17 points, -1 .. 1
Y = np.arange(-4, 5) * 0.125  # 9 points, -0.5 .. 0.5 (non-square grid)


def paraboloid(a: float, b: float, x0: float = 0.0, y0: float = 0.0, c: float = 0.0) -> np.ndarray:
    return a * (X[np.newaxis, :] - x0) ** 2 + b * (Y[:, np.newaxis] - y0) ** 2 + c


def mean_increase_by_loop(x, y, z, x0, y0, radius) -> float:
    """The definition, written as plainly as possible."""
    zmin = min(v for v in z.ravel() if math.isfinite(v))
    total, count = 0.0, 0
    for i in range(len(y)):
        for j in range(len(x)):
            v = z[i, j]
            if math.isfinite(v) and math.sqrt((x[j] - x0) ** 2 + (y[i] - y0) ** 2) <= radius:
                total += v - zmin
                count += 1
    return total / count


def axis(s: Sharpness, name: str) -> AxisSharpness:
    (found,) = [a for a in s.axes if a.axis == name]
    return found


def test_paraboloid_curvature_width_and_mean_increase():
    a, b = 4.0, 16.0
    z = paraboloid(a, b)
    s = sharpness(X, Y, z, margin=1.0, radius=0.3)
    assert s.min_value == 0.0
    assert s.min_coords == (0.0, 0.0)
    assert [ax.axis for ax in s.axes] == ["x", "y"]
    assert axis(s, "x").curvature == pytest.approx(2 * a)
    assert axis(s, "y").curvature == pytest.approx(2 * b)
    # Crossings at +-sqrt(margin/a) = +-0.5 and +-sqrt(margin/b) = +-0.25, both grid points.
    assert axis(s, "x").width == pytest.approx(2 * math.sqrt(1.0 / a))
    assert axis(s, "y").width == pytest.approx(2 * math.sqrt(1.0 / b))
    assert not axis(s, "x").open_ended
    assert not axis(s, "y").open_ended
    assert s.margin == 1.0
    assert s.radius == 0.3
    assert s.mean_increase == pytest.approx(mean_increase_by_loop(X, Y, z, 0.0, 0.0, 0.3))


def test_width_interpolates_between_grid_points():
    # 1D, L = 3 x^2 on step 0.1: L(0.1) = 0.03 <= 0.1 < L(0.2) = 0.12, so the run ends at
    # 0.1 + (0.1 - 0.03) / (0.12 - 0.03) * 0.1 on each side.
    x = np.linspace(-1, 1, 21)
    s = sharpness(x, None, 3 * x**2, margin=0.1, radius=0.25)
    end = 0.1 + (0.1 - 0.03) / (0.12 - 0.03) * 0.1
    (ax,) = s.axes
    assert ax.axis == "x"
    assert ax.width == pytest.approx(2 * end)
    assert not ax.open_ended
    assert ax.curvature == pytest.approx(6.0)
    # |x| <= 0.25 keeps x = 0, +-0.1, +-0.2: mean of 3 * (0 + 2 * 0.01 + 2 * 0.04) / 5.
    assert s.mean_increase == pytest.approx(3 * 0.1 / 5)
    assert s.min_coords == (pytest.approx(0.0),)


def test_width_converges_to_exact_on_a_fine_grid():
    x = np.linspace(-1, 1, 401)
    s = sharpness(x, None, 3 * x**2, margin=0.1)
    assert s.axes[0].width == pytest.approx(2 * math.sqrt(0.1 / 3), rel=1e-3)


def test_shifted_minimum_and_basin_cut_by_the_grid_edge():
    a, b = 4.0, 16.0
    z = paraboloid(a, b, x0=0.375, y0=-0.375, c=0.5)
    s = sharpness(X, Y, z, margin=1.0, radius=0.3)
    assert s.min_value == 0.5
    assert s.min_coords == (0.375, -0.375)
    assert axis(s, "x").curvature == pytest.approx(2 * a)
    assert axis(s, "y").curvature == pytest.approx(2 * b)
    # x: 0.375 +- 0.5 = -0.125 .. 0.875, inside the grid.
    assert axis(s, "x").width == pytest.approx(1.0)
    assert not axis(s, "x").open_ended
    # y: would be -0.625 .. -0.125, but the grid starts at -0.5.
    assert axis(s, "y").width == pytest.approx(-0.125 - (-0.5))
    assert axis(s, "y").open_ended
    assert s.mean_increase == pytest.approx(mean_increase_by_loop(X, Y, z, 0.375, -0.375, 0.3))


def test_flat_plateau():
    z = np.full((Y.size, X.size), 2.0)
    s = sharpness(X, Y, z)
    assert s.min_value == 2.0
    assert s.min_coords == (-1.0, -0.5)  # ties go to the first point
    for ax, extent in zip(s.axes, (2.0, 1.0), strict=True):
        assert abs(ax.curvature) < 1e-9
        assert ax.width == pytest.approx(extent)
        assert ax.open_ended
    assert s.mean_increase == 0.0


def test_nan_and_inf_are_ignored():
    a, b = 4.0, 16.0
    clean = paraboloid(a, b)
    z = clean.copy()
    z[0, 0] = np.nan
    z[1, 3] = -np.inf  # would be the minimum if it were read as a number
    z[5, 7] = np.inf  # next to the minimum, off both lines through it
    z[3, 9] = np.nan  # likewise, inside the radius
    z[4, 9] = np.nan  # on the x line, inside the basin and the curvature window
    z[5, 8] = np.inf  # on the y line, next to the minimum (in the basin and the fit window)
    s = sharpness(X, Y, z, margin=1.0, radius=0.3)
    ref = sharpness(X, Y, clean, margin=1.0, radius=0.3)
    assert s.min_value == 0.0
    assert s.min_coords == (0.0, 0.0)
    for got, want in zip(s.axes, ref.axes, strict=True):
        assert got.curvature == pytest.approx(want.curvature)
        assert got.width == pytest.approx(want.width)
        assert got.open_ended == want.open_ended
    assert s.mean_increase == pytest.approx(mean_increase_by_loop(X, Y, z, 0.0, 0.0, 0.3))
    # The skipped points really are left out (not counted as 0), so the means differ.
    assert s.mean_increase != pytest.approx(ref.mean_increase)


def test_missing_points_are_skipped_in_width_and_fit():
    x = np.arange(5.0)
    z = np.array([0.0, 0.05, np.nan, 0.3, 1.0])
    # Run: index 0 (the edge) and 1; next finite point is index 3, so the end lies at
    # 1 + (0.1 - 0.05) / (0.3 - 0.05) * (3 - 1) = 1.4.
    s = sharpness(x, None, z, margin=0.1, fit=2)
    assert s.axes[0].width == pytest.approx(1.4)
    assert s.axes[0].open_ended
    assert math.isnan(s.axes[0].curvature)  # only x = 0, 1 finite within 2 steps
    # Within 3 steps: (0, 0), (1, 0.05), (3, 0.3): c1 + c2 = 0.05, 3 c1 + 9 c2 = 0.3, c2 = 0.025.
    s3 = sharpness(x, None, z, margin=0.1, fit=3)
    assert s3.axes[0].curvature == pytest.approx(0.05)


def test_least_squares_fit_over_more_than_three_points():
    # Noisy quadratic on 5 points; the reference is numpy's degree-2 polyfit around x* = 0.
    x = np.linspace(-2, 2, 5)
    z = 1.5 * x**2 + np.array([0.1, -0.2, 0.0, 0.3, -0.1])
    s = sharpness(x, None, z, fit=2)
    assert s.min_coords == (0.0,)
    assert s.axes[0].curvature == pytest.approx(2 * np.polyfit(x, z, 2)[0])


def test_single_row_grid_reports_only_x():
    y = np.array([0.5])
    z = 4.0 * X[np.newaxis, :] ** 2
    s = sharpness(X, y, z, margin=1.0, radius=0.3)
    assert s.min_coords == (0.0, 0.5)
    assert [ax.axis for ax in s.axes] == ["x"]
    assert s.axes[0].width == pytest.approx(1.0)
    assert s.axes[0].curvature == pytest.approx(8.0)
    assert s.mean_increase == pytest.approx(mean_increase_by_loop(X, y, z, 0.0, 0.5, 0.3))


def test_single_column_grid_reports_only_y():
    x = np.array([0.0])
    z = 16.0 * Y[:, np.newaxis] ** 2
    s = sharpness(x, Y, z, margin=1.0)
    assert [ax.axis for ax in s.axes] == ["y"]
    assert s.axes[0].width == pytest.approx(0.5)


def test_two_point_axis():
    # L(0) = 1 <= 1.1 < L(1) = 3: the run ends at 0.1 / 2 and starts at the left edge.
    s = sharpness([0.0, 1.0], None, [1.0, 3.0], margin=0.1)
    (ax,) = s.axes
    assert math.isnan(ax.curvature)
    assert ax.width == pytest.approx(0.05)
    assert ax.open_ended


def test_descending_coordinates_give_the_same_numbers():
    x = np.linspace(-1, 1, 21)
    up = sharpness(x, None, 3 * x**2)
    down = sharpness(x[::-1], None, 3 * x[::-1] ** 2)
    assert down.axes[0].width == pytest.approx(up.axes[0].width)
    assert down.axes[0].curvature == pytest.approx(up.axes[0].curvature)


@pytest.mark.parametrize("fill", [np.nan, np.inf])
def test_no_finite_value_raises(fill):
    with pytest.raises(LandscapeError, match="no finite value"):
        sharpness(X, Y, np.full((Y.size, X.size), fill))


@pytest.mark.parametrize(
    ("x", "y", "z"),
    [
        (X, Y, np.zeros((X.size, Y.size))),  # transposed
        (X, None, np.zeros((Y.size, X.size))),  # 2D without y
        (X, Y, np.zeros(X.size)),  # 1D with y
        (X, None, np.zeros(X.size + 1)),
        ([0.0, 1.0, 0.5], None, np.zeros(3)),  # coordinates out of order
        ([0.0, np.nan], None, np.zeros(2)),
        (np.zeros((2, 2)), None, np.zeros(2)),
    ],
)
def test_bad_shapes_raise_landscape_error(x, y, z):
    with pytest.raises(LandscapeError) as info:
        sharpness(x, y, z)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": -1}, "Expected `margin` >= 0, but got -1."),
        ({"margin": float("nan")}, "Expected `margin` >= 0"),
        ({"radius": 0}, "Expected `radius` > 0, but got 0."),
        ({"fit": 0}, "Expected `fit` to be an integer >= 1, but got 0."),
        ({"fit": 1.5}, "Expected `fit` to be an integer >= 1"),
    ],
)
def test_bad_options_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError) as info:
        sharpness(X, None, X**2, **kwargs)
    assert str(info.value).startswith(message)


def test_format_sharpness():
    s = Sharpness(
        min_value=0.03121,
        min_coords=(-0.0, 0.1),
        axes=(
            AxisSharpness("x", curvature=12.34567, width=0.42, open_ended=False),
            AxisSharpness("y", curvature=10.1, width=0.38, open_ended=True),
        ),
        margin=0.1,
        radius=0.25,
        mean_increase=0.071,
        fit=2,
    )
    assert format_sharpness(s) == [
        "min 0.03121 at (x=0, y=0.1)",
        "curvature x 12.35, y 10.1 (quadratic fit, +-2 points)",
        "basin width (loss <= min + 0.1): x 0.42, y 0.38+ (+: to the grid edge)",
        "mean increase within r=0.25: 0.071",
    ]


def test_format_sharpness_1d_without_open_edge_and_missing_curvature():
    s = sharpness([0.0, 1.0, 2.0], None, [1.0, 0.0, 1.0], margin=0.5, fit=1)
    lines = format_sharpness(s)
    assert lines[0] == "min 0 at (x=1)"
    assert lines[1] == "curvature x 2 (quadratic fit, +-1 points)"
    assert lines[2] == "basin width (loss <= min + 0.5): x 1"
    s2 = sharpness([0.0, 1.0], None, [0.0, 1.0])
    assert format_sharpness(s2)[1].startswith("curvature x n/a")


def test_eigen_ratio_is_the_absolute_ratio_and_nan_where_undefined():
    r = eigen_ratio([[-1.0, 2.0], [3.0, np.nan]], [[4.0, -8.0], [0.0, 1.0]])
    assert r.shape == (2, 2)
    assert r[0] == pytest.approx([0.25, 0.25])
    assert np.isnan(r[1]).all()  # max_eig 0 or a missing eigenvalue: no ratio, never inf
    assert RATIO_SCALE == (0.0, 0.5)
