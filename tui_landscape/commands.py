"""Every key's help, and the app's commands in the command palette (ctrl+p), from the bindings.

A key is written once, as a ``Binding`` in its screen's ``BINDINGS``: its ``description`` is
the footer's word and its ``tooltip`` the sentence that says what it does. The help screen (?)
and the palette are generated here from those bindings, so a binding added once is in the
footer, the help and the palette. Over SSH some keys never arrive (f5 in many terminals, keys a
multiplexer takes), and a footer cut at 80 columns hides the rest: the palette runs the same
action as the key, so it reaches everything the keys do on that screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from tui_landscape.screens.browser import BrowserScreen, show_folder
from tui_landscape.screens.compare import CompareScreen
from tui_landscape.screens.plot import PlotScreen
from tui_landscape.screens.setup import SetupScreen
from tui_landscape.screens.study import StudyScreen

__all__ = ["SCREENS", "AppCommands", "Key", "help_markdown", "keys_of"]

# The screens whose keys the help lists, in the order a user meets them, with their headings.
SCREENS: tuple[tuple[str, type[Screen]], ...] = (
    ("file browser", BrowserScreen),
    ("plot view", PlotScreen),
    ("compare", CompareScreen),
    ("study", StudyScreen),
    ("setup", SetupScreen),
)
# Keys Textual handles itself, not a binding of ours: listed in the help as the app's.
PALETTE_KEY = ("ctrl+p", "Commands: every key's action by name (for keys a terminal drops)")
# How a key is written in the help: its name, except where a character says it better.
_KEY_TEXT = {"question_mark": "?", "plus": "+", "minus": "-", "equals_sign": "=",
             "escape": "esc"}  # fmt: skip

PROSE = """\
Unfinished points are drawn as missing. A surface being computed fills in live, in the plot
view and the browser (`running 57%`), whichever process computes it; a cancelled run is
resumed by running it again (or `tui-landscape compute CONFIG`). `tui-landscape ps` lists the
runs going on.
"""


@dataclass(frozen=True)
class Key:
    """One action of a screen: the keys bound to it, its footer word and what it does."""

    keys: tuple[str, ...]  # as the help writes them: "+", "=", "ctrl+r"
    action: str  # the binding's action: "next_kind", "levels(2)", "app.setup"
    description: str  # the footer's word
    title: str  # what it does, one line: the binding's tooltip (else its description)


def keys_of(bindings: Iterable[Binding | tuple[str, ...]]) -> list[Key]:
    """The actions of ``bindings`` in their order, each with every key bound to it."""
    out: dict[str, Key] = {}
    for b in bindings:
        b = b if isinstance(b, Binding) else Binding(*b)
        keys = tuple(_KEY_TEXT.get(k.strip(), k.strip()) for k in b.key.split(","))
        if b.action in out:  # another binding of the same action adds its keys
            k = out[b.action]
            out[b.action] = Key(k.keys + keys, k.action, k.description, k.title)
        else:
            out[b.action] = Key(keys, b.action, b.description, b.tooltip or b.description)
    return list(out.values())


def help_markdown(app_bindings: Iterable[Binding | tuple[str, ...]] = ()) -> str:
    """The help screen's text: the app's keys (``app_bindings``, passed in: this module is
    imported by the app, not the other way round), then each screen's, then how runs behave."""
    lines = ["# tui-landscape", "", "Loss landscapes (Li et al., NeurIPS 2018) in the terminal.",
             "", "## everywhere", ""]  # fmt: skip
    lines += _key_lines([*keys_of(app_bindings), Key((PALETTE_KEY[0],), "", "", PALETTE_KEY[1])])
    for heading, screen in SCREENS:
        lines += ["", f"## {heading}", "", *_key_lines(keys_of(screen.BINDINGS))]
    return "\n".join(lines) + "\n\n" + PROSE


def _name(action: str) -> str:
    """An action's name without its arguments: "levels(2)" is "levels"."""
    return action.partition("(")[0]


def _key_lines(keys: Sequence[Key]) -> list[str]:
    return [f"- {' / '.join(f'`{k}`' for k in key.keys)} {key.title}" for key in keys]


class AppCommands(Provider):
    """A command for each key of the screen the palette was opened on, and of the app."""

    def _entries(self) -> list[tuple[Key, partial, str]]:
        screen = self.screen
        own = keys_of(type(screen).BINDINGS)
        actions = {k.action for k in own}
        # An action the screen disables here (`k` on a 1D file) is no command either.
        found = [(k, screen) for k in own if screen.check_action(_name(k.action), ()) is not False]
        found += [(k, self.app) for k in keys_of(type(self.app).BINDINGS) if k.action not in actions
                  and f"app.{k.action}" not in actions]  # fmt: skip
        # Run on the screen the palette was opened on, not the palette ("export" is its own).
        return [(k, partial(self.app.run_action, k.action, target),
                 f"{k.description} ({', '.join(k.keys)})") for k, target in found]  # fmt: skip

    async def discover(self) -> Hits:
        for key, run, help_ in self._entries():
            yield DiscoveryHit(key.title, run, help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for key, run, help_ in self._entries():
            if (score := matcher.match(key.title)) > 0:
                yield Hit(score, matcher.highlight(key.title), run, help=help_)
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
