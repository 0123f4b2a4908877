"""A file picker: a directory tree showing folders and checkpoint files; Enter chooses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Label
from textual.widgets.tree import TreeNode

__all__ = ["CHECKPOINT_SUFFIXES", "FilePicker"]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".t7", ".ckpt", ".bin", ".safetensors")


def natural_key(name: str) -> tuple[str | int, ...]:
    """Sort key with the digit runs read as numbers: model_2 before model_10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name.lower()))


class CheckpointTree(DirectoryTree):
    """Folders and checkpoint files only, hidden entries left out, in natural order."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            p for p in paths
            if not p.name.startswith(".") and (p.is_dir() or p.suffix in CHECKPOINT_SUFFIXES)
        ]  # fmt: skip

    def _populate_node(self, node: TreeNode, content: Iterable[Path]) -> None:
        # Textual (8.x) sorts a folder's entries by lower-cased name after filter_paths, so no
        # public hook sees the final order: re-sort here, folders first as Textual does.
        ordered = sorted(content, key=lambda p: (not self._safe_is_dir(p), natural_key(p.name)))
        super()._populate_node(node, ordered)


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
