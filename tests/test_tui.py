"""The Textual app, driven by Pilot: every flow waits on conditions and workers, never sleeps."""

from __future__ import annotations

import asyncio
import functools
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Button, DataTable, Input, RichLog

from engine.config import load_config
from engine.formats import Provenance, SurfaceWriter, read_surface
from engine.grid import Grid
from engine.run import prepare
from tests.conftest import REPO
from tui_landscape.app import create_app
from tui_landscape.screens.browser import BrowserScreen
from tui_landscape.screens.compare import CompareScreen
from tui_landscape.screens.help import HelpScreen
from tui_landscape.screens.plot import PlotScreen
from tui_landscape.screens.setup import SetupScreen


def small_file(path: Path, a: float = 1.0, unfinished=()) -> Path:
    g = Grid.parse("-1:1:9", "-1:1:7")
    x, y = g.x.coordinates(), g.y.coordinates()
    X, Y = np.meshgrid(x, y)
    z = a * X**2 + 2 * Y**2 + 0.05
    with SurfaceWriter.create(path, g, ["train_loss", "train_acc"], Provenance(), "d.h5") as w:
        for k, v in enumerate(z.ravel()):
            if k not in unfinished:
                w.record(k, {"train_loss": float(v), "train_acc": 90.0 - float(v)})
    return path


def sync(fn):
    """Run an async test with asyncio (no pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def wait_for(pilot, condition, timeout: float = 60.0) -> None:
    """Wait until ``condition()`` holds, letting the app run; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


@sync
async def test_plot_view_cursor_surfaces_kinds_and_slices(tmp_path):
    f = small_file(tmp_path / "s.h5", unfinished={0})
    app = create_app(f)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        screen = app.screen
        status = screen.query_one("#status")
        assert "train_loss at (x=0, y=0) = 0.05" in str(status.render())
        await pilot.press("right", "up")
        # x^2 + 2 y^2 + 0.05 at (0.25, 1/3)
        assert "(x=0.25, y=0.3333) = 0.334722" in str(status.render())
        await pilot.press("s")
        assert screen.view.name_ == "train_acc" and "train_acc at" in str(status.render())
        assert "max 89.95 at (0, 0)" in str(screen.view.render())  # an accuracy's best point
        for _ in range(2):  # auto (drawn as contour) -> filled -> heatmap
            await pilot.press("k")
        assert screen.view.kind == "heatmap"
        await pilot.press("r")
        assert screen.view.slice == "row" and "at y=" in str(screen.view.render())
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "escape")  # the help, then the slice: back on the map
        assert app.screen is screen and screen.view.slice is None
        assert "at y=" not in str(screen.view.render())
        await pilot.press("escape")
        assert isinstance(app.screen, BrowserScreen)


@sync
async def test_plus_and_minus_step_from_the_levels_the_map_shows(tmp_path):
    """`+` gave 12 whatever the map showed (here the reference's 0.1 to 2.6 every 0.5: 6; a
    map of ~20 got fewer): it stepped from a default of 10 that is never drawn."""
    f = small_file(tmp_path / "s.h5")
    app = create_app(f)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        await wait_for(pilot, lambda: app.screen.view.surface is not None)
        v = app.screen.view
        shown = v.spec().levels
        assert shown.size == 6 and "levels 0.1..2.6" in str(v.render())
        await pilot.press("plus")
        assert v.levels == 8 and v.spec().levels.size == 8
        await pilot.press("minus", "minus")
        assert v.levels == 4 and v.spec().levels.size == 4
        await wait_for(pilot, lambda: "levels 0.65..2.45" in str(v.render()))  # 4 in 0.05..3.05


@sync
async def test_a_1d_file_offers_no_row_or_column_slice(tmp_path):
    g = Grid.parse("-1:1:9", "")
    with SurfaceWriter.create(tmp_path / "one.h5", g, ["train_loss"], Provenance(), "d.h5") as w:
        for k, v in enumerate(g.x.coordinates()):
            w.record(k, {"train_loss": float(v * v)})
    app = create_app(tmp_path / "one.h5")
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        await wait_for(pilot, lambda: app.screen.view.surface is not None)
        await pilot.pause()
        keys = app.screen.active_bindings  # what the footer shows: check_action False hides
        assert "s" in keys and "r" not in keys and "c" not in keys, set(keys)
        await pilot.press("r")
        assert app.screen.view.slice is None


@sync
async def test_plot_view_state_is_reactive_one_draw_per_change(tmp_path, monkeypatch):
    """Setting the view's state redraws it (no redraw() call); changes made together draw
    once, and a repaint without a change draws nothing."""
    from tui_landscape.plots import terminal  # the view takes its draw from there, as it draws

    f = small_file(tmp_path / "s.h5")
    specs = []
    real = terminal.draw
    monkeypatch.setattr(terminal, "draw", lambda spec, **kw: specs.append(spec) or real(spec, **kw))
    app = create_app(f)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen) and specs)
        await pilot.pause()
        v, n = app.screen.view, len(specs)
        v.levels, v.kind, v.cursor = 4, "contour", (0, 0)  # three changes at once
        await wait_for(pilot, lambda: len(specs) > n)
        await pilot.pause()
        assert len(specs) == n + 1
        assert specs[-1].levels.size == 4 and specs[-1].cursor == (-1.0, -1.0)
        assert "train_loss at (x=-1, y=-1)" in str(app.screen.query_one("#status").render())
        v.refresh()
        await pilot.pause()
        assert len(specs) == n + 1  # the same state and size: the last text is reused
        assert not hasattr(v, "redraw")  # one path: setting state (the setup sets `surface`)
        v.surface = read_surface(f)  # a new Surface (the setup's each snapshot): drawn
        await wait_for(pilot, lambda: len(specs) == n + 2)
        v.slice = "column"
        await wait_for(pilot, lambda: specs[-1].kind == "curve")
        assert "at x=-1" in str(v.render())


