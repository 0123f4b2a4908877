"""The help screen (?): every key of the app and of each screen, from their bindings
(``tui_landscape.commands.help_markdown``), and what the app does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

__all__ = ["HelpScreen"]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        from tui_landscape.commands import help_markdown  # the screens' modules: with the help

        with VerticalScroll(id="help"):
            yield Markdown(help_markdown(type(self.app).BINDINGS))
