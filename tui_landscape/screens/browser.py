"""The file browser: the surface files of a folder, what each holds; open, delete, compare.

A folder is listed in a worker thread (``screens.listing``, from ``surface_info``: attributes
and shapes, no surfaces), so a folder of hundreds of files never blocks the UI; marking a file
changes one cell, never re-reads the folder. The columns fit 80 terminal columns: short cells
("ours 2D", "3m ago", "unreadable"), the file name takes the rest, and the status line under
the table says in full what the highlighted file holds, or why it cannot be read. The folder
is followed without F5 (about once a second, by ``stat`` alone): a file or run that comes or
goes changes the folder's time and lists it again; a running file whose journal grew is
described again, in its own row.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static
from textual.worker import Worker, get_current_worker

from engine.errors import LandscapeError
from engine.formats import clean_text, lock_holder, removable_sidecars, sidecars, surface_info
from tui_landscape import runs
from tui_landscape.report import fit
from tui_landscape.safe import plain
from tui_landscape.screens.listing import (
    RUNNING,
    STUDY,
    FileRow,
    ago,
    describe_file,
    list_folder,
    unreadable_reason,
)
from tui_landscape.screens.workers import failed

__all__ = ["BrowserScreen", "show_folder"]

MARK = "mark"  # the key of the mark column, updated in place
COLUMNS = ("file", "kind", "grid", "surfaces", "done", "created")
# The widest cell of each column but the file's: "unreadable", "101 x 101", two surface
# names, "running 57%" (room for a run's state beside its completion), "2026-01-01".
WIDTHS = {"kind": 10, "grid": 9, "surfaces": 21, "done": 11, "created": 10}
MIN_FILE = 20  # narrower than this, the surfaces column gives its room to the file name
# From this many terminal columns on, what a file is of: its model, loss and direction kind
# (from the stored config), each at least this wide; the surfaces' names up to SURFACES_MAX.
WIDE = 120
EXTRA = ("model", "loss", "dirs")
EXTRA_WIDTHS = {"model": 8, "loss": 12, "dirs": 8}  # the model takes what is left
SURFACES_MAX = 44


def _stamp(folder: Path) -> int | None:
    """The folder's modification time: it changes when a file comes, goes or is renamed."""
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


