"""Maps whose rim explodes (deep nets without shortcuts: 1e6..1e9 at the edges) still show the
basin: in `plot` (terminal), the export (matplotlib) and the app (issue 25, item 8)."""

from __future__ import annotations

import asyncio
import re
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.formats import Provenance, SurfaceWriter
from engine.grid import Grid
from tui_landscape.app import create_app
from tui_landscape.cli import app as cli
from tui_landscape.plots.export import _Scale
from tui_landscape.plots.spec import (
    REF_VMAX,
    grid_spec,
    level_fraction,
    levels_for,
    limits_for,
    rim_rises,
)
from tui_landscape.plots.terminal import draw

X = np.linspace(-1, 1, 21)
BASIN_R = 0.6  # inside: a bowl from 0.3 to 1.02; outside: exp growth to ~5e8 at the corners
BASIN_TOP = 0.3 + 2 * BASIN_R**2


def rim_surface() -> np.ndarray:
    xx, yy = np.meshgrid(X, X)
    r = np.hypot(xx, yy)
    return 0.3 + 2 * r**2 + np.where(r > BASIN_R, np.expm1(25 * (r - BASIN_R)), 0.0)


def in_basin(levels: np.ndarray) -> int:
    return int(np.sum((levels > 0.3) & (levels < BASIN_TOP)))


def test_an_exploding_rim_gets_levels_in_the_basin_and_colours_per_level():
    z = rim_surface()
    assert z.max() > 1e8
    lv = levels_for(z)
    assert in_basin(lv) >= 4 and lv[-1] > 1e6  # the basin, and the rim too
    assert np.all(np.diff(lv) > 0)
    # Before: 10 levels log-spaced from the minimum to the top, none below 1.6 (blank basin).
    old = np.geomspace(z.min(), z.max(), 12)[1:-1]
    assert in_basin(old) == 0
    spec = grid_spec(X, X, z, kind="filled")
    assert spec.level_colors and np.array_equal(spec.levels, lv)
    # Colours step evenly from level to level: the basin takes a good share of the ramp.
    frac = level_fraction(np.array([0.3, BASIN_TOP]), spec.levels, spec.vmin, spec.vmax)
    assert frac[1] - frac[0] > 0.25
    # A count (the app's +/-) splits the same way: half up to the basin's edge (at most
    # REF_VMAX above the minimum), half above.
    six = levels_for(z, 6)
    assert six.size == 6 and np.sum(six <= 0.3 + REF_VMAX) == 3 and in_basin(six) >= 1


def test_ordinary_maps_keep_their_levels():
    xx, yy = np.meshgrid(X, X)
    bowl = xx**2 + 2 * yy**2 + 0.1  # the reference's levels
    deep = 1e-3 + 5 * (xx**2 + yy**2)  # a deep basin: log-spaced levels, as before
    for z in (bowl, deep):
        assert rim_rises(z) is None and not grid_spec(X, X, z).level_colors
    ref = levels_for(bowl)
    assert ref.size >= 5 and np.allclose(ref, 0.1 + 0.5 * np.arange(ref.size))
    assert np.allclose(levels_for(deep), np.geomspace(deep.min(), deep.max(), 12)[1:-1])
    acc = 100 - rim_surface()  # not a loss: its own range, evenly spaced
    assert not grid_spec(X, X, acc, loss=False).level_colors


def test_given_levels_limits_or_log_override_the_rule():
    z = rim_surface()
    ref = levels_for(z, np.arange(0.1, 10, 0.5))
    assert np.allclose(ref, np.arange(0.1, 10, 0.5))
    assert not grid_spec(X, X, z, levels=np.arange(0.1, 10, 0.5)).level_colors
    assert not grid_spec(X, X, z, vmin=0.3, vmax=REF_VMAX).level_colors
    logged = grid_spec(X, X, z, log=True)
    assert logged.log and not logged.level_colors
    assert np.allclose(logged.levels, np.geomspace(z.min(), z.max(), 15))