@sync
async def test_browser_lists_marks_compares_and_deletes(tmp_path):
    small_file(tmp_path / "a.h5", a=0.5)
    small_file(tmp_path / "b.h5", a=4.0)
    app = create_app(tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await listed(pilot)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 2
        cells = dict(zip([str(c.label) for c in table.columns.values()],
                         [str(c) for c in table.get_row_at(0)], strict=True))  # fmt: skip
        assert (cells["file"], cells["kind"], cells["grid"], cells["done"]) == (
            "a.h5",
            "ours 2D",
            "9 x 7",
            "100%",
        )
        await pilot.press("space", "down", "space", "c")
        await compare_read(pilot)
        numbers = str(app.screen.query_one("#numbers").render())
        assert "a.h5: min 0.05" in numbers and "b.h5: min 0.05" in numbers
        await pilot.press("escape")
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert not (tmp_path / "b.h5").exists() and (tmp_path / "a.h5").exists()


async def compare_read(pilot) -> None:
    """The compare screen shown, its files read (in its worker) and drawn."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
    await wait_for(pilot, lambda: app.screen.surfaces is not None)
    await pilot.pause()


async def show_compare(pilot, paths: list[Path]) -> None:
    """The compare screen of ``paths`` over the app's browser, drawn."""
    await listed(pilot)
    pilot.app.push_screen(CompareScreen(paths))
    await compare_read(pilot)


@sync
async def test_compare_screen_writes_missing_numbers_as_info_does(tmp_path):
    """A grid coarser than the radius has no mean rise: "n/a", as `info`, never "nan"."""
    from engine.sharpness import format_sharpness, sharpness

    paths = []
    for name, a in (("a.h5", 0.5), ("b.h5", 4.0)):
        g = Grid.parse("-1:1:5", "-1:1:5")  # step 0.5 > r = 0.25
        X, Y = np.meshgrid(g.x.coordinates(), g.y.coordinates())
        with SurfaceWriter.create(tmp_path / name, g, ["train_loss"], Provenance(), "d.h5") as w:
            for k, v in enumerate((a * X**2 + Y**2).ravel()):
                w.record(k, {"train_loss": float(v)})
        paths.append(tmp_path / name)
    s = read_surface(paths[0])
    assert "n/a" in format_sharpness(sharpness(s.x, s.y, s.values["train_loss"]))[-1]
    app = create_app(tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await show_compare(pilot, paths)
        numbers = str(app.screen.query_one("#numbers").render())
        assert "mean rise r=0.25 n/a" in numbers, numbers
        assert "nan" not in numbers
        assert app.screen.check_action("next_kind", ()) is True  # 2D maps: `k` changes them


def grid_file(path: Path, x: str, y: str, a: float) -> Path:
    """a x^2 + 2 y^2 + 0.05 on the grid ``x`` by ``y``."""
    g = Grid.parse(x, y)
    X, Y = np.meshgrid(g.x.coordinates(), g.y.coordinates())
    with SurfaceWriter.create(path, g, ["train_loss"], Provenance(), "d.h5") as w:
        for k, v in enumerate((a * X**2 + 2 * Y**2 + 0.05).ravel()):
            w.record(k, {"train_loss": float(v)})
    return path


@sync
async def test_compare_screen_says_what_the_compare_command_says(tmp_path):
    """Grids that differ: the same note and the same verdict on the screen as on the command
    line (one function makes both, tui_landscape.comparison)."""
    from typer.testing import CliRunner

    from tui_landscape.cli import app as cli

    paths = [
        grid_file(tmp_path / "a.h5", "-1:1:21", "-1:1:21", a=0.5),
        grid_file(tmp_path / "b.h5", "-1:1:41", "-1:1:21", a=4.0),
    ]
    r = CliRunner().invoke(cli, ["compare", *map(str, paths), "--width", "60"])
    assert r.exit_code == 0, r.output
    printed = " ".join(r.stdout.split())  # rich folds long lines at 80 columns
    note = (
        "note: the grids differ (a.h5: x -1:1:21, y -1:1:21; b.h5: x -1:1:41, y -1:1:21); "
        "one colour scale, own axes"
    )
    verdict = (
        "sharpest by mean rise within r=0.25: b.h5; flattest: a.h5 (but the grids differ: "
        "the numbers agree only to within their sampling)"
    )
    assert note in printed and verdict in printed, printed
    app = create_app(tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await show_compare(pilot, paths)
        numbers = app.screen.query_one("#numbers")
        lines = str(numbers.render()).splitlines()
        assert lines[0].startswith("a.h5: min 0.05, curvature x 1, y 4")  # exact: quadratics
        assert lines[2:] == [verdict, note], lines
        assert numbers.size.height == 5  # all shown, not cut: 4 lines, the verdict wraps once


@sync
async def test_compare_of_1d_files_offers_no_kind_key(tmp_path):
    paths = []
    for name in ("a.h5", "b.h5"):
        g = Grid.parse("-1:1:9")
        with SurfaceWriter.create(tmp_path / name, g, ["train_loss"], Provenance(), "d.h5") as w:
            for k, v in enumerate(g.x.coordinates() ** 2):
                w.record(k, {"train_loss": float(v)})
        paths.append(tmp_path / name)
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await show_compare(pilot, paths)
        assert app.screen.check_action("next_kind", ()) is False
        keys = {b.binding.key for b in app.screen.active_bindings.values() if b.enabled}
        assert "k" not in keys and "s" in keys, keys


def setup_config(tmp_path: Path, grid: str = "-1:1:4") -> Path:
    cfg = load_config(
        REPO / "sample_configs" / "digits_2d.toml",
        ["model.checkpoint=", f"grid.x={grid}", f"grid.y={grid}", "compute.device=cpu"],
    )
    from engine.config import config_to_toml

    p = tmp_path / "setup.toml"
    p.write_text(config_to_toml(cfg))
    return p


async def save_as(pilot, path: Path, *, write_over: bool = False, full: bool = False) -> None:
    """Ctrl+S, then the path in the save dialog and Enter (twice where it writes over a file)."""
    from textual.widgets import Checkbox

    from tui_landscape.screens.save import SaveConfig

    app = pilot.app
    before = path.read_bytes() if path.exists() else None
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, SaveConfig))
    dialog = app.screen
    dialog.query_one("#save-path", Input).value = str(path)
    dialog.query_one("#full", Checkbox).value = full
    await pilot.pause()
    await pilot.press("enter")
    if write_over:
        await wait_for(pilot, lambda: dialog.confirming == path)
        assert path.read_bytes() == before  # nothing written before the user confirms
        assert "exists" in str(dialog.query_one("#save-warning").render())
        await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
    await wait_for(pilot, lambda: path.exists() and path.read_bytes() != before)


@sync
async def test_setup_validates_runs_live_and_saves_a_config_compute_runs_unchanged(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path))
    async with app.run_test(size=(140, 44)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        s = app.screen
        run = s.query_one("#run", Button)
        await wait_for(pilot, lambda: not run.disabled)
        s.query_one("#grid-x", Input).value = "1:-1:5"  # min > max: refused where it is typed
        # Checked once typing pauses (Run is off meanwhile): the error comes under the field.
        await wait_for(pilot, lambda: "grid.x" in str(s.query_one("#err-grid-x").render()))
        assert run.disabled
        s.query_one("#grid-x", Input).value = "-1:1:4"
        await wait_for(pilot, lambda: not run.disabled)
        log = s.query_one(RichLog)
        await pilot.press("ctrl+e")  # time one point
        await wait_for(pilot, lambda: any("ms per point" in str(line) for line in log.lines))
        s.query_one("#out", Input).value = str(tmp_path / "tui.h5")
        await save_as(pilot, tmp_path / "saved.toml")
        await wait_for(pilot, lambda: not run.disabled)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: (tmp_path / "tui.h5").exists())
        await app.workers.wait_for_complete()
        await wait_for(
            pilot, lambda: any("Done" in str(line) for line in s.query_one(RichLog).lines)
        )
        assert s.query_one("#live").surface.completed.all()
    done = read_surface(tmp_path / "tui.h5")
    assert done.n_done == 16
    # Headless parity: the saved setup, run by `compute`, gives the same surface.
    r = subprocess.run(
        [sys.executable, "-m", "tui_landscape", "compute", "saved.toml", "--out", "cli.h5"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    cli = read_surface(tmp_path / "cli.h5")
    for n in done.values:
        np.testing.assert_array_equal(done.values[n], cli.values[n])


@sync
async def test_cancelling_a_run_leaves_a_file_that_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path, "-1:1:15"))
    out = tmp_path / "c.h5"
    async with app.run_test(size=(140, 44)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        s = app.screen
        s.query_one("#out", Input).value = str(out)
        await wait_for(pilot, lambda: not s.query_one("#run", Button).disabled)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: s.job is not None and s.job.done >= 3)
        await pilot.press("ctrl+c")
        await app.workers.wait_for_complete()
    partial = read_surface(out)
    assert 3 <= partial.n_done < 225
    job = prepare(load_config(tmp_path / "setup.toml", ["grid.x=-1:1:15", "grid.y=-1:1:15"]), out)
    assert job.resumed
    job.run()
    assert read_surface(out).n_done == 225


