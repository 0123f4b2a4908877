"""The app in a small terminal over SSH (issue 17): commands in the palette, a kind key that
always changes the plot, and every screen readable at 80x24."""

from __future__ import annotations

from itertools import pairwise

from rich.text import Text

from tests.conftest import REPO
from tests.test_tui import compare_read, listed, small_file, sync, wait_for
from tui_landscape.app import create_app
from tui_landscape.screens.browser import BrowserScreen
from tui_landscape.screens.compare import CompareScreen
from tui_landscape.screens.plot import PlotScreen
from tui_landscape.screens.setup import SetupScreen


def drawn(text: Text) -> str:
    """A plot's text with its colours (a filled map and a heat map differ in colour only)."""
    return text.markup


@sync
async def test_each_kind_key_press_changes_the_map(tmp_path):
    f = small_file(tmp_path / "s.h5")
    app = create_app(f)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        v = app.screen.view
        await wait_for(pilot, lambda: v.surface is not None)
        shown = [(v.spec().kind, drawn(v.render()))]
        for _ in range(4):
            await pilot.press("k")
            shown.append((v.spec().kind, drawn(v.render())))
        kinds = [k for k, _ in shown]
        assert kinds == ["contour", "filled", "heatmap", "contour", "filled"], kinds
        for (_, before), (_, after) in pairwise(shown):
            assert before != after  # every press draws something else
        # On the compare screen too: auto is a contour map, so k goes on to filled.
        app.push_screen(CompareScreen([f, small_file(tmp_path / "b.h5", a=3.0)]))
        await compare_read(pilot)
        pane = app.screen.query_one("#pane0")
        texts = [drawn(pane.content)]
        for _ in range(3):
            await pilot.press("k")
            await pilot.pause()
            texts.append(drawn(pane.content))
        assert app.screen.kind == "contour"
        assert all(a != b for a, b in pairwise(texts))


async def run_command(pilot, text: str) -> None:
    """Open the command palette, type ``text`` and run the first (best) match."""
    from textual.command import CommandPalette

    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
    await pilot.press(*text)
    palette = app.screen
    await wait_for(pilot, lambda: palette.query_one("CommandList").option_count > 0)
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette))


@sync
async def test_the_palette_compares_exports_switches_and_reloads(tmp_path):
    small_file(tmp_path / "a.h5", a=0.5)
    small_file(tmp_path / "b.h5", a=4.0)
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await listed(pilot)
        await pilot.press("space", "down", "space")
        await run_command(pilot, "compare")
        await compare_read(pilot)
        assert app.screen.paths == [tmp_path / "a.h5", tmp_path / "b.h5"]
        await run_command(pilot, "switch kind")
        assert app.screen.kind == "filled"
        await run_command(pilot, "export")
        await app.workers.wait_for_complete()
        out = tmp_path / "compare_a-b_train_loss_filled.png"
        await wait_for(pilot, lambda: out.exists())
        assert out.read_bytes()[:4] == b"\x89PNG"
        await pilot.press("escape")
        await pilot.press("enter")  # the plot view of b.h5, the row marked last
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        await wait_for(pilot, lambda: app.screen.view.surface is not None)
        await run_command(pilot, "switch surface")
        assert app.screen.view.name_ == "train_acc"
        await run_command(pilot, "export")
        await app.workers.wait_for_complete()
        out = tmp_path / "b_train_acc_contour.png"
        # The file is in place a moment before the worker's notification is posted: wait for
        # the notification itself (a pause after the file appeared failed once under load).
        await wait_for(pilot, lambda: any(f"Wrote {out}" in n.message for n in app._notifications))
        shown = app.screen.view.spec().levels.size  # an accuracy map: 15 over its range
        await run_command(pilot, "more contour levels")
        assert app.screen.view.levels == shown + 2  # two more than shown: the + key's action
        before = app.screen.view.surface
        await run_command(pilot, "reload")
        assert app.screen.view.surface is not before
        await run_command(pilot, "new surface")
        assert isinstance(app.screen, SetupScreen)


