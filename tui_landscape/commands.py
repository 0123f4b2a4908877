"""The app's own commands in the command palette (ctrl+p), beside Textual's.

Over SSH some keys never arrive (f5 in many terminals, keys a multiplexer takes), and a
footer cut at 80 columns hides the rest: every command here runs the action of a key binding
(the same action string), so the palette reaches everything the keys do on that screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from tui_landscape.screens.browser import BrowserScreen, show_folder
from tui_landscape.screens.compare import CompareScreen
from tui_landscape.screens.plot import PlotScreen

__all__ = ["COMMANDS", "AppCommands", "Command"]


@dataclass(frozen=True)
class Command:
    """A palette entry: its title, its help line, the binding's action and where it applies."""

    title: str
    help: str
    action: str  # as in the key binding: "app.setup", or the screen's own "export"
    screens: tuple[type[Screen], ...] = ()  # () for every screen


_MAPS = (PlotScreen, CompareScreen)
COMMANDS = (
    Command("Open the file browser", "The folder's surface files (b)", "app.browser"),
    Command("Open the selected file", "Its plot view (enter)", "open", (BrowserScreen,)),
    Command("Compare the marked files", "Side by side, one scale (c)", "compare", (BrowserScreen,)),
    Command("Export the plot as PNG", "What is shown, beside the file (e)", "export", _MAPS),
    Command("Switch surface", "The next surface of the file (s)", "next_surface", _MAPS),
    Command("Switch kind", "Contour, filled or heat map (k)", "next_kind", _MAPS),
    Command("More contour levels", "Two more levels (+)", "levels(2)", (PlotScreen,)),
    Command("Fewer contour levels", "Two fewer levels (-)", "levels(-2)", (PlotScreen,)),
    Command("Reload the file", "Read it again with new points (f5)", "reload", (PlotScreen,)),
    Command("New surface", "The setup screen: configure and run (n)", "app.setup"),
    Command("Help", "Every key of the app (?)", "app.help"),
)


class AppCommands(Provider):
    """The commands of ``COMMANDS`` that apply to the screen the palette was opened on."""

    def _commands(self) -> list[Command]:
        screen = self.screen
        return [c for c in COMMANDS if not c.screens or isinstance(screen, c.screens)]

    def _run(self, command: Command) -> partial:
        # The screen the palette was opened on, not the palette: "export" is that screen's.
        return partial(self.app.run_action, command.action, self.screen)

    async def discover(self) -> Hits:
        for c in self._commands():
            yield DiscoveryHit(c.title, self._run(c), help=c.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for c in self._commands():
            if (score := matcher.match(c.title)) > 0:
                yield Hit(score, matcher.highlight(c.title), self._run(c), help=c.help)
        # A typed path: a folder opens in the browser, a surface file in the plot view (the
        # only way to another folder without leaving the app).
        path = Path(query.strip()).expanduser() if query.strip() else None
        if path is not None and path.is_dir():
            yield Hit(1.0, f"Open folder {path}", partial(self._open, path), help="The browser")
        elif path is not None and path.is_file() and path.suffix in (".h5", ".hdf5"):
            yield Hit(1.0, f"Open {path}", partial(self._open, path), help="Its plot view")

    def _open(self, path: Path) -> None:
        if path.is_dir():
            show_folder(self.app, path)
        else:
            self.app.push_screen(PlotScreen(path))
