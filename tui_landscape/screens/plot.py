"""The plot view: one surface file, its surfaces and kinds, a cursor, 1D slices.

A file being written is followed without F5: about once a second the screen looks at the file
and its journal (``runs.Watch``: two ``stat`` calls), reads it again in a worker only when
one changed, and redraws only when points arrived (a checkpoint alone changes nothing shown).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker

from engine.errors import LandscapeError
from engine.formats import (
    LAYOUT_OURS,
    Surface,
    clean_text,
    has_trajectory,
    lock_holder,
    read_centre,
    read_spectrum,
    read_surface,
    read_trajectory,
)
from engine.sharpness import format_number, sharpness
from tui_landscape.plots.density import has_density
from tui_landscape.plots.hessian import is_hessian, not_converged
from tui_landscape.plots.kinds import SPECTRUM_KINDS
from tui_landscape.plots.spec import (
    APP_KINDS,
    derived_surfaces,
    map_kind,
    next_kind,
    next_levels,
    surface_values,
)
from tui_landscape.plots.widget import PlotView
from tui_landscape.report import centre_summary
from tui_landscape.runs import Watch
from tui_landscape.screens.figures import figure_path, write_figure
from tui_landscape.screens.workers import failed

__all__ = ["PlotScreen", "PlotView"]


# One footer entry for both slices ("r c Slice"): the footer must fit 80 columns.
_SLICE = Binding.Group("Slice", compact=True)


class PlotScreen(Screen):
    """One file: switch surfaces and kinds, move a cursor to read values, slice, reload."""

    BINDINGS = [
        Binding("s", "next_surface", "Surface", tooltip="Switch surface: the file's next one"),
        Binding(
            "k",
            "next_kind",
            "Kind",
            tooltip="Switch kind: contour, filled or heat map (and the eigenvalue density, "
            "where the file has one)",
        ),
        Binding("l", "toggle_log", "Log", tooltip="Log scale on or off"),
        # Not in the footer (80 columns): in the help (?) and the palette (ctrl+p).
        Binding(
            "plus,equals_sign", "levels(2)", "Levels", show=False, tooltip="More contour levels"
        ),
        Binding("minus", "levels(-2)", "Fewer levels", show=False, tooltip="Fewer contour levels"),
        Binding("up", "move(1, 0)", "Cursor", show=False, tooltip="Move the cursor up"),
        Binding("down", "move(-1, 0)", "Down", show=False, tooltip="Move the cursor down"),
        Binding("left", "move(0, -1)", "Left", show=False, tooltip="Move the cursor left"),
        Binding("right", "move(0, 1)", "Right", show=False, tooltip="Move the cursor right"),
        Binding(
            "r",
            "slice('row')",
            "Row",
            group=_SLICE,
            tooltip="Row slice through the cursor, a curve (again: the map)",
        ),
        Binding(
            "c",
            "slice('column')",
            "Column",
            group=_SLICE,
            tooltip="Column slice through the cursor, a curve (again: the map)",
        ),
        Binding("e", "export", "Export", tooltip="Export what is shown as a PNG beside the file"),
        Binding(
            "f5",
            "reload",
            "Reload",
            show=False,
            tooltip="Reload the file: read it again, with new points",
        ),
        Binding("escape", "back", "Back", tooltip="Back: from a slice to its map, else out"),
        # The app's b (the browser, where esc goes too) is left out of this footer: with it
        # the footer does not fit 80 columns.
        Binding(
            "b",
            "app.browser",
            "Files",
            show=False,
            tooltip="Open the file browser: the surface files",
        ),
    ]
    KINDS = APP_KINDS

    def __init__(self, path: Path, trajectory: Path | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.trajectory_path = trajectory
        self.file_watch = Watch(self.path)
        self.running = False  # a run holds the file's lock
        self._fits_of: Surface | None = None  # the surface ``_fits`` were fitted to
        self._fits: dict[str, list] = {}  # its curvatures by surface name

    def compose(self) -> ComposeResult:
        yield Header()
        yield PlotView(id="plot")
        yield Static(id="status")
        # Without the palette hint every key fits in 80 columns; ctrl+p still opens it.
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.title = f"tui-landscape: {clean_text(self.path.name)}"
        # The view redraws itself on any change; the status line follows what it reads.
        for name in ("surface", "name_", "cursor"):
            self.watch(self.view, name, self.update_status, init=False)
        # A 1D file has no row or column to slice: the footer follows the file.
        self.watch(self.view, "surface", self.refresh_bindings, init=False)
        self.action_reload()
        from tui_landscape import runs  # read at mount: tests shorten it

        self.set_interval(runs.WATCH_SECONDS, self.poll)

    def poll(self) -> None:
        """Read the file again only when it or its journal changed (``stat`` alone)."""
        if self.file_watch.changed():
            self.read_again()

    @work(thread=True, exclusive=True, exit_on_error=False, group="plot-watch")
    def read_again(self) -> None:
        try:
            s = read_surface(self.path)
        except LandscapeError:
            return  # mid-rename or deleted: the next change is read again; F5 says why
        self.app.call_from_thread(self.arrived, s, lock_holder(self.path) is not None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Any worker's error (a read failing otherwise than a file mid-rename, an export),
        said in one line, never swallowed."""
        failed(self, event, {"plot-watch": f"reading {self.path.name}", "export": "the export"})

    def arrived(self, s: Surface, running: bool) -> None:
        """A re-read file: redrawn when its points changed, else only the status follows."""
        v = self.view
        old = v.surface
        was, self.running = self.running, running
        if old is None or old.shape != s.shape or old.values.keys() != s.values.keys():
            self.action_reload()  # a file replaced by another (--overwrite): start afresh
            return
        if np.array_equal(old.completed, s.completed) and old.failed.keys() == s.failed.keys():
            if was != running:
                self.update_status()
            return
        v.surface = s

    def selected_surface(self) -> Path:
        """The file shown: the app's n starts a new setup from its stored config."""
        return self.path

    @property
    def view(self) -> PlotView:
        return self.query_one(PlotView)

    def action_reload(self) -> None:
        """Read the file again (with its journal): a running computation's points appear."""
        self.file_watch.changed()  # the stamp before the read: a write meanwhile is read again
        try:
            s = read_surface(self.path)
        except LandscapeError as e:
            self.notify(str(e), severity="error", markup=False)
            return
        self.running = lock_holder(self.path) is not None
        v = self.view
        traj = self.trajectory_path
        if traj is None and s.layout == LAYOUT_OURS and has_trajectory(self.path):
            traj = self.path  # a PCA surface holds its projected path (proj_xcoord, ...)
        if traj is not None:
            try:
                v.trajectory = read_trajectory(traj, s)
            except LandscapeError as e:  # the surface is still worth showing
                v.trajectory = None
                self.notify(str(e), severity="warning", markup=False)
        try:  # what the run recorded of its directions (info shows more): in the header
            centre = read_centre(self.path) if s.layout == LAYOUT_OURS else None
        except LandscapeError:
            centre = None
        self.sub_title = centre_summary(centre)
        try:  # a Hessian run's spectrum, for the density (`k`)
            v.spectrum = read_spectrum(self.path) if s.layout == LAYOUT_OURS else None
        except LandscapeError as e:
            v.spectrum = None
            self.notify(str(e), severity="warning", markup=False)
        if v.kind in SPECTRUM_KINDS and not has_density(v.spectrum):
            v.kind = "auto"
        if v.name_ not in s.values:
            v.name_ = next(iter(s.values))
        if v.cursor is None or (v.surface is not None and v.surface.shape != s.shape):
            i, j = (0, *np.unravel_index(s.grid.center_index(), s.shape))[-2:]
            v.cursor = (int(i), int(j))
        v.surface = s  # last: the state it is drawn with is complete

    def update_status(self) -> None:
        v = self.view
        s = v.surface
        if s is None or v.cursor is None:
            return
        i, j = v.cursor
        z = surface_values(s, v.name_)
        value = z[i, j] if z.ndim == 2 else z[j]
        at = f"x={s.x[j]:.4g}" + (f", y={s.y[i]:.4g}" if s.y is not None else "")
        cell = (i, j) if s.completed.ndim == 2 else (j,)
        val = "unfinished" if not np.isfinite(value) and not s.completed[cell] else f"{value:.6g}"
        if is_hessian(v.name_) and not_converged(s)[cell]:
            val += " (NOT converged)"  # missing from the ratio, '?' on the map
        done = f"{s.n_done}/{s.completed.size} done" + (", running" if self.running else "")
        parts = [f"{v.name_} at ({at}) = {val}", done]
        if v.name_.endswith("_loss") and np.isfinite(z).any():
            # The curvatures alone (how they were fitted is in `info`): the line fits 80 columns.
            axes = self._curvatures(s, v.name_, z)
            if axes:
                # Fitted to the finished points: an unfinished map's curvature may change.
                label = "curvature" if s.n_done == s.completed.size else "curvature so far"
                parts.append(
                    f"{label} " + ", ".join(f"{a.axis} {format_number(a.curvature)}" for a in axes)
                )
        status = self.query_one("#status", Static)
        # Parts whole on each line: a narrow terminal (80 columns) gets a second line.
        width = status.content_size.width or self.app.size.width - 2
        lines = [parts[0]]
        for part in parts[1:]:
            if len(lines[-1]) + 3 + len(part) <= width:
                lines[-1] += " | " + part
            else:
                lines.append(part)
        status.update("\n".join(lines))

    def _curvatures(self, s: Surface, name: str, z: np.ndarray) -> list:
        """The fitted curvatures of a surface, fitted once per surface read and name: a cursor
        move or a resize redraws the status line, it does not fit again."""
        if self._fits_of is not s:  # points arrived, or another file: a new Surface
            self._fits_of, self._fits = s, {}
        if name not in self._fits:
            self._fits[name] = sharpness(s.x, s.y, z).axes
        return self._fits[name]

    def on_resize(self) -> None:
        self.update_status()

    def action_next_surface(self) -> None:
        v = self.view
        ratio = [n for n in derived_surfaces(v.surface) if n == "ratio"]  # not convexity
        names = [*v.surface.values, *ratio]
        v.name_ = names[(names.index(v.name_) + 1) % len(names)] if v.name_ in names else names[0]

    def action_next_kind(self) -> None:
        """The next map kind; after the last (or from a 1D curve) the eigenvalue density where
        the file has one, then back to the first."""
        v = self.view
        ratio = v.name_ == "ratio"
        flat = v.surface is None or v.surface.y is None
        last = flat or map_kind(v.kind, ratio) == APP_KINDS[-1]
        if v.kind not in SPECTRUM_KINDS and last and has_density(v.spectrum):
            v.kind = SPECTRUM_KINDS[0]
        else:
            v.kind = "auto" if flat else next_kind(v.kind, ratio=ratio)
        v.slice = None
        self.notify(f"kind: {v.kind}", timeout=1.5)

    def action_export(self) -> None:
        """What the view shows (map or slice) as a PNG beside the file."""
        v = self.view
        if v.surface is None:
            return
        if v.kind in SPECTRUM_KINDS:
            what = v.kind
        else:
            flat = v.surface.y is None
            what = v.slice or ("curve" if flat else map_kind(v.kind, v.name_ == "ratio"))
        out = figure_path(self.path.parent, self.path.stem, v.name_, what)
        write_figure(self, out, [v.spec()])

    def action_levels(self, step: int) -> None:
        """``+``/``-``: two levels more or fewer than the map shows (its default levels, the
        reference's ~20, count too)."""
        v = self.view
        shown = v.shown_levels()
        if not shown:
            self.notify("a curve has no contour levels", timeout=1.5)
            return
        v.levels = next_levels(shown, step)
        self.notify(f"{v.levels} levels", timeout=1.5)

    def action_toggle_log(self) -> None:
        self.view.log_scale = not self.view.log_scale

    def action_move(self, di: int, dj: int) -> None:
        v = self.view
        if v.surface is None:
            return
        ny = 1 if v.surface.y is None else len(v.surface.y)
        i, j = v.cursor
        v.cursor = (min(max(i + di, 0), ny - 1), min(max(j + dj, 0), len(v.surface.x) - 1))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Row and column slices and map kinds exist on 2D maps only (False hides them from
        the footer: a 1D file is always a curve), except that ``k`` shows the eigenvalue
        density of any file that has one."""
        if action in ("slice", "next_kind"):
            views = self.query(PlotView)  # none yet while the screen composes
            v = views.first() if views else None
            s = v.surface if v is not None else None
            if action == "next_kind" and v is not None and has_density(v.spectrum):
                return s is not None
            return s is not None and s.y is not None
        return True

    def action_back(self) -> None:
        """Esc: from a slice back to its map; from the map back to where the app was."""
        if self.view.slice is not None:
            self.view.slice = None
        else:
            self.app.pop_screen()

    def action_slice(self, which: str) -> None:
        v = self.view
        v.slice = None if v.slice == which else which
