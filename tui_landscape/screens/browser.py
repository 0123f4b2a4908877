"""The file browser: the surface files of a folder, what each holds; open, delete, compare."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Label

from engine.errors import LandscapeError
from engine.formats import read_surface

__all__ = ["BrowserScreen", "describe_file"]


def describe_file(p: Path) -> tuple[str, str, str, str, str]:
    """(kind, grid, surfaces, completion, created) of a file, or its error in the kind column."""
    try:
        s = read_surface(p)
    except LandscapeError as e:
        return (f"unreadable: {e}"[:60], "", "", "", "")
    grid = f"{len(s.x)}" + (f" x {len(s.y)}" if s.y is not None else "")
    kind = "ours" if s.layout == "tui-landscape" else "reference"
    pct = f"{100 * s.n_done / s.completed.size:.0f}%"
    created = str(s.attrs.get("created", ""))
    if not created:
        created = dt.datetime.fromtimestamp(p.stat().st_mtime).isoformat(timespec="seconds")
    return (f"{kind} {'2D' if s.y is not None else '1D'}", grid, ", ".join(s.values), pct, created)


class ConfirmDelete(ModalScreen[bool]):
    """Delete a file? y / n."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(f"Delete {self.path.name} (and its lock and journal)?")
            with Horizontal():
                yield Button("Delete (y)", id="yes", variant="error")
                yield Button("Keep (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class BrowserScreen(Screen):
    """Every ``.h5`` surface file of a folder: Enter opens, space marks, c compares marked."""

    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare marked"),
        Binding("d", "delete", "Delete"),
        Binding("f5", "refresh", "Refresh"),
    ]

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.marked: set[Path] = set()
        self.rows: list[Path] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="files", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"tui-landscape: {self.folder.resolve().name or self.folder.resolve()}/"
        table = self.query_one(DataTable)
        table.add_columns("", "file", "kind", "grid", "surfaces", "done", "created")
        self.action_refresh()

    def action_refresh(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.rows = sorted(
            p for p in self.folder.glob("*.h5") if not p.name.endswith(".directions.h5")
        )
        for p in self.rows:
            table.add_row("*" if p in self.marked else " ", p.name, *describe_file(p), key=str(p))
        if not self.rows:
            self.notify(f"No surface files (.h5) in {self.folder}", timeout=4)

    def _current(self) -> Path | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        p = self._current()
        if p is not None:
            from tui_landscape.screens.plot import PlotScreen

            self.app.push_screen(PlotScreen(p))

    def action_mark(self) -> None:
        p = self._current()
        if p is None:
            return
        self.marked ^= {p}
        row = self.query_one(DataTable).cursor_row
        self.action_refresh()
        self.query_one(DataTable).move_cursor(row=row)

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.notify("Mark two or more files with space first", severity="warning")
            return
        from tui_landscape.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(sorted(self.marked)))

    def action_delete(self) -> None:
        p = self._current()
        if p is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                for q in (p, p.with_name(p.name + ".lock"), p.with_name(p.name + ".journal")):
                    q.unlink(missing_ok=True)
                self.marked.discard(p)
                self.notify(f"Deleted {p.name}")
                self.action_refresh()

        self.app.push_screen(ConfirmDelete(p), done)