def test_plot_screen_snapshot_80x24(snap_compare, tmp_path):
    """At 80x24 the footer keeps q Quit and ? Help, and the status line wraps, never cut."""
    f = small_file(tmp_path / "snap.h5")

    async def drawn(pilot) -> None:
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PlotScreen))
        await wait_for(pilot, lambda: pilot.app.screen.view.surface is not None)
        await pilot.pause()

    assert snap_compare(create_app(f), terminal_size=(80, 24), run_before=drawn)


def test_compare_screen_snapshot_80x24(snap_compare, tmp_path):
    paths = [small_file(tmp_path / "a.h5", a=0.5), small_file(tmp_path / "b.h5", a=4.0)]

    async def compared(pilot) -> None:
        await listed(pilot)
        pilot.app.push_screen(CompareScreen(paths))
        await compare_read(pilot)

    assert snap_compare(create_app(tmp_path), terminal_size=(80, 24), run_before=compared)


@sync
async def test_the_palette_opens_a_typed_folder_or_surface(tmp_path):
    """The browser had no way to another folder but quitting (issue 17's review)."""
    from textual.command import CommandPalette
    from textual.widgets import Input

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    small_file(tmp_path / "two" / "b.h5")
    app = create_app(tmp_path / "one")
    async with app.run_test(size=(80, 24)) as pilot:
        await listed(pilot)
        two = tmp_path / "two"
        for target, screen in ((two, BrowserScreen), (two / "b.h5", PlotScreen)):
            await pilot.press("ctrl+p")
            await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
            palette = app.screen
            palette.query_one(Input).value = str(target)
            hits = palette.query_one("CommandList")
            await wait_for(pilot, lambda h=hits: h.option_count > 0)
            await pilot.press("enter")
            await wait_for(pilot, lambda s=screen: isinstance(app.screen, s))
        assert app.screen.path == tmp_path / "two" / "b.h5"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen))
        assert app.screen.folder == tmp_path / "two"


@sync
async def test_leaving_a_config_s_setup_shows_where_its_output_goes(tmp_path, monkeypatch):
    """`tui sample_configs/digits_2d.toml` then esc listed sample_configs/, while the run's
    file is written in the working folder, as `compute` writes it."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cfg = tmp_path / "configs" / "d.toml"
    cfg.parent.mkdir()
    cfg.write_text((REPO / "sample_configs" / "digits_2d.toml").read_text())
    app = create_app(cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        await wait_for(pilot, lambda: app.screen.cfg is not None)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen))
        assert app.screen.folder.resolve() == work.resolve()


async def _live_map(size, f):
    from engine.formats import read_surface
    from tui_landscape.plots.widget import PlotView

    app = create_app(REPO / "sample_configs" / "digits_2d.toml")
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        await wait_for(pilot, lambda: app.screen.query("#live"))  # composed
        view = app.screen.query_one("#live", PlotView)
        await wait_for(pilot, lambda: view.size.width > 0)  # laid out: a size to draw to
        view.surface = read_surface(f)
        await wait_for(pilot, lambda: app.screen.painted)  # no field left mounting at exit
        await pilot.pause()
        return view.render().plain, view.size.width


@sync
async def test_the_setup_s_live_map_never_wraps_at_80_columns(tmp_path, monkeypatch):
    """Drawn 40 columns wide in a narrower pane, each plot line wrapped into the next."""
    monkeypatch.chdir(tmp_path)
    f = small_file(tmp_path / "s.h5", unfinished={0, 1})
    text, width = await _live_map((60, 24), f)  # too narrow: says so, never wraps
    assert width < 40 and text.startswith("s.h5: 61/63 points done. The map needs 40x12"), text
    text, width = await _live_map((80, 24), f)  # the form narrows at 80: the map is drawn
    assert "The map needs" not in text and all(len(x) <= width for x in text.splitlines())
    text, width = await _live_map((160, 50), f)  # room: the map, every line within the pane
    assert "The map needs" not in text and all(len(x) <= width for x in text.splitlines())
