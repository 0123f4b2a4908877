"""Difference maps (issue 26): ``B - A`` of two surfaces over the same grid and directions, in
``compare --diff`` and the app's compare screen (``d``); other grids or directions refused."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.difference import surface_difference
from engine.errors import ConfigError
from engine.formats import Provenance, SurfaceWriter, read_surface
from engine.grid import Grid
from tests.test_tui import compare_read, listed, sync, wait_for
from tui_landscape.cli import app as cli
from tui_landscape.plots.difference import resolve_difference
from tui_landscape.plots.terminal import draw

runner = CliRunner()
HASH = "sha256:" + "ab" * 32


def write(path, a=1.0, *, x="-1:1:9", y="-1:1:7", dir_hash=HASH, dir_file="d.h5", skip=()):
    """``a x^2 + 2 y^2`` (or ``a x^2`` in 1D); ``skip``: points left unfinished."""
    g = Grid.parse(x, y)
    xs = g.x.coordinates()
    if y:
        X, Y = np.meshgrid(xs, g.y.coordinates())
        z = a * X**2 + 2 * Y**2
    else:
        z = a * xs**2
    prov = Provenance(dir_hash=dir_hash, dir_type="weights")
    with SurfaceWriter.create(path, g, ["train_loss", "train_acc"], prov, dir_file) as w:
        for k, v in enumerate(z.ravel()):
            if k not in skip:
                w.record(k, {"train_loss": float(v), "train_acc": 90.0 - float(v)})
    return path


def invoke(*args):
    return runner.invoke(cli, [str(a) for a in args])


def test_the_difference_is_b_minus_a_and_nan_where_either_is_missing(tmp_path):
    a = read_surface(write(tmp_path / "a.h5", 1.0, skip={0}))
    b = read_surface(write(tmp_path / "b.h5", 3.0, skip={5}))
    d = surface_difference(a, b, "train_loss")
    expected = b.values["train_loss"] - a.values["train_loss"]
    ok = np.ones(d.size, bool)
    ok[[0, 5]] = False
    assert np.allclose(d.ravel()[ok], expected.ravel()[ok])  # 2 x^2 where both finished
    X, _ = np.meshgrid(a.x, a.y)
    assert np.allclose(d.ravel()[ok], (2 * X**2).ravel()[ok])
    assert np.isnan(d.ravel()[[0, 5]]).all()
    spec = resolve_difference(a, b)
    assert spec.vmin == -spec.vmax == -np.nanmax(np.abs(d))  # symmetric about 0
    assert np.isclose(spec.levels, 0).any() and spec.kind == "heatmap"


@pytest.mark.parametrize(
    ("other", "said"),
    [
        ({"dir_hash": "sha256:" + "cd" * 32}, "the directions differ"),
        ({"x": "-1:1:11"}, "the grids differ"),
        ({"y": ""}, "is 1D"),
        ({"dir_hash": "", "dir_file": "other.h5"}, "cannot be shown to be the same"),
    ],
)
def test_files_over_other_grids_or_directions_are_refused_naming_what(tmp_path, other, said):
    a = read_surface(write(tmp_path / "a.h5"))
    b = read_surface(write(tmp_path / "b.h5", 2.0, **other))
    with pytest.raises(ConfigError, match=said):
        surface_difference(a, b, "train_loss")
    r = invoke("compare", "--diff", a.path, b.path)
    assert r.exit_code == 2 and said in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_same_direction_file_without_a_hash_is_accepted(tmp_path):
    a = read_surface(write(tmp_path / "a.h5", dir_hash=""))
    b = read_surface(write(tmp_path / "b.h5", 2.0, dir_hash=""))
    assert np.nanmax(surface_difference(a, b, "train_loss")) == pytest.approx(1.0)


def test_compare_diff_draws_b_minus_a_with_its_sign_labelled(tmp_path):
    a, b = write(tmp_path / "a.h5", 3.0), write(tmp_path / "b.h5", 1.0, skip={0})
    r = invoke("compare", "--diff", a, b, "--width", 70, "--height", 16)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("b.h5 - a.h5: train_loss")
    assert "colour: -2 " in r.stdout and r.stdout.split("colour: -2 ")[1].split()[1] == "2"
    assert "'.' < 0: b.h5 lower than a.h5; '@' > 0: b.h5 higher" in r.stdout
    # B is lower everywhere but on x = 0: its cells are the lowest shades, never the highest.
    body = "\n".join(lines[1:12])
    assert "." in body and "@" not in body
    # (-1, -1) is unfinished in b: the first lowest point is the next one along x = 1.
    assert "from -2 at (1, -1) to +0 at (0, -1)" in r.stdout
    assert "(1 missing in either file)" in r.stdout
    assert "sharpest" not in r.stdout  # the difference, not the side-by-side table


def test_compare_diff_takes_two_files_and_no_log_scale(tmp_path):
    a, b, c = (write(tmp_path / f"{n}.h5") for n in "abc")
    r = invoke("compare", "--diff", a, b, c)
    assert r.exit_code == 2 and "exactly two files" in r.stderr
    r = invoke("compare", "--diff", a, b, "--log")
    assert r.exit_code == 2 and "no log scale" in r.stderr


def test_a_1d_difference_is_a_curve_and_the_colour_map_diverges(tmp_path):
    a = read_surface(write(tmp_path / "a.h5", 1.0, y=""))
    b = read_surface(write(tmp_path / "b.h5", 2.0, y=""))
    spec = resolve_difference(a, b)
    assert spec.kind == "curve" and list(spec.series) == ["b.h5 - a.h5"]
    assert np.allclose(spec.series["b.h5 - a.h5"], a.x**2)
    text = draw(spec, width=60, height=14, color=False)
    assert text.splitlines()[-1] == "< 0: b.h5 lower than a.h5; > 0: b.h5 higher"
    assert len(text.splitlines()) == 14  # the sign's line is within the height asked for


def test_compare_diff_exports_a_diverging_map(tmp_path):
    pytest.importorskip("matplotlib")
    from tui_landscape.plots.export import spec_figure

    a, b = write(tmp_path / "a.h5", 3.0), write(tmp_path / "b.h5", 1.0)
    r = invoke("compare", "--diff", a, b, "--export", tmp_path / "d.png", "--dpi", 40)
    assert r.exit_code == 0 and (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG", r.output
    fig = spec_figure(resolve_difference(read_surface(a), read_surface(b), figure=True))
    mesh = fig.axes[0].collections[0]
    assert mesh.cmap.name.startswith("RdBu_r") and mesh.norm.vmin == -mesh.norm.vmax
    assert "b.h5 lower than a.h5" in fig.axes[1].get_ylabel()  # the colour bar says the sign


@sync
async def test_d_on_the_compare_screen_toggles_the_difference(tmp_path):
    from tui_landscape.app import create_app
    from tui_landscape.screens.compare import CompareScreen

    a, b = write(tmp_path / "a.h5", 1.0), write(tmp_path / "b.h5", 3.0)
    app = create_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await listed(pilot)
        app.push_screen(CompareScreen([a, b]))
        await compare_read(pilot)
        screen = app.screen
        panes = [screen.query_one(f"#pane{k}") for k in (0, 1)]
        numbers = screen.query_one("#numbers")
        before = str(panes[0].content)
        await pilot.press("d")
        await wait_for(pilot, lambda: "b.h5 - a.h5: train_loss" in str(panes[0].content))
        assert screen.difference and not panes[1].display
        await wait_for(pilot, lambda: panes[0].size.width > 90)  # the whole width
        assert "b.h5 higher" in str(panes[0].content)
        assert "b.h5 - a.h5 (train_loss): from +0" in str(numbers.render())
        await pilot.press("d")
        await wait_for(pilot, lambda: str(panes[0].content) == before)
        assert panes[1].display and "a.h5: min" in str(numbers.render())
        assert a.exists() and b.exists()  # the browser's `d` (delete) is not the one pressed
        # Other grids: refused in one notification, and the side-by-side view stays.
        c = write(tmp_path / "c.h5", x="-1:1:5")
        app.pop_screen()
        app.push_screen(CompareScreen([a, c]))
        await compare_read(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: any("grids differ" in n.message for n in app._notifications))
        assert app.screen.difference is False


def test_in_colour_the_terminal_map_diverges_from_grey_and_names_blue_and_red(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("NO_COLOR", raising=False)
    a = read_surface(write(tmp_path / "a.h5", 1.0))
    b = read_surface(write(tmp_path / "b.h5", -1.0))  # lower at the sides, equal on x = 0
    text = draw(resolve_difference(a, b), width=70, height=14, color=True)
    *body, sign = text.splitlines()
    blue, red = "\x1b[38;2;70;110;255m█", "\x1b[38;2;240;60;40m█"
    assert sign.startswith(blue) and f"{red}\x1b[0m > 0: b.h5 higher" in sign
    assert "38;2;150;150;160m" in "".join(body)  # 0 (x = 0) is grey, not the loss ramp's green
    assert "38;2;60;210;80m" not in "".join(body)
