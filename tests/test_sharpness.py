"""engine.sharpness against values worked out by hand (see docs/sharpness.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import ConfigError, LandscapeError
from engine.sharpness import (
    FIT_RADIUS,
    MIN_FIT_POINTS,
    RATIO_SCALE,
    AxisSharpness,
    Sharpness,
    eigen_ratio,
    format_sharpness,
    sharpness,
)

# Multiples of 1/16 are exact in binary, so grid points land exactly on the crossings below;
# 11 points of each axis lie within the default fit radius (0.35) of the centre.
X = np.arange(-16, 17) * 0.0625  # 33 points, -1 .. 1
Y = np.arange(-8, 9) * 0.0625  # 17 points, -0.5 .. 0.5 (non-square grid)


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
    # The minimum is the corner: a radius of 0.5 puts 8 points on one side of it in the fit.
    s = sharpness(X, Y, z, fit_radius=0.5)
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
    z[9, 15] = np.inf  # next to the minimum, off both lines through it
    z[7, 17] = np.nan  # likewise, inside the radius
    z[8, 17] = np.nan  # on the x line, inside the basin and the curvature window
    z[9, 16] = np.inf  # on the y line, next to the minimum (in the basin and the fit window)
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


# --- the fit radius: one number for one model, whatever the grid's resolution ---------------

# The biweight fit of a quadratic to q*d^4 over |d| < r has, on a continuous line, slope
# (6/11) r^2 (docs/sharpness.md): the curvature of a*x^2 + q*x^4 at scale r.
QUARTIC_SLOPE = 6 / 11


def quadratic_plus_quartic(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0.5 x^2 + 10 x^4 + 2 y^2 + 40 y^4 (curvatures 1 and 4 at the minimum), n x n on -1..1."""
    g = np.linspace(-1, 1, n)
    xx, yy = np.meshgrid(g, g)
    return g, g, 0.5 * xx**2 + 10 * xx**4 + 2 * yy**2 + 40 * yy**4


@pytest.mark.parametrize("n", [21, 61])
def test_curvature_is_the_fit_at_a_fixed_radius_within_its_sampling_error(n):
    x, y, z = quadratic_plus_quartic(n)
    s = sharpness(x, y, z)
    assert s.fit is None and s.fit_radius == FIT_RADIUS
    # The documented bound: the non-quadratic part within 15% of its fine-grid value with 7
    # points in the window (21 points: step 0.1 < r / 2.5), within 1% with 21 (61 points).
    points, tolerance = {21: (7, 0.15), 61: (21, 0.01)}[n]
    for ax, (kappa0, q) in zip(s.axes, [(1.0, 10.0), (4.0, 40.0)], strict=True):
        extra = 2 * q * QUARTIC_SLOPE * FIT_RADIUS**2
        assert ax.fit_points == points and ax.note == ""
        assert abs(ax.curvature - (kappa0 + extra)) <= tolerance * extra


def test_two_resolutions_agree_and_the_older_grid_step_fit_did_not():
    coarse = sharpness(*quadratic_plus_quartic(21))
    fine = sharpness(*quadratic_plus_quartic(61))
    for c, f, q in zip(coarse.axes, fine.axes, (10.0, 40.0), strict=True):
        extra = 2 * q * QUARTIC_SLOPE * FIT_RADIUS**2
        assert abs(c.curvature - f.curvature) <= 0.16 * extra  # the two bounds above
    # +-2 grid steps is a different scale on each grid: the numbers of the complaint.
    old_coarse = sharpness(*quadratic_plus_quartic(21), fit=2)
    old_fine = sharpness(*quadratic_plus_quartic(61), fit=2)
    assert old_coarse.fit_radius != old_coarse.fit_radius  # NaN: not fitted by radius
    assert old_coarse.axes[0].curvature > 1.5 * old_fine.axes[0].curvature


def test_a_real_tiny_model_at_two_resolutions():
    """A small MLP trained to a low loss: its 1D surface at 21 and 61 points."""
    torch = pytest.importorskip("torch")
    from engine.api import compute_surface

    torch.manual_seed(0)
    inputs = torch.randn(128, 4)
    labels = (inputs[:, 0] * inputs[:, 1] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), 0.05)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), labels).backward()
        opt.step()
    new, old = {}, {}
    for n in (21, 61):
        r = compute_surface(model, (inputs, labels), x=f"-1:1:{n}")
        new[n] = sharpness(r.x, None, r["train_loss"]).axes[0].curvature
        old[n] = sharpness(r.x, None, r["train_loss"], fit=2).axes[0].curvature
    # 17.12 and 17.03 (17.03 at 201 points); the +-2 step fit gives 16.3 and 6.3 (4.7).
    assert abs(new[21] - new[61]) <= 0.02 * new[61]
    assert old[21] > 2 * old[61]  # the grid-step fit measured a different scale per grid


