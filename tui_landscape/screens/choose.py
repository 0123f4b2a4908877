"""A question with a few answers, each a button and a key: nothing is discarded without it.

The setup asks before esc stops a running run, before q or n drop an edited setup, and when
the output file exists (overwrite, resume or a new name). Esc is always "stay as you were".
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from tui_landscape.safe import plain

__all__ = ["Answer", "Choose"]


@dataclass(frozen=True)
class Answer:
    """One answer: what the dialog returns, its key and its button's label."""

    value: str
    key: str
    label: str
    variant: str = "default"


class Choose(ModalScreen[str | None]):
    """Ask ``question``; dismissed with the chosen answer's value, or None on esc."""

    DEFAULT_CSS = """
    Choose { align: center middle; }
    #choose { width: 70; max-width: 100%; height: auto; padding: 0 1;
              border: thick $warning; background: $surface; }
    #choose Label { width: 100%; }
    #choose-buttons { height: auto; margin-top: 1; }
    #choose-buttons Button { margin-right: 1; }
    """
    BINDINGS = [Binding("escape", "answer('')", "Stay", tooltip="Close the question: no change")]

    def __init__(self, question: str, answers: list[Answer]) -> None:
        super().__init__()
        self.question, self.answers = question, answers

    def compose(self) -> ComposeResult:
        with Vertical(id="choose"):
            yield Label(plain(self.question))
            with Horizontal(id="choose-buttons"):
                for a in self.answers:
                    yield Button(f"{a.label} ({a.key})", id=f"answer-{a.value}",
                                 variant=a.variant, compact=True)  # fmt: skip

    def on_key(self, event) -> None:
        """An answer's key answers (the buttons show which)."""
        for a in self.answers:
            if event.key == a.key:
                event.stop()
                self.dismiss(a.value)
                return

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(str(event.button.id).removeprefix("answer-"))

    def action_answer(self, value: str) -> None:
        self.dismiss(value or None)
