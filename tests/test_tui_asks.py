"""The app asks before it drops work (issue 26): esc over a run, q and n over an edited setup,
an output that exists; Run refused while a field is invalid; a burst of keys all kept; the
setup at 80x24 draws its map; n starts from a file's stored config."""

from __future__ import annotations

from textual import events
from textual.widgets import Button, Input, RichLog

from engine.config import load_config
from engine.formats import read_surface
from engine.run import prepare
from tests.test_tui import opened, setup_config, sync, toasts, wait_for
from tui_landscape.app import create_app
from tui_landscape.plots.widget import MIN_HEIGHT, MIN_WIDTH, PlotView
from tui_landscape.screens.browser import BrowserScreen
from tui_landscape.screens.choose import Choose
from tui_landscape.screens.plot import PlotScreen
from tui_landscape.screens.setup import SetupScreen


def question(app) -> str:
    return str(app.screen.query_one("#choose Label").render())


async def edit(pilot, s: SetupScreen, wid: str, text: str) -> None:
    """Type into a field as a user does (a Changed), then wait for its check."""
    s.query_one(f"#{wid}", Input).value = text
    await wait_for(pilot, lambda: s.edited and s._settle is None)


@sync
async def test_esc_over_a_running_run_asks_and_stop_keeps_its_points(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path, "-1:1:15"))
    out = tmp_path / "c.h5"
    async with app.run_test(size=(100, 30)) as pilot:
        s = await opened(pilot)
        s.query_one("#out", Input).value = str(out)
        await wait_for(pilot, lambda: not s.query_one("#run", Button).disabled)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: s.job is not None and s.job.done >= 2)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, Choose))
        assert "c.h5" in question(app) and "detached" in question(app)
        await pilot.press("escape")  # stay: the run goes on
        await wait_for(pilot, lambda: app.screen is s)
        assert s.running and not s.cancel_requested
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, Choose))
        await pilot.press("s")  # stop it: the points are kept, then the setup is left
        # Left once the run has ended (its file closed): the browser lists its folder.
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen) and not s.running)
        await wait_for(pilot, lambda: out in app.screen.rows)
    assert 2 <= read_surface(out).n_done < 225


@sync
async def test_q_with_run_focused_over_edits_asks_and_n_offers_a_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        s = await opened(pilot)
        await edit(pilot, s, "grid-x", "-1:1:5")
        run = s.query_one("#run", Button)
        await wait_for(pilot, lambda: not run.disabled)  # a disabled button takes no focus
        run.focus()
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, Choose))
        assert "not saved" in question(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is s)
        assert app.is_running
        await pilot.press("n")  # the edited setup: a copy of it, or a blank one
        await wait_for(pilot, lambda: isinstance(app.screen, Choose))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen) and app.screen is not s)
        copy = app.screen
        await wait_for(pilot, lambda: copy.cfg is not None)
        assert copy.query_one("#grid-x", Input).value == "-1:1:5"
        await wait_for(pilot, lambda: copy.painted)
        await app.workers.wait_for_complete()  # its model list filled before it is left
        await pilot.press("escape")  # the copy is not edited: leaves at once, back to s
        await wait_for(pilot, lambda: app.screen is s)
        assert s.query_one("#grid-x", Input).value == "-1:1:5"
        await wait_for(pilot, lambda: not run.disabled)
        run.focus()
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, Choose))
        await pilot.press("y")  # drop the edits: quit
        await wait_for(pilot, lambda: not app.is_running)


@sync
async def test_run_stays_off_and_ctrl_r_refused_while_a_field_is_invalid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        s = await opened(pilot)
        run, log = s.query_one("#run", Button), s.query_one(RichLog)
        # A value the config accepts and the preflight refuses: the error shows under it.
        await edit(pilot, s, "model-checkpoint", str(tmp_path / "missing.pt"))
        await wait_for(pilot, lambda: s.error is not None and "missing.pt" in s.error)
        assert run.disabled
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "Fix the setup first" in toasts(app))
        assert not s.running and not s.run_when_checked
        assert not any("Checking the setup" in str(line) for line in log.lines)
        # A value the config refuses.
        await edit(pilot, s, "directions-target", "1")
        await wait_for(pilot, lambda: s.error is not None and "directions.target" in s.error)
        await pilot.press("ctrl+r", "ctrl+g")
        assert run.disabled and not s.running
        assert not list(tmp_path.glob("*.h5"))


