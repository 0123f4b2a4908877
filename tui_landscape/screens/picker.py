"""A file picker: a directory tree showing folders and checkpoint files; Enter chooses."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Label

__all__ = ["CHECKPOINT_SUFFIXES", "FilePicker"]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".t7", ".ckpt", ".bin")


class CheckpointTree(DirectoryTree):
    """Folders and checkpoint files only, hidden entries left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            p for p in paths
            if not p.name.startswith(".") and (p.is_dir() or p.suffix in CHECKPOINT_SUFFIXES)
        ]  # fmt: skip


class FilePicker(ModalScreen[Path | None]):
    """Pick a checkpoint file; Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label(f"Checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) under {self.root}")
            yield CheckpointTree(self.root)

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(event.path)

    def action_cancel(self) -> None:
        self.dismiss(None)