def test_plot_screen_snapshot(snap_compare, tmp_path):
    f = small_file(tmp_path / "snap.h5")
    assert snap_compare(create_app(f), terminal_size=(100, 30))


async def listed(pilot) -> None:
    """Wait for the browser's listing worker and for its rows to reach the table."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, BrowserScreen))
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_browser_snapshot(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the title shows the folder: keep it the same in every run
    small_file(tmp_path / "one.h5")
    small_file(tmp_path / "two.h5", a=3.0, unfinished={1, 2, 3})
    # The browser shows creation times: fix them so the snapshot does not change by the second.
    for p in (tmp_path / "one.h5", tmp_path / "two.h5"):
        import h5py

        with h5py.File(p, "r+") as h:
            h.attrs["created"] = "2026-01-01T00:00:00+00:00"
    assert snap_compare(create_app(Path(".")), terminal_size=(110, 20), run_before=listed)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_real_app_in_tmux_shows_the_plot_and_the_footer(tmp_path):
    f = small_file(tmp_path / "t.h5")
    session = f"tl{int(time.time() * 1000) % 10**8}"
    # Under pytest, readline has put COLUMNS=80 and LINES=24 in the C environment, which the
    # pane would inherit and the app would believe over the pane's real 100x30.
    cmd = f"env -u COLUMNS -u LINES {sys.executable} -m tui_landscape tui {f}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd],
                   check=True)  # fmt: skip
    try:
        deadline, screen = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True).stdout  # fmt: skip
            # The map, its status line and the footer: each is drawn when it is ready.
            if all(t in screen for t in ("t.h5: train_loss", "train_loss at", "q Quit")):
                break
            time.sleep(0.2)
        assert "t.h5: train_loss" in screen and "min 0.05" in screen, screen
        footer = screen.rstrip().splitlines()[-1]
        assert "s Surface" in footer and "esc Back" in footer and "q Quit" in footer, footer
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@sync
async def test_a_worker_pool_runs_inside_the_app(tmp_path, monkeypatch):
    """Spawning inside a running Textual app needs the resource tracker started before it."""
    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path, "-1:1:3"))
    async with app.run_test(size=(140, 44)) as pilot:
        s = await opened(pilot)  # its fields are built after the first paint
        s.query_one("#compute-workers", Input).value = "2"
        s.query_one("#out", Input).value = str(tmp_path / "pool.h5")
        await wait_for(pilot, lambda: not s.query_one("#run", Button).disabled)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: (tmp_path / "pool.h5").exists())
        await app.workers.wait_for_complete()
    assert read_surface(tmp_path / "pool.h5").n_done == 9


@sync
async def test_model_list_with_counts_and_the_checkpoint_picker(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "model_3.pt").write_bytes(b"")
    app = create_app(setup_config(tmp_path))
    async with app.run_test(size=(140, 44)) as pilot:
        s = await opened(pilot)  # its fields are built after the first paint
        models = s.query_one("#model-list")
        await app.workers.wait_for_complete()  # the list is filled by a worker
        assert any("digits_mlp (17.2k)" in str(label) for label, _ in models._options)
        models.value = "digits_mlp"
        await wait_for(pilot, lambda: s.query_one("#model-arch", Input).value == "digits_mlp")
        await pilot.press("ctrl+o")
        from tui_landscape.screens.picker import FilePicker

        await wait_for(pilot, lambda: isinstance(app.screen, FilePicker))
        app.screen.dismiss(tmp_path / "runs" / "model_3.pt")  # as Enter on the file does
        await wait_for(
            pilot, lambda: s.query_one("#model-checkpoint", Input).value.endswith("model_3.pt")
        )


@sync
async def test_the_checkpoint_picker_sorts_numbers_as_numbers(tmp_path):
    from tui_landscape.screens.picker import CheckpointTree, FilePicker

    for name in ("model_1.pt", "model_10.pt", "model_11.pt", "model_2.pt", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    for name in ("run_10", "run_9"):
        (tmp_path / name).mkdir()
    app = create_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await listed(pilot)
        app.push_screen(FilePicker(tmp_path))
        await wait_for(pilot, lambda: app.screen.query(CheckpointTree))
        tree = app.screen.query_one(CheckpointTree)
        await wait_for(pilot, lambda: len(tree.root.children) == 6)
        names = [str(n.label) for n in tree.root.children]
        assert names == [
            "run_9",
            "run_10",
            "model_1.pt",
            "model_2.pt",
            "model_10.pt",
            "model_11.pt",
        ]


async def palette_titles(pilot) -> str:
    """The command palette's entries on the current screen (opened, read, closed)."""
    from textual.command import CommandList, CommandPalette

    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
    options = app.screen.query_one(CommandList)
    await wait_for(pilot, lambda: options.option_count > 0)
    await pilot.pause()
    text = "\n".join(
        str(options.get_option_at_index(i).prompt) for i in range(options.option_count)
    )
    await pilot.press("escape")
    await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette))
    return text


