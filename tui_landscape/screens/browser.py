"""The file browser: the surface files of a folder, what each holds; open, delete, compare.

A folder is listed in a worker thread from ``surface_info`` (attributes and shapes, no
surfaces), so a folder of hundreds of files never blocks the UI; marking a file changes one
cell, never re-reads the folder. The folder is followed without F5 (about once a second, by
``stat`` alone): a file or run that comes or goes changes the folder's time and lists it again;
a running file whose journal grew is described again, in its own row.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Label
from textual.worker import Worker, WorkerState, get_current_worker

from engine.errors import LandscapeError
from engine.formats import LAYOUT_OURS, lock_holder, sidecars, surface_info
from engine.formats.constants import DIRECTIONS_SUFFIX
from tui_landscape import runs
from tui_landscape.safe import plain

__all__ = [
    "BrowserScreen",
    "FileRow",
    "describe_file",
    "list_folder",
    "show_folder",
    "surface_files",
]

MARK = "mark"  # the key of the mark column, updated in place
COLUMNS = ("file", "kind", "grid", "surfaces", "done", "created")
RUNNING = "running"  # how the done column starts while a run writes the file


@dataclass(frozen=True)
class FileRow:
    """One line of the browser: a file and its (kind, grid, surfaces, done, created)."""

    path: Path
    cells: tuple[str, str, str, str, str]


def surface_files(folder: Path) -> list[Path]:
    """The ``.h5`` files of a folder, sorted, without the direction files runs write beside."""
    return sorted(p for p in folder.glob("*.h5") if not p.name.endswith(DIRECTIONS_SUFFIX))


def describe_file(p: Path) -> tuple[str, str, str, str, str]:
    """(kind, grid, surfaces, completion, created) of a file, or its error in the kind column."""
    try:
        info = surface_info(p)
    except LandscapeError as e:
        # The file column names the file: the 60 characters go to what is wrong with it.
        return (f"unreadable: {str(e).replace(str(p), '').lstrip(': ')}"[:60], "", "", "", "")
    nx = info.shape[-1]
    grid = f"{nx}" + (f" x {info.shape[0]}" if info.ndim == 2 else "")
    kind = "ours" if info.layout == LAYOUT_OURS else "reference"
    pct = f"{100 * info.done / info.total:.0f}%"
    if lock_holder(p) is not None:
        pct = f"{RUNNING} {pct}"
    created = info.created
    if not created:
        created = dt.datetime.fromtimestamp(p.stat().st_mtime).isoformat(timespec="seconds")
    return (f"{kind} {info.ndim}D", grid, ", ".join(info.names), pct, created)


def describe_files(paths: Iterable[Path]) -> list[FileRow]:
    return [FileRow(p, describe_file(p)) for p in paths]


def _mtime(folder: Path) -> int | None:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


def list_folder(folder: Path, cancelled: Callable[[], bool] = lambda: False) -> list[FileRow]:
    """Every surface file of ``folder`` described; stops early once ``cancelled()`` is true."""
    rows = []
    for p in surface_files(folder):
        if cancelled():
            break
        rows.append(FileRow(p, describe_file(p)))
    return rows


class ConfirmDelete(ModalScreen[bool]):
    """Delete a file? y / n."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, path: Path, beside: list[str]) -> None:
        super().__init__()
        self.path, self.beside = path, beside

    def compose(self) -> ComposeResult:
        also = f" (and its {', '.join(self.beside)})" if self.beside else ""
        with Vertical(id="confirm"):
            yield Label(f"Delete {self.path.name}{also}?")
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

    class Listed(Message):
        """A folder's rows, from the listing worker."""

        def __init__(self, folder: Path, rows: list[FileRow]) -> None:
            super().__init__()
            self.folder, self.rows = folder, rows

    class Described(Message):
        """Rows of running files described again, from the watching worker."""

        def __init__(self, rows: list[FileRow]) -> None:
            super().__init__()
            self.rows = rows

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.marked: set[Path] = set()
        self.rows: list[Path] = []
        self._folder_time: int | None = None
        self._watches: dict[Path, runs.Watch] = {}  # the running files' journals
        self._asked = True

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="files", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"tui-landscape: {self.folder.resolve().name or self.folder.resolve()}/"
        self.action_refresh()
        self.set_interval(runs.WATCH_SECONDS, self.poll)

    def action_refresh(self, asked: bool = True) -> None:
        self._folder_time = _mtime(self.folder)  # before listing: a change meanwhile is seen
        self._asked = asked  # an empty folder is announced when listed on request only
        self.list_files()

    def poll(self) -> None:
        """Follow the folder: list it again when it changed, describe grown running files."""
        if _mtime(self.folder) != self._folder_time:
            self.action_refresh(asked=False)
            return
        grown = [p for p, w in self._watches.items() if w.changed()]
        if grown:
            self.describe_rows(grown)

    @work(thread=True, exclusive=True, exit_on_error=False, group="browser-rows")
    def describe_rows(self, paths: list[Path]) -> None:
        self.post_message(self.Described(describe_files(paths)))

    def on_browser_screen_described(self, message: Described) -> None:
        table = self.query_one(DataTable)
        for r in message.rows:
            if r.path not in self.rows:
                continue  # gone since: the next listing says so
            row = table.get_row_index(str(r.path))
            for i, cell in enumerate(r.cells):
                table.update_cell_at(Coordinate(row, 2 + i), plain(cell), update_width=True)
            if not r.cells[3].startswith(RUNNING):
                self._watches.pop(r.path, None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="browser-list")
    def list_files(self) -> None:
        """Describe the folder's files off the UI thread; a newer listing cancels this one."""
        worker = get_current_worker()
        rows = list_folder(self.folder, lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.post_message(self.Listed(self.folder, rows))

    def on_browser_screen_listed(self, message: Listed) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        if not table.columns:
            # Added with the first rows: a header drawn before them keeps its first widths.
            table.add_column("", key=MARK)
            table.add_columns(*COLUMNS)
        self.rows = [r.path for r in message.rows]
        self.marked &= set(self.rows)  # files gone since: no longer marked
        for r in message.rows:
            mark = "*" if r.path in self.marked else " "
            # File names and what the files say are shown as written, never as markup.
            table.add_row(mark, plain(r.path.name), *map(plain, r.cells), key=str(r.path))
        self._watches = {
            r.path: runs.Watch(r.path) for r in message.rows if r.cells[3].startswith(RUNNING)
        }
        for w in self._watches.values():
            w.changed()  # the stamp of what was just listed
        if self.rows:
            table.move_cursor(row=min(row, len(self.rows) - 1))
        elif self._asked:
            self.notify(f"No surface files (.h5) in {self.folder}", timeout=4, markup=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "browser-list" and event.state == WorkerState.ERROR:
            self.notify(
                f"Listing {self.folder} failed: {event.worker.error}",
                severity="error",
                markup=False,
            )

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
        self.query_one(DataTable).update_cell(str(p), MARK, "*" if p in self.marked else " ")

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
        # The direction file stays: another surface may have been computed on it.
        beside = {k: q for k, q in sidecars(p).items() if k != "directions"}

        def done(yes: bool | None) -> None:
            if yes:
                for q in (p, *beside.values()):
                    q.unlink(missing_ok=True)
                self.marked.discard(p)
                self.rows.remove(p)
                self.query_one(DataTable).remove_row(str(p))
                self.notify(f"Deleted {p.name}", markup=False)

        self.app.push_screen(ConfirmDelete(p, list(beside)), done)


def show_folder(app, folder: Path) -> None:
    """Show ``folder`` in the browser: the app's own when it lists that folder, else a new one."""
    base = app.screen_stack[1] if len(app.screen_stack) > 1 else None
    if isinstance(base, BrowserScreen) and base.folder.resolve() == Path(folder).resolve():
        while len(app.screen_stack) > 2:
            app.pop_screen()
        base.action_refresh()
    else:
        app.push_screen(BrowserScreen(folder))