def test_terminal_maps_show_the_basin():
    z = rim_surface()
    contour = draw(grid_spec(X, X, z, kind="contour"), width=70, height=24, color=False)
    assert "levels 0.3" in contour  # the first level sits just above the minimum
    heat = draw(grid_spec(X, X, z, kind="heatmap"), width=70, height=24, color=True)
    assert "(by level)" in heat
    # The text row through the minimum: the middle half of its cells (the basin) takes
    # several colours; on a linear scale up to 1e8 it was one colour.
    rows = [line.split("│", 1)[1] for line in heat.splitlines() if "│" in line][:-1]
    cells = re.findall(r"\x1b\[38;2;(\d+;\d+;\d+)m", rows[len(rows) // 2])
    basin = cells[len(cells) // 4 : 3 * len(cells) // 4]
    assert len(set(basin)) >= 4, basin


def test_the_export_colours_each_level_an_even_step_apart():
    z = rim_surface()
    spec = grid_spec(X, X, z, kind="heatmap")
    scale = _Scale(spec, [z])
    got = np.asarray(scale.norm(spec.levels))
    lo, hi = spec.vmin, spec.vmax
    knots = np.unique(np.concatenate([[lo], spec.levels, [hi]]))
    assert np.allclose(got, np.interp(spec.levels, knots, np.linspace(0, 1, knots.size)))
    assert np.allclose(np.diff(got), np.diff(got)[0])  # even steps
    # The shared scale of `compare` carries the rule as its third item.
    lv = levels_for(z)
    shared = grid_spec(X, X, z, scale=(lv, limits_for(z, lv), True))
    assert shared.level_colors
    assert not grid_spec(X, X, z, scale=(lv, limits_for(z, lv))).level_colors


def rim_file(path):
    g = Grid.parse("-1:1:21", "-1:1:21")
    z = rim_surface()
    with SurfaceWriter.create(path, g, ["train_loss"], Provenance(), "d.h5") as w:
        for k, v in enumerate(z.ravel()):
            w.record(k, {"train_loss": float(v)})
    return path


def test_plot_and_its_export_draw_the_basin(tmp_path):
    f = rim_file(tmp_path / "rim.h5")
    r = CliRunner().invoke(cli, ["plot", str(f), "--kind", "filled"])
    assert r.exit_code == 0, r.output
    assert "(by level)" in r.output
    lv = re.search(r"levels ([\d.e+]+)\.\.", r.output)
    assert lv is not None and float(lv[1]) < BASIN_TOP
    out = tmp_path / "rim.png"
    r = CliRunner().invoke(cli, ["plot", str(f), "--kind", "filled", "--export", str(out)])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 1000


def test_the_app_shows_the_basin_and_steps_its_levels(tmp_path):
    from tui_landscape.screens.plot import PlotScreen

    f = rim_file(tmp_path / "rim.h5")

    async def run() -> None:
        app = create_app(f)
        async with app.run_test(size=(100, 32)) as pilot:
            deadline = time.monotonic() + 60
            while not (isinstance(app.screen, PlotScreen) and app.screen.view.surface):
                assert time.monotonic() < deadline, "the plot screen did not open"
                await pilot.pause(0.05)
            v = app.screen.view
            assert in_basin(v.spec().levels) >= 4 and v.spec().level_colors
            await pilot.press("minus", "minus")
            assert v.spec().levels.size == v.levels and in_basin(v.spec().levels) >= 2

    asyncio.run(run())


@pytest.mark.parametrize("n", [1, 2, 3, 40])
def test_any_count_gives_that_many_increasing_levels(n):
    lv = levels_for(rim_surface(), n)
    assert lv.size == n and np.all(np.diff(lv) > 0)


def test_compare_shares_the_rule_across_files(tmp_path):
    from engine.formats import read_surface
    from tui_landscape.plots.spec import resolve_compare

    files = [read_surface(rim_file(tmp_path / f"{n}.h5")) for n in "ab"]
    specs = resolve_compare(files, kind="filled")
    assert all(s.level_colors for s in specs)
    assert np.array_equal(specs[0].levels, specs[1].levels) and in_basin(specs[0].levels) >= 4