def test_too_few_points_within_the_radius_is_nan_with_the_reason():
    x = np.linspace(-1, 1, 11)  # step 0.2: 3 points within 0.35 of the centre
    s = sharpness(x, None, x**2)
    (ax,) = s.axes
    assert math.isnan(ax.curvature) and ax.fit_points == 3
    assert ax.note == f"3 finite points within 0.35 of the minimum (the fit needs {MIN_FIT_POINTS})"
    lines = format_sharpness(s)
    assert lines[1] == "curvature x n/a (quadratic fit within 0.35)"
    assert lines[2].startswith("  x n/a: 3 finite points") and "a larger fit radius" in lines[2]
    # A larger radius reaches enough points: never a silent fall back to grid steps.
    wide = sharpness(x, None, x**2, fit_radius=0.7)
    assert wide.axes[0].curvature == pytest.approx(2.0) and wide.axes[0].fit_points == 7


def test_missing_points_count_against_the_fit():
    x = np.linspace(-1, 1, 21)  # 7 points within 0.35: exactly enough
    z = 3 * x**2
    z[9] = np.nan
    (ax,) = sharpness(x, None, z).axes
    assert math.isnan(ax.curvature) and ax.note.startswith("6 finite points")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fit_radius": 0}, "Expected `fit_radius` > 0, but got 0."),
        ({"fit_radius": float("inf")}, "Expected `fit_radius` > 0"),
        ({"fit": 2, "fit_radius": 0.3}, "Expected one of `fit`"),
    ],
)
def test_bad_fit_radius_raises_config_error(kwargs, message):
    with pytest.raises(ConfigError) as info:
        sharpness(X, None, X**2, **kwargs)
    assert str(info.value).startswith(message)


def test_eigen_ratio_is_the_absolute_ratio_and_nan_where_undefined():
    r = eigen_ratio([[-1.0, 2.0], [3.0, np.nan]], [[4.0, -8.0], [0.0, 1.0]])
    assert r.shape == (2, 2)
    assert r[0] == pytest.approx([0.25, 0.25])
    assert np.isnan(r[1]).all()  # max_eig 0 or a missing eigenvalue: no ratio, never inf
    assert RATIO_SCALE == (0.0, 0.5)


def test_surface_ratio_is_zero_on_a_bowl_the_reference_ratio_at_a_saddle_one_when_concave():
    from engine.sharpness import surface_ratio

    x = np.linspace(-1, 1, 9)
    y = np.linspace(-0.5, 1.5, 7)  # off-centre and a different step: the formula, not luck
    X, Y = np.meshgrid(x, y)
    bowl = surface_ratio(x, y, X**2 + 3 * Y**2 + 0.5 * X * Y)
    saddle = surface_ratio(x, y, X**2 - 0.25 * Y**2)  # eigenvalues 2 and -0.5
    cap = surface_ratio(x, y, -(X**2) - Y**2)
    inner = (slice(1, -1), slice(1, -1))
    assert np.allclose(bowl[inner], 0.0)
    assert np.allclose(saddle[inner], 0.25)
    assert np.allclose(cap[inner], 1.0)
    assert np.isnan(bowl[0]).all() and np.isnan(bowl[:, -1]).all()  # the rim has no 2nd difference


def test_surface_ratio_leaves_out_flat_points_and_holes():
    from engine.sharpness import surface_ratio

    x = y = np.linspace(-1, 1, 11)
    X, Y = np.meshgrid(x, y)
    z = np.where(X < 0.3, X**2 + Y**2, 0.09 + 1e-12 * np.cos(40 * Y))  # a bowl, then a plateau
    z[5, 2] = np.nan
    r = surface_ratio(x, y, z)
    assert np.isnan(r[5, 8]) and np.isnan(r[5, 2]) and np.isnan(r[4, 2])
    assert np.nanmax(r[:, :5]) == pytest.approx(0.0, abs=1e-9)