@sync
async def test_a_burst_of_keys_keeps_its_order_and_is_checked_as_typing_pauses(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        s = await opened(pilot)
        field = s.query_one("#grid-x", Input)
        field.focus()
        field.value = "-0.5:0.5:21"
        field.cursor_position = len(field.value)
        await wait_for(pilot, lambda: s._settle is None)
        await app.workers.wait_for_complete()
        checks = []
        s._check = checks.append  # the preflight each validation starts
        # As a laggy link delivers them: every key queued at once, none awaited.
        for key in ["backspace"] * 12 + list("-1:1:41"):
            char = key if len(key) == 1 else "\x7f"
            name = {"-": "minus", ":": "colon"}.get(key, key)
            event = events.Key(name, char)
            event.set_sender(app)
            app._driver.send_message(event)  # as the terminal's driver sends them, unawaited
        # Before the fix the backspaces ran after the characters: "-0.5:0" here.
        await wait_for(pilot, lambda: field.value == "-1:1:41" and s._settle is None and checks, 20)
        # Checked as typing pauses, not once per key (19 before): a loaded machine may pause.
        assert 1 <= len(checks) <= 3 and s.cfg is not None and s.cfg.grid.x == "-1:1:41"


@sync
async def test_an_output_that_exists_offers_resume_overwrite_or_a_new_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg_path = setup_config(tmp_path, "-1:1:3")
    out = tmp_path / "o.h5"
    prepare(load_config(cfg_path), out).run()
    app = create_app(cfg_path)
    async with app.run_test(size=(100, 30)) as pilot:
        s = await opened(pilot)
        s.query_one("#out", Input).value = str(out)
        await wait_for(pilot, lambda: not s.query_one("#run", Button).disabled)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, Choose))
        text = question(app)
        assert "o.h5 exists" in text and "--overwrite" not in text
        labels = [str(b.label) for b in app.screen.query(Button)]
        assert labels == ["Resume (u)", "Overwrite (o)", "New name: o-1.h5 (r)"]
        await pilot.press("r")
        await wait_for(pilot, lambda: (tmp_path / "o-1.h5").exists() and not s.running)
        await app.workers.wait_for_complete()
        assert s.query_one("#out", Input).value == str(tmp_path / "o-1.h5")
        assert read_surface(tmp_path / "o-1.h5").n_done == 9
        # A different grid cannot resume it: overwrite or a new name only, and it says why.
        await edit(pilot, s, "grid-x", "-1:1:2")
        s.query_one("#out", Input).value = str(out)
        await wait_for(pilot, lambda: not s.query_one("#run", Button).disabled)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, Choose))
        assert "cannot be resumed" in question(app) and "--overwrite" not in question(app)
        await pilot.press("o")
        await wait_for(pilot, lambda: not s.running and "Done" in str(s.query_one(RichLog).lines))
        await app.workers.wait_for_complete()
    assert read_surface(out).n_done == 6


@sync
async def test_n_in_the_plot_view_and_the_browser_starts_from_the_files_config(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    cfg_path = setup_config(tmp_path, "-1:1:3")
    out = tmp_path / "f.h5"
    prepare(load_config(cfg_path, ["grid.x=-1:1:2", "grid.y=-0.5:0.5:3"]), out).run()
    for target in (out, tmp_path):
        app = create_app(target)
        async with app.run_test(size=(100, 30)) as pilot:
            kind = PlotScreen if target == out else BrowserScreen
            await wait_for(pilot, lambda: isinstance(app.screen, kind))  # noqa: B023
            if kind is BrowserScreen:
                await wait_for(pilot, lambda: app.screen.rows == [out])  # noqa: B023
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))  # noqa: B023
            s = app.screen
            await wait_for(pilot, lambda: s.cfg is not None and s.painted)  # noqa: B023
            assert s.query_one("#grid-y", Input).value == "-0.5:0.5:3"
            assert s.query_one("#out", Input).value == str(tmp_path / "f-1.h5")  # never f.h5


@sync
async def test_the_setup_at_80x24_draws_its_map_and_shows_save_and_help(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(setup_config(tmp_path, "-1:1:3"))
    async with app.run_test(size=(80, 24)) as pilot:
        s = await opened(pilot)
        live = s.query_one(PlotView)
        assert live.size.width >= MIN_WIDTH and live.size.height >= MIN_HEIGHT
        save = s.query_one("#save", Button)
        assert save.content_size.width >= len("Save (ctrl+s)")
        footer = {b.key for _, b, enabled, _ in s.active_bindings.values() if b.show}
        assert "f1" in footer
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not s.running and "Done" in str(s.query_one(RichLog).lines))
        await app.workers.wait_for_complete()
        drawn = str(live.render())
        assert "needs" not in drawn and "train_loss" in drawn