def _points(grid: str) -> int:
    """A grid cell ("101 x 101", "51") as its number of points; 0 where it is none."""
    try:
        n = 1
        for part in grid.split(" x "):
            n *= int(part)
        return n
    except ValueError:
        return 0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ConfirmDelete(ModalScreen[bool]):
    """Delete a file? y / n."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, path: Path, beside: list[str], kept: str = "") -> None:
        super().__init__()
        self.path, self.beside, self.kept = path, beside, kept

    def compose(self) -> ComposeResult:
        also = f" (and its {', '.join(self.beside)})" if self.beside else ""
        with Vertical(id="confirm"):
            yield Label(plain(f"Delete {self.path.name}{also}?"))
            if self.kept:
                yield Label(plain(self.kept))
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
        Binding("enter", "open", "Open", tooltip="Open the selected file in the plot view"),
        Binding("space", "mark", "Mark", tooltip="Mark the selected file (again: unmark it)"),
        Binding(
            "c",
            "compare",
            "Compare marked",
            tooltip="Compare the marked files side by side, on one scale",
        ),
        Binding("d", "delete", "Delete", tooltip="Delete the selected file (asks first)"),
        Binding("f5", "refresh", "Refresh", tooltip="Refresh the folder's listing"),
        Binding(
            "slash",
            "filter",
            "Filter",
            show=False,
            tooltip="Filter the files by name (esc: all again)",
        ),
        Binding(
            "o", "sort", "Sort", show=False, tooltip="Sort: by name, newest first, or by grid size"
        ),
        Binding("g", "first", "First", show=False, tooltip="Go to the first file"),
        Binding("G", "last", "Last", show=False, tooltip="Go to the last file"),
        # Priority: the table's own home/end scroll without moving the cursor.
        Binding(
            "home", "top", "Top", show=False, priority=True, tooltip="Go to the first file (as g)"
        ),
        Binding(
            "end",
            "bottom",
            "Bottom",
            show=False,
            priority=True,
            tooltip="Go to the last file (as G)",
        ),
    ]
    SORTS = ("name", "newest", "grid")

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
        self.listed: list[FileRow] = []  # the last listing, drawn again on a resize
        self._layout: tuple[tuple[str, ...], int] | None = None  # columns and file width drawn
        self._folder_time: int | None = None
        self._watches: dict[Path, runs.Watch] = {}  # the running files' journals
        self._asked = True
        self.sort = "name"  # one of SORTS
        self.filter = ""  # shown: the files whose name holds it (any case)
        self._ages_minute = ""  # the minute the ages were drawn at: redrawn as it turns

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="files", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter: part of a file name", id="filter", compact=True)
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"tui-landscape: {self.folder.resolve().name or self.folder.resolve()}/"
        self.query_one("#filter", Input).display = False
        self.action_refresh()
        self.set_interval(runs.WATCH_SECONDS, self.poll)

    def action_refresh(self, asked: bool = True) -> None:
        self._folder_time = _stamp(self.folder)  # before listing: a change meanwhile is seen
        self._asked = asked  # an empty folder is announced when listed on request only
        self.list_files()

    def poll(self) -> None:
        """Follow the folder: list it again when it changed, describe grown running files;
        the ages ("3m ago") are drawn again as the minute turns."""
        if self.listed and _now().strftime("%H%M") != self._ages_minute:
            self._redraw_ages()
        if _stamp(self.folder) != self._folder_time:
            self.action_refresh(asked=False)
            return
        grown = [p for p, w in self._watches.items() if w.changed()]
        if grown:
            self.describe_rows(grown)

    @work(thread=True, exclusive=True, exit_on_error=False, group="browser-rows")
    def describe_rows(self, paths: list[Path]) -> None:
        self.post_message(self.Described([describe_file(p) for p in paths]))

    def on_browser_screen_described(self, message: Described) -> None:
        fresh = {r.path: r for r in message.rows if r.path in self.rows}  # gone: next listing
        self.listed = [fresh.get(r.path, r) for r in self.listed]
        for p, r in fresh.items():
            if not r.cells[3].startswith(RUNNING):
                self._watches.pop(p, None)
        if fresh:
            self._fill()  # a few rows at most: redrawing keeps one way of drawing a row

    @work(thread=True, exclusive=True, exit_on_error=False, group="browser-list")
    def list_files(self) -> None:
        """Describe the folder's files off the UI thread; a newer listing cancels this one."""
        worker = get_current_worker()
        rows = list_folder(self.folder, lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.post_message(self.Listed(self.folder, rows))

    def on_browser_screen_listed(self, message: Listed) -> None:
        self.listed = message.rows
        self.marked &= {r.path for r in message.rows}  # files gone since: no longer marked
        self._fill()
        self._watches = {
            r.path: runs.Watch(r.path) for r in message.rows if r.cells[3].startswith(RUNNING)
        }
        for w in self._watches.values():
            w.changed()  # the stamp of what was just listed
        if not self.listed and self._asked:
            self.notify(f"No surface files (.h5) in {self.folder}", timeout=4, markup=False)

    def layout_for(self, width: int) -> tuple[tuple[str, ...], dict[str, int]]:
        """The columns shown in ``width`` terminal columns and their widths: each fixed column
        at its widest cell, the file name the rest (below ``MIN_FILE`` the surfaces column
        gives it its room; the status line lists the surfaces)."""
        table = self.query_one(DataTable)
        pad = 2 * table.cell_padding
        widths = dict(WIDTHS)
        # Only as wide as the longest list of names (often one or two names).
        longest = max((len(r.cells[2]) for r in self.listed), default=0)
        widths["surfaces"] = max(len("surfaces"), min(widths["surfaces"], longest))
        # Less the mark column, every column's padding and a vertical scrollbar's room.
        rest = width - (1 + pad) - table.styles.scrollbar_size_vertical - pad
        rest -= sum(w + pad for w in widths.values())
        columns = COLUMNS
        if rest < MIN_FILE:
            columns = tuple(c for c in COLUMNS if c != "surfaces")
            rest += widths.pop("surfaces") + pad
        elif width >= WIDE:
            # What each file is of, after its name. The surfaces take all their names (up to
            # SURFACES_MAX) while the name keeps at least MIN_FILE, then the name what it
            # needs; what is left widens the model's column.
            extra = dict(EXTRA_WIDTHS)
            rest += widths["surfaces"] - sum(w + pad for w in extra.values())
            names = max((len(clean_text(r.path.name)) + 1 for r in self.listed), default=0)
            want_file = max(len("file"), names)
            want_surf = max(len("surfaces"), min(longest, SURFACES_MAX))
            surf = max(min(want_surf, rest - min(want_file, MIN_FILE)), len("surfaces"))
            file_w = max(min(want_file, rest - surf), len("file"))
            extra["model"] += max(0, rest - surf - file_w)
            widths["surfaces"] = surf
            return ("file", *EXTRA, *COLUMNS[1:]), {"file": file_w, **extra, **widths}
        return columns, {"file": max(rest, 1), **widths}

    def _fill(self) -> None:
        """Draw the rows of the last listing for the screen's width; the cursor stays."""
        table = self.query_one(DataTable)
        row = table.cursor_row
        columns, widths = self._layout = self.layout_for(self.size.width)
        table.clear(columns=True)
        table.add_column("", key=MARK, width=1)
        for c in columns:
            table.add_column(c, key=c, width=widths[c])
        now = _now()
        self._ages_minute = now.strftime("%H%M")
        shown = self.shown()
        self.rows = [r.path for r in shown]
        for r in shown:
            name = r.path.name + ("/" if r.cells[0] == STUDY else "")
            cells = {"file": name, **dict(zip(COLUMNS[1:], r.cells, strict=True))}
            cells.update(zip(EXTRA, r.extra, strict=True))
            cells["created"] = ago(cells["created"], now)
            # File names and what the files say are shown as written, never as markup.
            shown = [fit(clean_text(cells[c]), widths[c], middle=c == "file") for c in columns]
            mark = "*" if r.path in self.marked else " "
            table.add_row(mark, *map(plain, shown), key=str(r.path))
        if self.rows:
            table.move_cursor(row=min(row, len(self.rows) - 1))
        self.show_status()

    def shown(self) -> list[FileRow]:
        """The listed files the filter keeps, in the chosen order."""
        rows = [r for r in self.listed if self.filter.lower() in r.path.name.lower()]
        if self.sort == "newest":
            rows.sort(key=lambda r: r.cells[4], reverse=True)  # ISO times sort as text
        elif self.sort == "grid":
            rows.sort(key=lambda r: _points(r.cells[1]), reverse=True)
        return rows

    def _redraw_ages(self) -> None:
        now = _now()
        self._ages_minute = now.strftime("%H%M")
        columns, widths = self._layout or self.layout_for(self.size.width)
        table = self.query_one(DataTable)
        for r in self.listed:
            if r.path in self.rows and "created" in columns:
                age = fit(clean_text(ago(r.cells[4], now)), widths["created"])
                table.update_cell(str(r.path), "created", plain(age))

    def action_top(self) -> None:
        self.action_first()

    def action_bottom(self) -> None:
        self.action_last()

    def action_first(self) -> None:
        field = self.query_one("#filter", Input)
        if field.has_focus:  # home in the filter: its start
            field.action_home()
        else:
            self.query_one(DataTable).move_cursor(row=0)

    def action_last(self) -> None:
        field = self.query_one("#filter", Input)
        if field.has_focus:
            field.action_end()
        else:
            self.query_one(DataTable).move_cursor(row=max(len(self.rows) - 1, 0))

    def action_sort(self) -> None:
        self.sort = self.SORTS[(self.SORTS.index(self.sort) + 1) % len(self.SORTS)]
        self._fill()
        self.notify(f"sorted by {self.sort}", timeout=1.5)

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter = event.value.strip()
        self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter keeps the filter and goes back to the files."""
        self.query_one(DataTable).focus()
        event.input.display = bool(self.filter)

    def on_key(self, event: events.Key) -> None:
        """Esc in the filter clears it: every file again."""
        field = self.query_one("#filter", Input)
        if event.key == "escape" and field.has_focus:
            event.stop()
            field.value = ""
            field.display = False
            self.query_one(DataTable).focus()

    def on_resize(self, event: events.Resize) -> None:
        if self.listed and self._layout != self.layout_for(event.size.width):
            self._fill()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_status()

    def show_status(self) -> None:
        """The highlighted file in full: what it holds, or why it cannot be read."""
        p = self._current()
        row = next((r for r in self.listed if r.path == p), None)
        self.query_one("#status", Static).update(plain(row.detail if row else ""))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Any worker's error, said in one line (``screens.workers.failed``)."""
        failed(self, event, {"browser-list": f"listing {self.folder}",
                             "browser-rows": "following the running files"})  # fmt: skip

    def selected_surface(self) -> Path | None:
        """The highlighted file: the app's n starts a new setup from its stored config."""
        return self._current()

    def _current(self) -> Path | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        p = self._current()
        if p is None:
            return
        if p.is_dir():  # a study folder: its members
            from tui_landscape.screens.study import StudyScreen

            self.app.push_screen(StudyScreen(p))
            return
        try:
            surface_info(p)  # one cheap open: the file may have changed since it was listed
        except LandscapeError as e:
            # The plot view of a file it cannot read would be an empty screen: stay here.
            self.notify(unreadable_reason(e, p), severity="error", markup=False)
            return
        from tui_landscape.screens.plot import PlotScreen

        self.app.push_screen(PlotScreen(p))

    def action_mark(self) -> None:
        p = self._current()
        if p is None:
            return
        if p.is_dir():
            self.notify("A study folder is compared from within: enter, then c", markup=False)
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
        if p.is_dir():  # a whole study (its runs, maps and report): not one key away
            self.notify(f"{p.name}/ is a study folder; delete it outside the app",
                        severity="warning", markup=False)  # fmt: skip
            return
        if self._refuse_running(p):
            return
        # On the UI thread, not in a worker: a 'y' typed at once must meet the question. It
        # reads one name from each other surface file of the folder: milliseconds.
        beside = removable_sidecars(p)  # a detached run's log and config included
        shared = sidecars(p).get("directions")
        kept = ""
        if shared is not None and "directions" not in beside:
            kept = f"{shared.name} stays: another surface here was computed on it."
        self._confirm_delete(p, beside, kept)

    def _refuse_running(self, p: Path) -> bool:
        """True, and says so, when a run is writing ``p``: deleting its files would lose every
        point it has computed and free its lock for a second writer."""
        pid = lock_holder(p)
        if pid is None:
            return False
        who = f"pid {pid}" if pid else "another process"
        self.notify(
            f"{p.name} is being computed ({who}); stop that run first, then delete it",
            severity="error",
            markup=False,
        )
        return True

    def _confirm_delete(self, p: Path, beside: dict[str, Path], kept: str) -> None:
        def done(yes: bool | None) -> None:
            if yes and not self._refuse_running(p):  # a run may have started meanwhile
                for q in (p, *beside.values()):
                    q.unlink(missing_ok=True)
                self.marked.discard(p)
                self.rows.remove(p)
                self.listed = [r for r in self.listed if r.path != p]
                self.query_one(DataTable).remove_row(str(p))
                self.show_status()
                self.notify(f"Deleted {p.name}", markup=False)

        self.app.push_screen(ConfirmDelete(p, list(beside), kept), done)


def show_folder(app, folder: Path) -> None:
    """Show ``folder`` in the browser: the app's own when it lists that folder (made now where
    the app opened on a config and has none yet), else a new one."""
    base = app.screen_stack[1] if len(app.screen_stack) > 1 else None
    listed = base.folder if isinstance(base, BrowserScreen) else app.folder
    if listed.resolve() == Path(folder).resolve():
        app.action_browser()
        if isinstance(base, BrowserScreen):  # a new one lists the folder as it mounts
            base.action_refresh()
    else:
        app.push_screen(BrowserScreen(folder))
