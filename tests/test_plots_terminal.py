"""Text rendering of landscapes with plotext: size contract, NaN handling, geometry."""

from __future__ import annotations

import re

import numpy as np
import plotext as plt
import pytest

from engine.errors import ConfigError
from tui_landscape.plots.spec import grid_spec
from tui_landscape.plots.terminal import (
    MIN_MARKER,
    curve_plot,
    draw,
    iso_lines,
)

BRAILLE = re.compile("[\u2801-\u28ff]")  # U+2800 is the blank braille cell, not a drawn dot
MIN_RE = re.compile(r"min (\S+) at \((\S+), (\S+)\)")


def grid(nx: int = 15, ny: int = 9, x0: float = 0.0, y0: float = 0.0):
    x, y = np.linspace(-1, 1, nx), np.linspace(-1, 1, ny)
    xx, yy = np.meshgrid(x, y)
    return x, y, (xx - x0) ** 2 + 2 * (yy - y0) ** 2


def contour_map(x, y, z, *, width=80, height=24, color=True, **kw) -> str:
    """A contour map of the arrays, as every front end draws one: a spec, then ``draw``."""
    spec = grid_spec(x, y, z, kind=kw.pop("kind", "contour"), **kw)
    return draw(spec, width=width, height=height, color=color)


def canvas(out: str) -> list[str]:
    """The rows inside the plot frame, without the frame and the tick labels."""
    rows = out.split("\n")
    top = next(i for i, r in enumerate(rows) if "┌" in r)
    bottom = next(i for i, r in enumerate(rows) if "└" in r)
    left = rows[top].index("┌") + 1
    right = rows[top].index("┐")
    return [r[left:right] for r in rows[top + 1 : bottom]]


def assert_plain(out: str, width: int, height: int) -> None:
    # plotext's real contract (with limit_size off): exactly `height` rows, each exactly
    # `width` characters; we strip the trailing newline build() adds.
    assert "\x1b" not in out
    lines = out.split("\n")
    assert len(lines) == height
    assert all(len(line) == width for line in lines), {len(line) for line in lines}


@pytest.mark.parametrize(("width", "height"), [(80, 24), (50, 12), (120, 40)])
def test_contour_size_and_no_ansi(width: int, height: int) -> None:
    x, y, z = grid()
    assert_plain(contour_map(x, y, z, width=width, height=height, color=False), width, height)


def test_colour_output_has_ansi_and_same_geometry() -> None:
    x, y, z = grid()
    out = contour_map(x, y, z, width=60, height=16)
    assert "\x1b[38;2;" in out  # per-level RGB colours
    assert_plain(re.sub(r"\x1b\[[0-9;]*m", "", out), 60, 16)


def test_no_color_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    x, y, z = grid()
    assert "\x1b" not in contour_map(x, y, z)
    assert "\x1b" not in curve_plot(x, {"loss": z[0]})


def test_paraboloid_min_title_and_isolines() -> None:
    x, y, z = grid(15, 9)
    out = contour_map(x, y, z, width=70, height=20, color=False, title="parab")
    m = MIN_RE.search(out.split("\n")[0])
    assert m is not None and out.startswith(" ") and "parab" in out.split("\n")[0]
    value, mx, my = map(float, m.groups())
    assert value == pytest.approx(0.0, abs=1e-9)
    assert (mx, my) == pytest.approx((0.0, 0.0), abs=1e-9)
    assert "levels " in out.split("\n")[0]
    assert BRAILLE.search("".join(canvas(out)))


