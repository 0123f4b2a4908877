"""The Textual app: a file browser, plot views, comparisons, and a setup screen that runs.

``create_app`` is shared by the CLI and the tests. What opens first depends on the target: a
folder opens the browser, a surface file the plot view, a TOML config the setup screen. Each
screen's module is imported when the screen is first shown, and the palette's commands when
it opens: importing them all at start-up (numpy, h5py, plotext, Markdown) cost a third of a
second of the first paint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding

if TYPE_CHECKING:
    from textual.await_complete import AwaitComplete
    from textual.command import Provider

__all__ = ["LandscapeApp", "create_app"]


def app_commands() -> type[Provider]:
    """The app's palette commands, loaded when the palette opens (Textual calls this)."""
    from tui_landscape.commands import AppCommands

    return AppCommands


class LandscapeApp(App):
    """tui-landscape's terminal app."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-landscape"
    COMMANDS = App.COMMANDS | {app_commands}
    BINDINGS = [
        # The tooltip says what a key does: in the help (?) and the palette (ctrl+p) too.
        Binding("question_mark", "help", "Help", tooltip="Help: every key of the app"),
        Binding("b", "browser", "Files", tooltip="Open the file browser: the surface files"),
        Binding(
            "n",
            "setup",
            "New",
            tooltip="New surface: configure and run it (the setup); "
            "from the shown or highlighted file's stored config",
        ),
        Binding("q", "quit", "Quit", tooltip="Quit the app"),
    ]

    def __init__(self, target: Path | None = None) -> None:
        super().__init__()
        self.target = Path(target) if target is not None else Path.cwd()
        self.no_color = bool(os.environ.get("NO_COLOR"))

    @property
    def folder(self) -> Path:
        """The folder of the app's browser: the target, or the folder it is in."""
        return self.target if self.target.is_dir() else self.target.parent

    def on_mount(self) -> None:
        t = self.target
        # A config's setup and a file's plot view open alone: the browser beneath is made when
        # they are left (``pop_screen``). Made before their first paint, the browser (its
        # styles, its folder's listing) cost them 0.2 to 0.3 s.
        if t.suffix == ".toml":
            from tui_landscape.screens.setup import SetupScreen

            self.push_screen(SetupScreen(t))
        elif t.suffix in (".h5", ".hdf5") and not t.is_dir():
            from tui_landscape.screens.plot import PlotScreen

            self.push_screen(PlotScreen(t))
        elif _is_study(t):
            from tui_landscape.screens.study import StudyScreen

            self.push_screen(StudyScreen(t))
        else:
            from tui_landscape.screens.browser import BrowserScreen

            self.push_screen(BrowserScreen(self.folder))

    def pop_screen(self) -> AwaitComplete:
        """The top screen closed; the app's browser, not made yet where the app opened on a
        config or a file, takes the place of the setup or plot view alone on the stack."""
        from tui_landscape.screens.browser import BrowserScreen

        if len(self.screen_stack) == 2 and not isinstance(self.screen, BrowserScreen):
            # Where the setup's output goes (the working folder for `digits_2d.toml`, as
            # `compute` writes it), not the config's folder: the run's file is listed there.
            where = getattr(self.screen, "output_folder", None)
            return self.switch_screen(BrowserScreen(where() if where else self.folder))
        return super().pop_screen()

    def action_help(self) -> None:
        from tui_landscape.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_browser(self) -> None:
        """The app's browser: every screen above it closed (made now if there is none yet)."""
        from tui_landscape.screens.browser import BrowserScreen

        while len(self.screen_stack) > 2:
            self.pop_screen()
        if not isinstance(self.screen, BrowserScreen):
            self.pop_screen()

    async def action_quit(self) -> None:
        """Quit; a screen with work to lose (a setup's run or edits) asks first."""
        ask = getattr(self.screen, "before_quit", None)
        if ask is None:
            self.exit()
        else:
            ask()

    def action_setup(self) -> None:
        """A new setup: from the stored config of the file the screen shows or highlights
        (the plot view, the browser), written to a new name beside it; else a blank one."""
        from tui_landscape.screens.setup import SetupScreen, setup_from_file

        new = getattr(self.screen, "new_setup", None)  # a setup: a copy of it, where edited
        if new is not None:
            new()
            return
        path = getattr(self.screen, "selected_surface", lambda: None)()
        if path is None:
            self.push_screen(SetupScreen())
            return
        screen = setup_from_file(path)
        if isinstance(screen, str):  # a reference file, say: a blank setup, and why
            self.notify(f"{screen}; a blank setup instead", severity="warning", markup=False)
            screen = SetupScreen()
        self.push_screen(screen)


def _is_study(path: Path) -> bool:
    from engine.study.table import is_study_folder

    return is_study_folder(path)


def create_app(target: str | Path | None = None) -> LandscapeApp:
    """The app opened at ``target``: a folder, a study folder, a surface file (.h5) or a config
    (.toml).

    Call it before the app runs: it starts multiprocessing's resource tracker, which a worker
    pool needs and which cannot start inside a running Textual app (it passes stderr's file
    descriptor to the tracker, and Textual replaces stderr with an object whose fileno() is -1).
    """
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    return LandscapeApp(Path(target) if target else None)
