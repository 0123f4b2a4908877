"""Where to save the setup: a path proposed that does not exist yet; writing over a file asks first.

Ctrl+S once wrote over the config the app had opened, comments and all. Now the dialog proposes
a new name beside it; a path that exists takes a second Save (the button turns into
"Write over") and is then edited in place (``engine.config_save.save_config``), its comments kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label

from engine.config import Config, output_path
from engine.config_save import save_config

__all__ = ["SaveChoice", "SaveConfig", "new_config_path", "save_setup"]


def new_config_path(opened: Path | None) -> Path:
    """A config path that does not exist: beside the opened config, ``NAME-1.toml`` and up;
    with none opened, ``setup.toml`` (then ``setup-1.toml`` ...) in the working directory."""
    if opened is None:
        folder, stem, n = Path(), "setup", 0
    else:
        folder, stem, n = opened.parent, opened.stem, 1
    while True:
        p = folder / (f"{stem}-{n}.toml" if n else f"{stem}.toml")
        if not p.exists():
            return p
        n += 1


def save_setup(cfg: Config, choice: SaveChoice, opened: Path | None) -> Path:
    """Write ``cfg`` to ``choice.path`` so that ``compute PATH`` writes the surface the setup's
    Run writes (returned): ``output.path`` is left out only where compute's default names that
    file. Raises ``OSError`` or ``LandscapeError``."""
    out = output_path(cfg, opened)
    path = str(out) if choice.full or output_path(Config(), choice.path) != out else ""
    cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, path=path))
    save_config(cfg, choice.path, full=choice.full)
    return out


@dataclass(frozen=True)
class SaveChoice:
    """What the dialog answers: the path, and whether every key is written (not only changes)."""

    path: Path
    full: bool


class SaveConfig(ModalScreen[SaveChoice | None]):
    """Ask where to save; Enter saves, a second Enter writes over an existing file."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, proposed: Path) -> None:
        super().__init__()
        self.proposed = proposed
        self.confirming: Path | None = None  # the existing path a second Save writes over

    def compose(self) -> ComposeResult:
        with Vertical(id="save-dialog"):
            yield Label("Save the setup as")
            yield Input(str(self.proposed), id="save-path")
            yield Checkbox("every key (not only those changed from the defaults)", id="full")
            yield Label("", id="save-warning", markup=False)
            with Horizontal(id="save-buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#save-warning", Label).display = False
        self.query_one("#save-path", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._confirm(None)  # a new path: ask again if it exists

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        text = self.query_one("#save-path", Input).value.strip()
        if not text:
            return
        path = Path(text)
        if path.suffix != ".toml":
            path = path.with_name(path.name + ".toml")
        if path.is_dir() or not path.parent.is_dir():
            self._warn(f"{path}: not a file in an existing folder")
            return
        if path.exists() and self.confirming != path:
            self._confirm(path)
            return
        self.dismiss(SaveChoice(path, self.query_one("#full", Checkbox).value))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _confirm(self, path: Path | None) -> None:
        self.confirming = path
        button = self.query_one("#save", Button)
        button.label = "Save" if path is None else "Write over"
        button.variant = "primary" if path is None else "error"
        if path is None:
            self._warn("")
        else:
            self._warn(
                f"{path} exists. Write over it? Its comments and layout are kept; only changed "
                "keys are rewritten. Enter or 'Write over' again to confirm."
            )

    def _warn(self, text: str) -> None:
        label = self.query_one("#save-warning", Label)
        label.update(text)
        label.display = bool(text)