def test_min_marker_drawn_where_the_minimum_is() -> None:
    # Off-centre minimum at (0.5, 0.25): the marker must land in the upper-right quadrant,
    # which also checks that y grows upwards and x to the right.
    x, y, z = grid(15, 9, x0=0.5, y0=0.25)
    rows = canvas(contour_map(x, y, z, width=60, height=20, color=False))
    hits = [(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == MIN_MARKER]
    assert len(hits) == 1
    r, c = hits[0]
    assert c / len(rows[0]) == pytest.approx(0.75, abs=0.08)
    assert r / (len(rows) - 1) == pytest.approx(0.375, abs=0.1)
    no_mark = canvas(contour_map(x, y, z, width=60, height=20, color=False, mark_min=False))
    assert MIN_MARKER not in "".join(no_mark)


def test_nan_patch_is_skipped() -> None:
    x, y, z = grid(31, 21)
    z[5:15, 8:22] = np.nan  # a hole around the minimum, e.g. failed evaluations
    out = contour_map(x, y, z, width=80, height=24, color=False)
    assert_plain(out, 80, 24)
    m = MIN_RE.search(out)
    assert m is not None and float(m.group(1)) > 0  # the true minimum is inside the hole
    rows = canvas(out)
    # The centre of the hole has no iso-line through it (NaN is not drawn as zero).
    centre = [row[len(row) // 2 - 3 : len(row) // 2 + 3] for row in rows[9:13]]
    assert not BRAILLE.search("".join(centre))


def test_all_nan_and_constant_do_not_crash() -> None:
    x, y, z = grid()
    out = contour_map(x, y, np.full_like(z, np.nan), width=50, height=10, color=False)
    assert_plain(out, 50, 10)
    assert "no finite values" in out
    out = contour_map(x, y, np.ones_like(z), width=50, height=10, color=False)
    assert_plain(out, 50, 10)
    assert "constant" in out


@pytest.mark.parametrize("shape", [(1, 15), (9, 1), (1, 1)])
def test_single_row_or_column_falls_back_to_curve(shape: tuple[int, int]) -> None:
    ny, nx = shape
    x, y, z = grid(nx, ny)
    out = contour_map(x, y, z, width=50, height=12, color=False)
    assert_plain(out, 50, 12)
    assert MIN_RE.search(out)


def test_levels_count_and_sequence_come_from_the_spec() -> None:
    x, y, z = grid()  # 0 to 3
    assert np.allclose(grid_spec(x, y, z, levels=3).levels, [0.75, 1.5, 2.25])
    assert np.allclose(grid_spec(x, y, z, levels=[1.5, np.nan, 0.5]).levels, [0.5, 1.5])
    out = contour_map(x, y, z, levels=[0.5, 1.0], color=False)
    assert "levels 0.5..1" in out


def test_iso_line_geometry_circle() -> None:
    x = y = np.linspace(-2, 2, 41)
    xx, yy = np.meshgrid(x, y)
    (xs, ys), (xe, _) = iso_lines(x, y, xx**2 + yy**2, [1.0, 10.0])
    ok = np.isfinite(xs)
    assert ok.sum() > 20
    assert np.allclose(np.hypot(xs[ok], ys[ok]), 1.0, atol=0.01)
    assert xe.size == 0  # level outside the data: nothing to draw


def test_iso_lines_joined_by_nan() -> None:
    # Two separate wells -> two loops at the same level, joined into one NaN-separated array.
    x = np.linspace(-2, 2, 41)
    y = np.linspace(-1, 1, 21)
    xx, yy = np.meshgrid(x, y)
    z = np.minimum((xx - 1) ** 2, (xx + 1) ** 2) + yy**2
    ((xs, ys),) = iso_lines(x, y, z, [0.25])
    assert np.isnan(xs).sum() == 1 and np.isnan(ys).sum() == 1
    left, right = np.split(xs, [int(np.flatnonzero(np.isnan(xs))[0])])
    assert {np.sign(np.nanmean(left)), np.sign(np.nanmean(right))} == {-1.0, 1.0}


def test_plotext_breaks_lines_at_nan() -> None:
    # contour_map relies on this: one plot() call per level with NaN between polylines.
    plt.clear_figure()
    plt.limit_size(False, False)
    plt.plotsize(40, 8)
    plt.theme("clear")
    plt.plot([0.0, 1.0, np.nan, 3.0, 4.0], [0.0, 0.0, np.nan, 0.0, 0.0], marker="braille")
    plt.xlim(0, 4)
    plt.ylim(-1, 1)
    rows = canvas(re.sub(r"\x1b\[[0-9;]*m", "", plt.build()))
    mid = "".join(row[len(row) // 2 - 2 : len(row) // 2 + 2] for row in rows)
    assert not BRAILLE.search(mid)
    assert BRAILLE.search("".join(rows))


def test_curve_plot_with_nan_gap() -> None:
    t = np.arange(30.0)
    loss = np.exp(-t / 8)
    loss[10:14] = np.nan
    acc = 100 - 60 * np.exp(-t / 8)
    acc[-3:] = np.nan
    out = curve_plot(
        t,
        {"train": loss, "test": 1.1 * loss},
        {"acc": acc},
        width=70,
        height=18,
        color=False,
        title="digits",
    )
    assert_plain(out, 70, 18)
    assert "digits" in out and "accuracy (%)" in out
    assert out.count("train") == 1  # legend label only on the first run
    assert "├" in out  # right-hand axis ticks
    # A coloured run keeps a single colour across the gap.
    coloured = curve_plot(t, {"train": loss}, width=70, height=18)
    assert len(set(re.findall(r"\x1b\[38;[0-9;]*m", coloured))) == 1


def test_curve_plot_all_nan_and_single_point() -> None:
    t = np.arange(5.0)
    assert_plain(curve_plot(t, {"a": np.full(5, np.nan)}, color=False), 80, 20)
    assert_plain(curve_plot(t[:1], {"a": np.ones(1)}, {"b": np.ones(1)}, color=False), 80, 20)


@pytest.mark.parametrize(("base", "step"), [(0.001, 0.001), (1.0001, 0.0001)])
@pytest.mark.parametrize("kind", ["contour", "filled", "heatmap"])
def test_compare_scale_labels_of_a_narrow_range_are_distinct(
    kind: str, base: float, step: float
) -> None:
    """The colour bar's ends (and a contour map's level range) of two files on one scale over
    0.001..0.004 or 1.0001..1.0004 never read the same ("1 ... 1", "0.00 ... 0.00")."""
    from tui_landscape.plots.spec import grid_spec, levels_for, limits_for
    from tui_landscape.plots.terminal import draw

    x, y, z = grid(21, 21)  # 0 to 3
    zs = [base + step * z, base + step * z[::-1, ::-1] / 2]
    joined = np.concatenate([a.ravel() for a in zs])
    lv = levels_for(joined)
    scale = (lv, limits_for(joined, lv))
    for a in zs:
        out = draw(grid_spec(x, y, a, kind=kind, scale=scale), width=60, height=16, color=False)
        if kind == "contour":
            lo, hi = re.search(r"levels (\S+)\.\.(\S+)", out).groups()
            want = lv[0], lv[-1]
        else:
            lo, hi = re.search(r"colour: (\S+) \S+ (\S+)", out.splitlines()[-1]).groups()
            want = scale[1]
        assert lo != hi, out
        assert (float(lo), float(hi)) == pytest.approx(want, rel=1e-4)


# --- every map kind draws the same overlays ------------------------------------------------


def plot_area(out: str) -> list[str]:
    """The cells of a map: inside plotext's frame (contour), or right of a heat map's axis."""
    if "┌" in out:
        return canvas(out)
    rows = out.split("\n")
    bottom = next(i for i, r in enumerate(rows) if "└" in r)
    return [r.split("│", 1)[1] for r in rows[:bottom] if "│" in r]


def cells_of(rows: list[str], ch: str) -> list[tuple[float, float]]:
    """Where ``ch`` is drawn, as (x, y) fractions of the area: 0 left/bottom, 1 right/top."""
    h, w = len(rows) - 1, len(rows[0]) - 1
    return [
        (c / w, 1 - r / h) for r, row in enumerate(rows) for c, ch_ in enumerate(row) if ch_ == ch
    ]


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("kind", ["contour", "filled", "heatmap"])
def test_every_map_kind_draws_the_cursor_the_best_point_and_the_path(kind, color) -> None:
    """After `k` in the app the cursor, the minimum and a PCA path stay on the map (the heat
    and filled maps drew none of them)."""
    x, y, z = grid(17, 9, x0=0.5, y0=0.25)  # the minimum at (0.5, 0.25), a grid point
    path = (np.array([-0.5, -0.25, 0.0, 0.25]), np.array([0.5, 0.25, 0.0, -0.5]))
    spec = grid_spec(x, y, z, kind=kind, cursor=(-1.0, -1.0), path=path, title=kind)
    out = re.sub(r"\x1b\[[0-9;]*m", "", draw(spec, width=70, height=22, color=color))
    assert "min 0 at (0.5, 0.25)" in out.split("\n")[0]  # the title names the best point
    rows = plot_area(out)
    frac = lambda px, py: pytest.approx(((px + 1) / 2, (py + 1) / 2), abs=0.07)  # noqa: E731
    assert cells_of(rows, MIN_MARKER) == [frac(0.5, 0.25)]
    assert cells_of(rows, "+") == [frac(-1, -1)]
    assert cells_of(rows, "o") == [frac(-0.5, 0.5)]  # the path's start
    assert cells_of(rows, "*") == [frac(0.25, -0.5)]  # and its end
    dots = cells_of(rows, "•")  # the path between them
    assert len(dots) >= 4
    for fx, fy in dots:  # on the polyline: x falls from -0.5 to 0.25 as y falls from 0.5
        assert -0.5 - 0.1 <= 2 * fx - 1 <= 0.25 + 0.1 and -0.5 - 0.1 <= 2 * fy - 1 <= 0.5 + 0.1
    bare = draw(grid_spec(x, y, z, kind=kind, mark_min=False), width=70, height=22, color=False)
    assert not {MIN_MARKER, "+", "o", "*", "•"} & set("".join(plot_area(bare)))


@pytest.mark.parametrize("kind", ["filled", "heatmap"])
def test_an_accuracy_heat_map_marks_its_maximum(kind) -> None:
    x, y, z = grid(17, 9, x0=-0.5, y0=-0.25)
    spec = grid_spec(x, y, 90 - z, kind=kind, best="max", loss=False)
    out = draw(spec, width=70, height=22, color=False)
    assert "max 90 at (-0.5, -0.25)" in out and "min " not in out
    assert cells_of(plot_area(out), MIN_MARKER) == [pytest.approx((0.25, 0.375), abs=0.07)]


# --- the kinds' registry ---------------------------------------------------------------------


def test_every_plot_kind_has_a_terminal_and_a_figure_renderer() -> None:
    from tui_landscape.plots import export, kinds, terminal

    assert set(terminal.RENDERERS) == set(kinds.DRAWN_KINDS) == set(export.FIGURES)
    assert set(kinds.KINDS) - set(kinds.DRAWN_KINDS) == {"auto", "ratio"}  # resolved to others
    x, y, z = grid()
    for kind in ("auto", *kinds.SURFACE_KINDS):  # every kind a map can be asked as is drawn
        assert grid_spec(x, y, z, kind=kind).kind in kinds.DRAWN_KINDS
    with pytest.raises(ConfigError, match="for --export only"):  # plotext has no 3D view
        draw(grid_spec(x, y, z, kind="surface3d"))


def test_an_unknown_kind_raises_naming_the_kinds() -> None:
    from dataclasses import replace

    from tui_landscape.plots import export

    spec = replace(grid_spec(*grid()), kind="wireframe")
    names = "contour, filled, heatmap, surface3d, curve, density, but got 'wireframe'"
    with pytest.raises(ConfigError, match=names):
        draw(spec)
    pytest.importorskip("matplotlib")
    with pytest.raises(ConfigError, match=names):  # it fell through to a 3D surface
        export.spec_figure(spec)
    with pytest.raises(ConfigError, match="auto, contour, filled, heatmap, surface3d, ratio"):
        grid_spec(*grid(), kind="wireframe")
