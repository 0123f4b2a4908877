"""A study folder: its members as a table with their status and measures; open, compare.

The table (``table.json``) is read, and each measure's tau against the gap computed, in a
worker (``read_study``). Enter opens the highlighted member's surface (2D, else 1D) in the plot
view; ``c`` compares the members where only the chosen factor varies (``f`` chooses it), in the
highlighted member's group and seed, the members that are not minimizers left out and named.
"""

from __future__ import annotations

import math
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker

from engine.errors import LandscapeError
from engine.study.analysis import Correlation, correlate
from engine.study.table import Row, StudyTable, read_table
from tui_landscape.safe import plain
from tui_landscape.screens.workers import error_line, failed
from tui_landscape.studies import INFO_MEASURES, factor_members

__all__ = ["OPEN_STAGES", "StudyScreen"]

# What enter opens of a member, the first it has.
OPEN_STAGES = ("surface_2d", "surface_1d", "hessian", "surface_2d_raw", "surface_1d_raw", "pca")


class StudyScreen(Screen):
    """A study's members: enter opens one, c compares a factor's members, f picks the factor."""

    BINDINGS = [
        Binding(
            "enter", "open", "Open", tooltip="Open the selected member's surface (2D, else 1D)"
        ),
        Binding(
            "c",
            "compare",
            "Compare factor",
            tooltip="Compare the members where only the chosen factor varies (the selected "
            "member's group and seed)",
        ),
        Binding("f", "next_factor", "Factor", tooltip="Choose the factor that c compares"),
        Binding("f5", "refresh", "Refresh", tooltip="Read the study's table again"),
        Binding("escape", "app.pop_screen", "Back", tooltip="Back to the file browser"),
    ]

    class Loaded(Message):
        """The table and the taus, from the reading worker."""

        def __init__(self, table: StudyTable, taus: list[Correlation]) -> None:
            super().__init__()
            self.table, self.taus = table, taus

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.table: StudyTable | None = None
        self.taus: list[Correlation] = []
        self.factor = ""  # what `c` compares: the first factor until `f`

    def output_folder(self) -> Path:
        """Where the app's browser goes when this screen, opened alone, is left: the folder
        the study is in (the study folder itself holds no surface file)."""
        return self.folder.resolve().parent

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="members", cursor_type="row", zebra_stripes=True)
        yield Static(id="taus")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"study: {self.folder.resolve().name}"
        self.query_one("#status", Static).update("Reading the study...")
        self.read_study()

    def action_refresh(self) -> None:
        self.read_study()

    @work(thread=True, exclusive=True, exit_on_error=False, group="study-read")
    def read_study(self) -> None:
        table = read_table(self.folder)
        self.post_message(self.Loaded(table, correlate(table, n_boot=0)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        msg = failed(self, event, {"study-read": f"reading the study {self.folder}"})
        if msg is not None and self.table is None:
            self.query_one("#status", Static).update(plain(msg))

    def on_study_screen_loaded(self, message: Loaded) -> None:
        t = self.table = message.table
        self.taus = message.taus
        if self.factor not in t.factors:
            self.factor = t.factors[0] if t.factors else ""
        shown = [m for m in INFO_MEASURES if any(m in r.values for r in t.rows)]
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        for col in ("member", *t.factors, "status", *shown):
            table.add_column(plain(col), key=col)
        for r in t.rows:
            cells = [r.label, *(str(r.factors.get(f)) for f in t.factors), r.status]
            nums = [_num(r.values.get(m, math.nan)) for m in shown]
            table.add_row(*map(plain, cells), *nums, key=r.label)
        if t.rows:
            table.move_cursor(row=min(row or 0, len(t.rows) - 1))
        taus = ", ".join(
            f"{c.measure} {c.tau:+.2f}" for c in self.taus if math.isfinite(c.tau)
        )  # the intervals are the report's (a bootstrap takes seconds)
        ok = len(t.ok_rows())
        self.query_one("#taus", Static).update(
            plain(f"{ok}/{len(t.rows)} members ok; tau vs {t.target}: {taus or 'n/a'}")
        )
        self.show_status()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_status()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def _current(self) -> Row | None:
        table = self.query_one(DataTable)
        if self.table is None or not self.table.rows or table.cursor_row is None:
            return None
        return self.table.rows[min(table.cursor_row, len(self.table.rows) - 1)]

    def show_status(self) -> None:
        """The highlighted member in full: status and note, its files, what c compares."""
        r = self._current()
        if r is None:
            return
        state = r.status + (f" ({r.note})" if r.note else "")
        files = ", ".join(r.files) or "none yet"
        factor = f"c compares {self.factor} (f: another)" if self.factor else "no factors"
        self.query_one("#status", Static).update(
            plain(f"{r.label}: {state}; files: {files}; {factor}")
        )

    def action_open(self) -> None:
        r = self._current()
        if r is None or self.table is None:
            return
        try:  # a table written by hand may name a file outside the folder: refused, one line
            path = next(
                (p for s in OPEN_STAGES if (p := self.table.file(r, s)) and p.exists()), None
            )
        except LandscapeError as e:
            self.notify(error_line(e), severity="error", markup=False)
            return
        if path is None:
            self.notify(f"{r.label} has no surface file yet", severity="warning", markup=False)
            return
        if not r.ok:
            self.notify(f"{r.label} is {r.status}: not a minimizer", severity="warning",
                        markup=False)  # fmt: skip
        from tui_landscape.screens.plot import PlotScreen

        self.app.push_screen(PlotScreen(path))

    def action_next_factor(self) -> None:
        if self.table is None or not self.table.factors:
            return
        fs = list(self.table.factors)
        self.factor = fs[(fs.index(self.factor) + 1) % len(fs)] if self.factor in fs else fs[0]
        self.show_status()

    def action_compare(self) -> None:
        r = self._current()
        if r is None or not self.factor:
            self.notify("This study has no factor to compare", severity="warning")
            return
        try:  # reads the table again: small, and the members' files may have come since
            paths, labels, left = factor_members(self.folder, self.factor, None, r.label)
        except LandscapeError as e:
            self.notify(error_line(e), severity="error", markup=False)
            return
        if left:
            who = ", ".join(f"{x.label} ({x.status})" for x in left)
            self.notify(f"Left out (not minimizers or no map): {who}", markup=False)
        from tui_landscape.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(paths, labels=labels))


def _num(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.4g}"