@sync
async def test_every_key_of_each_screen_is_in_the_help_and_the_palette(tmp_path, monkeypatch):
    """A key is written once, as a binding of its screen: the help (?) and the palette (ctrl+p)
    are made from the bindings, so each of them lists every key with what it does."""
    from tui_landscape.app import LandscapeApp
    from tui_landscape.commands import SCREENS, keys_of

    monkeypatch.chdir(tmp_path)
    f, g = small_file(tmp_path / "a.h5"), small_file(tmp_path / "b.h5", a=3.0)
    from tests.study_folder import make_study
    from tui_landscape.screens.study import StudyScreen

    study = make_study(tmp_path / "study", seeds=(0,), members=("bs16-wd0",), surfaces=False)
    app = create_app(tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await listed(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        shown = app.screen.query_one("Markdown").source
        await pilot.press("escape")
        for _, screen in (("app", LandscapeApp), *SCREENS):
            for b in screen.BINDINGS:
                assert b.tooltip, b  # every key says what it does
                (key,) = keys_of([b])
                assert all(f"`{k}`" in shown for k in key.keys), (b, shown)
                assert f"{' / '.join(f'`{k}`' for k in key.keys)} {b.tooltip}" in shown, b
        assert "`ctrl+e` Estimate" in shown and "`+` / `=` More contour levels" in shown
        # The palette of each screen: its own keys and the app's.
        opened = {
            BrowserScreen: lambda: None,
            PlotScreen: lambda: app.push_screen(PlotScreen(f)),
            CompareScreen: lambda: app.push_screen(CompareScreen([f, g])),
            SetupScreen: lambda: app.push_screen(SetupScreen(setup_config(tmp_path))),
            StudyScreen: lambda: app.push_screen(StudyScreen(study)),
        }
        for _, screen in SCREENS:
            opened[screen]()
            await wait_for(pilot, lambda s=screen: isinstance(app.screen, s))
            await pilot.pause()
            titles = await palette_titles(pilot)
            for b in [*screen.BINDINGS, *LandscapeApp.BINDINGS]:
                assert b.tooltip in titles, (screen, b, titles)
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:  # its box was 90 wide: text cut off
        await listed(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        box = app.screen.query_one("#help").region
        assert box.x >= 0 and box.right <= 80, box


def test_a_binding_added_once_is_in_the_help_and_the_palette(monkeypatch):
    """One new binding on a screen: the help lists it, and the palette's commands include it."""
    from textual.binding import Binding

    from tui_landscape.commands import help_markdown, keys_of

    new = Binding("z", "zoom", "Zoom", tooltip="Zoom in on the cursor")
    monkeypatch.setattr(PlotScreen, "BINDINGS", [*PlotScreen.BINDINGS, new])
    from tui_landscape.app import LandscapeApp

    text = help_markdown(LandscapeApp.BINDINGS)
    assert "- `z` Zoom in on the cursor" in text
    assert all(f" {b.tooltip or b.description}" in text for b in LandscapeApp.BINDINGS)
    assert keys_of(PlotScreen.BINDINGS)[-1].title == "Zoom in on the cursor"


def test_bare_command_without_a_terminal_prints_the_help():
    from typer.testing import CliRunner

    from tui_landscape.cli import app

    r = CliRunner().invoke(app, [])
    assert r.exit_code == 0 and "Usage" in r.stdout and "compute" in r.stdout


def _shown_keys() -> set[str]:
    """The dotted keys of the config sections the setup shows, read from the dataclasses."""
    import dataclasses
    import typing

    from engine.config import Config
    from tui_landscape.screens.setup import SECTIONS

    hints = typing.get_type_hints(Config)
    return {f"{s}.{f.name}" for s in SECTIONS for f in dataclasses.fields(hints[s])}


@sync
async def test_setup_offers_every_directions_kind_the_config_accepts(tmp_path, monkeypatch):
    import typing

    from textual.widgets import Select

    from engine.config import DirectionsConfig

    monkeypatch.chdir(tmp_path)
    accepted = typing.get_args(typing.get_type_hints(DirectionsConfig)["kind"])
    assert "hessian" in accepted
    app = create_app(setup_config(tmp_path))
    async with app.run_test(size=(140, 44)) as pilot:
        s = await opened(pilot)  # its fields are built after the first paint
        kind = s.query_one("#directions-kind", Select)
        assert [value for _, value in kind._options] == list(accepted)
        run = s.query_one("#run", Button)
        await wait_for(pilot, lambda: not run.disabled)
        kind.value = "hessian"  # the choice the hand-written list lacked
        await wait_for(pilot, lambda: s.cfg is not None and s.cfg.directions.kind == "hessian")
        # Run waits for the new setup's preflight (a worker), then opens again.
        await wait_for(pilot, lambda: not run.disabled)


@sync
async def test_setup_has_one_field_per_key_of_its_sections(tmp_path, monkeypatch):
    from textual.widgets import Select

    from tui_landscape.screens.setup import SECTIONS

    monkeypatch.chdir(tmp_path)
    assert SECTIONS == ("model", "data", "directions", "grid", "compute", "hessian")
    app = create_app(setup_config(tmp_path))
    async with app.run_test(size=(140, 44)) as pilot:
        s = await opened(pilot)  # its fields are built after the first paint
        widgets = [w for sec in SECTIONS for w in s.query_one(f"#sec-{sec}").query("Input, Select")]
        ids = {w.id for w in widgets} - {"model-list"}  # the built-in model names, beside arch
        assert ids == {k.replace(".", "-") for k in _shown_keys()}
        # A finite type is a Select of exactly its values; anything else is typed.
        for f in s.fields:
            widget = s.query_one(f"#{f.wid}")
            if f.choices is None:
                assert isinstance(widget, Input), f.key
            else:
                assert isinstance(widget, Select), f.key
                offered = {value for _, value in widget._options}
                assert (
                    {f.text(c) for c in f.choices}
                    <= offered
                    <= {f.text(c) for c in f.choices} | {widget.value}
                ), f.key
        # A list of Literals offers its non-empty subsets, the whole list first.
        splits = next(f for f in s.fields if f.key == "data.splits")
        texts = [splits.text(c) for c in splits.choices]
        assert texts == ['["train", "test"]', '["train"]', '["test"]']


def test_a_new_config_key_becomes_a_setup_field():
    """A key added to a section's dataclass is a field, its widget and doc from the key."""
    import dataclasses
    from typing import Literal

    from engine.config import Config, DataConfig
    from tui_landscape.screens.setup import setup_fields

    colour = dataclasses.field(default="red", metadata={"doc": "a new key"})
    Data = dataclasses.make_dataclass(
        "Data", [("colour", Literal["red", "blue"], colour)], bases=(DataConfig,), frozen=True
    )
    New = dataclasses.make_dataclass(
        "New", [("data", Data, dataclasses.field(default_factory=Data))], bases=(Config,),
        frozen=True,
    )  # fmt: skip
    fields = {f.key: f for f in setup_fields(["data"], New)}
    assert set(fields) == {k for k in _shown_keys() if k.startswith("data.")} | {"data.colour"}
    f = fields["data.colour"]
    assert (f.wid, f.doc, f.choices) == ("data-colour", "a new key", ("red", "blue"))


@sync
async def test_setup_names_bad_values_under_their_field_and_explains_the_focused_one(
    tmp_path, monkeypatch
):
    from textual.widgets import Collapsible

    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path))
    async with app.run_test(size=(140, 44)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        s = app.screen
        run = s.query_one("#run", Button)
        await wait_for(pilot, lambda: not run.disabled)
        err = s.query_one("#err-data-subset")
        s.query_one("#data-subset", Input).value = "many"  # a wrong type, named as the CLI does
        await wait_for(pilot, lambda: "`data.subset`" in str(err.render()))  # once typing pauses
        assert run.disabled
        assert "Expected `data.subset` to be an integer, but got 'many'." in str(err.render())
        s.query_one("#data-subset", Input).value = "0"
        await wait_for(pilot, lambda: not run.disabled and not err.display)
        # An error in a folded section unfolds it.
        compute = s.query_one("#sec-compute", Collapsible)
        assert compute.collapsed
        s.query_one("#compute-workers", Input).value = "0"
        await wait_for(
            pilot, lambda: "`compute.workers`" in str(s.query_one("#err-compute-workers").render())
        )
        assert "Expected `compute.workers` to be 1..1024 or 'auto'" in str(
            s.query_one("#err-compute-workers").render()
        )
        assert not compute.collapsed
        s.query_one("#grid-y", Input).focus()
        doc = s.query_one("#field-doc")
        await wait_for(
            pilot,
            lambda: (
                "grid.y: 'min:max:num' or 'auto' (as grid.x); empty for a 1D surface"
                in str(doc.render())
            ),
        )
        # A choice list opened by the mouse: the focus lands on its list inside, and its doc
        # shows all the same (the last text field's stayed).
        s.query_one("#data-download").query_one("SelectOverlay").focus()
        await wait_for(pilot, lambda: str(doc.render()).startswith("data.download:"))


@sync
async def test_saving_an_unchanged_setup_gives_back_the_config_it_opened(tmp_path, monkeypatch):
    """Every field's text reads back as its value, and the sections not shown are kept."""
    monkeypatch.chdir(tmp_path)
    opened = setup_config(tmp_path)
    cfg = load_config(
        opened,
        ["model.kwargs={width=4}", "data.mean=[0.5]", "data.std=[0.25]", "data.download=true",
         "data.splits=['test', 'train']", "compute.devices=['cpu']", "compute.channels_last=true",
         "compute.flush_seconds=0.5", "hessian.tol=0.01", "train.epochs=7", "output.path=o.h5",
         "data.root='2024'"],  # a name that reads as a number in TOML
    )  # fmt: skip
    from engine.config import config_to_toml

    opened.write_text(config_to_toml(cfg))
    app = create_app(opened)
    async with app.run_test(size=(140, 44)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        s = app.screen
        await wait_for(pilot, lambda: not s.query_one("#run", Button).disabled)
        await save_as(pilot, tmp_path / "saved.toml")
    assert load_config(tmp_path / "saved.toml") == cfg


@sync
async def test_fields_not_built_yet_keep_the_opened_values(tmp_path, monkeypatch):
    """Issue 17: only the first section is built before the first paint; until the others are,
    the setup reads their values from the opened config."""
    from tui_landscape.panels.config_form import ConfigForm

    monkeypatch.chdir(tmp_path)
    opened_ = setup_config(tmp_path)
    monkeypatch.setattr(ConfigForm, "_build", lambda self: None)  # the rest never built
    app = create_app(opened_)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        s = app.screen
        await wait_for(pilot, lambda: s.cfg is not None)
        assert not s.query("#compute-workers") and s.query("#model-arch")
        assert s.cfg == load_config(opened_)
        s.query_one("#model-arch", Input).value = "digits_mlp"  # a built field still counts
        await wait_for(pilot, lambda: s.cfg is not None and s.cfg.model.arch == "digits_mlp")
        assert s.cfg.grid == load_config(opened_).grid


def sample_copy(tmp_path: Path, name: str = "digits_2d.toml") -> Path:
    """A copy of a sample config (comments and all), run on the CPU with a small grid."""
    p = tmp_path / name
    text = (REPO / "sample_configs" / name).read_text()
    p.write_text(text.replace('"-1:1:21"', '"-1:1:3"'))
    return p


async def opened(pilot) -> SetupScreen:
    """The setup screen, once its config checks (and the preflight worker) have run."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SetupScreen))
    s = pilot.app.screen
    await wait_for(pilot, lambda: not s.query_one("#run", Button).disabled)
    return s


@sync
async def test_save_proposes_a_new_file_and_writes_over_one_only_when_confirmed(
    tmp_path, monkeypatch
):
    """Issue 17: Ctrl+S wrote over the opened config at once, comments lost, every key dumped."""
    import dataclasses

    from tui_landscape.screens.save import SaveConfig

    monkeypatch.chdir(tmp_path)
    path = sample_copy(tmp_path)
    original = path.read_text()
    app = create_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        s = await opened(pilot)
        s.query_one("#grid-x", Input).value = "-2:2:5"
        await wait_for(pilot, lambda: s.cfg is not None and s.cfg.grid.x == "-2:2:5")
        await pilot.press("ctrl+s")  # proposes a new file beside the opened one; Escape cancels
        await wait_for(pilot, lambda: isinstance(app.screen, SaveConfig))
        assert app.screen.query_one("#save-path", Input).value == str(tmp_path / "digits_2d-1.toml")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is s)
        assert path.read_text() == original
        await save_as(pilot, path, write_over=True)
        await save_as(pilot, tmp_path / "full.toml", full=True)
        await save_as(pilot, tmp_path / "new.toml")
        cfg = s.cfg
    text = path.read_text()
    assert text == original.replace('x = "-2:2:5"', "").replace('x = "-1:1:3"', 'x = "-2:2:5"')
    assert "# The checkpoint" in text  # the comments are kept
    assert load_config(path) == cfg
    # A new file has only the keys that differ from the defaults; 'every key' writes them all.
    new = (tmp_path / "new.toml").read_text()
    assert "[grid]" in new and "[train]" not in new and "[hessian]" not in new, new
    assert 'path = "digits_2d.h5"' in new  # compute of new.toml writes where the app runs
    assert load_config(tmp_path / "new.toml") == dataclasses.replace(
        cfg, output=dataclasses.replace(cfg.output, path="digits_2d.h5")
    )
    assert "[train]" in (tmp_path / "full.toml").read_text()
    assert load_config(tmp_path / "full.toml").grid == cfg.grid


@sync
async def test_the_output_file_is_computes_and_the_saved_config_keeps_it(tmp_path, monkeypatch):
    """Issue 17: the app defaulted to surface.h5 where `compute digits_2d.toml` writes
    digits_2d.h5, and the saved config lost the output file the app would write."""
    from typer.testing import CliRunner

    from tui_landscape.cli import app as cli

    monkeypatch.chdir(tmp_path)
    app = create_app(sample_copy(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        s = await opened(pilot)
        assert s.query_one("#out", Input).value == "digits_2d.h5"
        s.query_one("#model-checkpoint", Input).value = ""  # no recipe to train in this test
        s.query_one("#out", Input).value = "x.h5"
        await wait_for(pilot, lambda: s.cfg is not None and s.cfg.output.path == "x.h5")
        await save_as(pilot, tmp_path / "mine.toml")
    for _ in range(2):  # written, then resumed: the same file both times
        r = CliRunner().invoke(cli, ["compute", "mine.toml"])
        assert r.exit_code == 0, r.output
    assert read_surface(tmp_path / "x.h5").n_done == 9
    assert not (tmp_path / "mine.h5").exists() and not (tmp_path / "digits_2d.h5").exists()


@sync
async def test_ctrl_e_estimates_while_a_field_has_focus_and_stays_in_the_footer(
    tmp_path, monkeypatch
):
    """Issue 17: a focused Input took ctrl+e (end of line), and the footer dropped it."""
    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        s = await opened(pilot)
        assert isinstance(app.focused, Input)  # the first field has focus at open
        s.query_one("#grid-x", Input).focus()
        await pilot.pause()
        shown = s.active_bindings["ctrl+e"]
        assert shown.binding.action == "estimate" and shown.binding.show
        await pilot.press("ctrl+e")
        log = s.query_one(RichLog)
        await wait_for(pilot, lambda: any("Timing one point" in str(x) for x in log.lines))
        await app.workers.wait_for_complete()


@sync
async def test_a_recipe_of_another_model_is_refused_before_run(tmp_path, monkeypatch):
    """Issue 17: resnet50 with recipe:digits_cnn left Run enabled; the log said so after Run.
    The setup runs compute's preflight, and the message wraps under its field at 80x24."""
    monkeypatch.chdir(tmp_path)
    app = create_app(sample_copy(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        s = await opened(pilot)
        run = s.query_one("#run", Button)
        s.query_one("#model-arch", Input).value = "resnet50"
        await wait_for(pilot, lambda: run.disabled)
        err = s.query_one("#err-model-checkpoint")
        await wait_for(pilot, lambda: err.display)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert run.disabled
        text = str(err.render())
        assert "is a checkpoint of 'digits_cnn', but `model.arch` is 'resnet50'." in text, text
        assert err.size.height >= 2  # wrapped, not cut off
        assert s.query_one("#model-list").value == "resnet50"  # the model list follows arch
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert s.job is None and not (tmp_path / "digits_2d.h5").exists()
        started: list[object] = []  # ctrl+g is refused where Run is: no process started
        monkeypatch.setattr(
            "tui_landscape.detach.start_detached", lambda *a, **k: started.append(a)
        )
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert started == [] and run.disabled and err.display
        s.query_one("#model-arch", Input).value = "digits_cnn"
        await wait_for(pilot, lambda: not run.disabled and not err.display)
        # An output compute would refuse (engine.formats.check_output) is refused before Run.
        s.query_one("#out", Input).value = str(tmp_path / "missing" / "x.h5")
        summary = s.query_one("#summary")
        await wait_for(
            pilot, lambda: run.disabled and "folder does not exist" in str(summary.render())
        )
        s.query_one("#out", Input).value = ""
        await wait_for(pilot, lambda: not run.disabled)
        log = s.query_one(RichLog)
        s.log_line("error: " + "a long message that must wrap in the narrow log " * 4)
        await pilot.pause()
        width = log.scrollable_content_region.width
        assert len(log.lines) >= 3 and all(line.cell_length <= width for line in log.lines)


async def setup_painted(pilot) -> None:
    """The setup screen with its model list loaded and its checks done; the browser beneath
    may have posted a toast (no surface files in the folder), sooner or later: cleared."""
    await opened(pilot)
    await pilot.app.workers.wait_for_complete()
    pilot.app.clear_notifications()
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False  # the focused field's cursor: on, not on or off by timing
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_setup_screen_snapshot(snap_compare, tmp_path, monkeypatch, size):
    monkeypatch.chdir(tmp_path)
    app = create_app(REPO / "sample_configs" / "digits_2d.toml")
    assert snap_compare(app, terminal_size=size, run_before=setup_painted)


def toasts(app) -> str:
    return "\n".join(n.message for n in app._notifications)


async def run_again_to_the_end(pilot, s: SetupScreen) -> None:
    """Run comes back after an error, and a run started with it ends (its file resumable)."""
    run, log = s.query_one("#run", Button), s.query_one(RichLog)
    await wait_for(pilot, lambda: not run.disabled)
    await pilot.press("ctrl+r")
    from tui_landscape.screens.choose import Choose

    # Where its file exists Run asks, and resume is offered (it holds this setup's surface).
    done = lambda: any("Done: 9/9 points" in str(x) for x in log.lines)  # noqa: E731
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, Choose) or s.running or done())
    if isinstance(pilot.app.screen, Choose):
        await pilot.press("u")
    await wait_for(pilot, lambda: any("Done: 9/9 points" in str(x) for x in log.lines))
    await wait_for(pilot, lambda: not run.disabled and s.query_one("#cancel", Button).disabled)


@pytest.mark.parametrize(
    "where, error",
    [
        ("record", OSError(28, "No space left on device")),  # a full disk, mid-run
        ("prepare", RuntimeError("CUDA error: out of memory")),  # a torch error, as it starts
    ],
    ids=["full-disk", "torch-error"],
)
@sync
async def test_a_run_that_fails_says_why_and_gives_run_back(tmp_path, monkeypatch, where, error):
    """Any error of the run's worker, not only the engine's own: one line in the log and a
    toast, Cancel off and Run back (they ended the run silently, Cancel still on)."""
    import engine.run
    from engine.formats import SurfaceWriter

    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path, "-1:1:3"))
    async with app.run_test(size=(140, 44)) as pilot:
        s = await opened(pilot)
        run, cancel, log = (s.query_one("#run", Button), s.query_one("#cancel", Button),
                            s.query_one(RichLog))  # fmt: skip

        def fail(*args, **kwargs):
            raise error

        with monkeypatch.context() as m:
            if where == "record":
                m.setattr(SurfaceWriter, "record", fail)
            else:
                m.setattr(engine.run, "prepare", fail)
            await pilot.press("ctrl+r")
            line = f"error: the run failed: {type(error).__name__}: {error}"
            await wait_for(pilot, lambda: any(line in str(x) for x in log.lines))
            await wait_for(pilot, lambda: line in toasts(app))
            await wait_for(pilot, lambda: not run.disabled)
            assert cancel.disabled and s.job is None and not s.running
        if where == "record":  # the failed run let its file go: a new run resumes it
            await run_again_to_the_end(pilot, s)
    if where == "record":
        assert read_surface(tmp_path / "setup.h5").n_done == 9


@sync
async def test_a_preflight_that_raises_says_why_and_gives_run_back(tmp_path, monkeypatch):
    """The setup's check failing with an error of its own (not a setup error): said in one
    line, and Run comes back; pressed, it checks again and runs once the check passes."""
    import engine.build

    monkeypatch.chdir(tmp_path)

    def fail(cfg):
        raise RuntimeError("the data loader crashed")

    with monkeypatch.context() as m:
        m.setattr(engine.build, "preflight", fail)
        app = create_app(setup_config(tmp_path, "-1:1:3"))
        async with app.run_test(size=(140, 44)) as pilot:
            s = await opened(pilot)  # Run enabled: the check could not say
            line = "error: checking the setup failed: RuntimeError: the data loader crashed"
            await wait_for(pilot, lambda: line in toasts(app))
            assert line in str(s.query_one("#summary").render())
            assert s.checked is None and s.checking is None
            m.undo()
            await run_again_to_the_end(pilot, s)
            assert any("Checking the setup first" in str(x) for x in s.query_one(RichLog).lines)
    assert read_surface(tmp_path / "setup.h5").n_done == 9


@sync
async def test_the_plot_view_fits_sharpness_once_per_surface_not_per_cursor_move(
    tmp_path, monkeypatch
):
    import tui_landscape.screens.plot as plot

    fits = []
    real = plot.sharpness
    monkeypatch.setattr(plot, "sharpness", lambda *a, **k: fits.append(1) or real(*a, **k))
    f = small_file(tmp_path / "s.h5")
    app = create_app(f)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        status = app.screen.query_one("#status")
        await wait_for(pilot, lambda: "curvature" in str(status.render()))
        assert len(fits) == 1
        before = str(status.render())
        await pilot.press("left", "up", "left", "s", "s")  # moves, train_acc, train_loss again
        await wait_for(pilot, lambda: "train_loss at (x=-0.5, y=0.3333)" in str(status.render()))
        assert len(fits) == 1  # the curvature shown is the one fitted
        assert before.rsplit("curvature", 1)[1] == str(status.render()).rsplit("curvature", 1)[1]
        await pilot.press("f5")  # a new read: a new surface, fitted again
        await wait_for(pilot, lambda: len(fits) == 2)


@sync
async def test_compare_reads_and_fits_once_in_a_worker_and_keys_redraw_from_that(
    tmp_path, monkeypatch
):
    import threading

    import tui_landscape.comparison as comparison
    import tui_landscape.screens.compare as compare

    calls = []  # (what, on the UI thread)

    def spy(module, name):
        fn = getattr(module, name)

        def wrapped(*a, **k):
            calls.append((name, threading.current_thread() is threading.main_thread()))
            return fn(*a, **k)

        monkeypatch.setattr(module, name, wrapped)

    for module, name in (
        (compare, "read_surface"),
        (comparison, "sharpness"),
        (compare, "render_compare"),
    ):
        spy(module, name)
    paths = [small_file(tmp_path / "a.h5", a=0.5), small_file(tmp_path / "b.h5", a=4.0)]
    app = create_app(tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await show_compare(pilot, paths)
        reads = [c for c in calls if c[0] != "render_compare"]
        # Both files read, and both surfaces of each fitted, in the worker (off the UI thread).
        assert sorted(reads) == [("read_surface", False)] * 2 + [("sharpness", False)] * 4
        numbers = app.screen.query_one("#numbers")
        await pilot.press("s")  # train_acc: its numbers were fitted already
        await wait_for(pilot, lambda: "a.h5: min" in str(numbers.render()))
        await pilot.press("s", "k", "k", "k")  # train_loss; filled, heat map, contour again
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert [c for c in calls if c[0] != "render_compare"] == reads  # nothing read again
        draws = [c for c in calls if c[0] == "render_compare"]
        assert all(on_ui for _, on_ui in draws)
        # One drawing per state shown: back to a kind or a size seen before is not drawn.
        assert len(draws) == 6, draws  # loss, acc, filled, heat map, and the 100x30 panes


@sync
async def test_a_worker_error_on_the_plot_and_compare_screens_is_said(tmp_path, monkeypatch):
    """Not swallowed (the plot view's re-read caught only the engine's errors) nor an app
    crash (the compare screen read its files as it mounted)."""
    import tui_landscape.screens.plot as plot

    f = small_file(tmp_path / "s.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an HDF5 file")
    app = create_app(f)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        await wait_for(pilot, lambda: app.screen.view.surface is not None)

        def denied(path):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(plot, "read_surface", denied)
        app.screen.read_again()
        line = "error: reading s.h5 failed: PermissionError: [Errno 13] Permission denied"
        await wait_for(pilot, lambda: line in toasts(app))
        app.push_screen(CompareScreen([f, bad]))
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await wait_for(pilot, lambda: app.screen.query("#numbers"))  # composed
        numbers = app.screen.query_one("#numbers")
        await wait_for(pilot, lambda: "reading the files failed" in str(numbers.render()))
        assert "bad.h5" in str(numbers.render()) and "bad.h5" in toasts(app)
        await pilot.press("s", "k", "e")  # nothing to draw: no error either
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
