"""Two or more surfaces side by side on one scale, with their sharpness numbers, and the same
notes and verdict as ``tui-landscape compare`` (both from ``tui_landscape.comparison``).

The files are read, and each surface they share fitted, once, in a worker (``read_files``);
a key or a resize draws from those (the last few drawings are kept), and reads nothing.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker

from engine.errors import LandscapeError
from engine.formats import Surface, read_surface
from engine.sharpness import format_number
from tui_landscape.comparison import Comparison, compare_surfaces
from tui_landscape.plots.difference import difference_kind, difference_view, resolve_difference
from tui_landscape.plots.spec import APP_KINDS, map_kind, next_kind, resolve_compare
from tui_landscape.plots.views import render_compare
from tui_landscape.safe import plain
from tui_landscape.screens.figures import figure_path, write_figure
from tui_landscape.screens.workers import failed

__all__ = ["CompareScreen", "comparison_lines"]


class Pane(Static):
    """One file's plot. Its own size, not the screen's, decides the drawing: the numbers under
    the panes take a line per file once read, and the panes shrink (drawn for the screen's
    size, their last line, the axes' titles, was cut)."""

    def on_resize(self) -> None:
        screen = self.screen
        if isinstance(screen, CompareScreen):
            screen.redraw()


class CompareScreen(Screen):
    """Side by side (one shared set of levels or colour range); s switches the surface."""

    BINDINGS = [
        Binding("s", "next_surface", "Surface", tooltip="Switch surface: the files' next one"),
        Binding("k", "next_kind", "Kind", tooltip="Switch kind: contour, filled or heat map"),
        Binding("d", "toggle_difference", "B-A", tooltip="Two files: show B - A, or both again"),
        Binding(
            "e", "export", "Export", tooltip="Export the plots as one PNG, beside the first file"
        ),
        Binding("escape", "app.pop_screen", "Back", tooltip="Back to the file browser"),
    ]
    KINDS = APP_KINDS
    MAX_CACHED = 8  # drawings kept: a resize back, or a kind seen before, is not drawn again

    class Loaded(Message):
        """The files read, and each surface's numbers, from the reading worker."""

        def __init__(self, surfaces: list[Surface], numbers: dict[str, str]) -> None:
            super().__init__()
            self.surfaces, self.numbers = surfaces, numbers

    def __init__(self, paths: list[Path], labels: list[str] | None = None) -> None:
        super().__init__()
        self.paths = [Path(p) for p in paths]
        # A study's members share file names (surface_2d.h5): `labels` names them instead.
        self.labels = list(labels) if labels else None
        self.name_, self.kind = "train_loss", "auto"
        self.surfaces: list[Surface] | None = None  # None until the worker has read them
        self.numbers: dict[str, str] = {}  # the sharpness lines by surface name, fitted once
        self._drawn: dict[tuple, list[str]] = {}  # the panes' texts by what and how big
        self.difference = False  # `d`: one map of the second file less the first

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            for k in range(len(self.paths)):
                yield Pane(id=f"pane{k}", classes="pane")
        yield Static(id="numbers")
        # Without the palette hint every key fits in 80 columns; ctrl+p still opens it.
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.title = "compare: " + ", ".join(self.labels or [p.name for p in self.paths])
        self.query_one("#numbers", Static).update("Reading the files...")
        self.read_files(self.paths)

    @work(thread=True, exclusive=True, group="compare-read", exit_on_error=False)
    def read_files(self, paths: list[Path]) -> None:
        """Read the files and fit each surface they share, once, off the UI thread: keys and
        resizes draw from what this sends (``Loaded``)."""
        surfaces = [read_surface(p) for p in paths]
        names = [n for n in surfaces[0].values if all(n in s.values for s in surfaces)]
        # A study's members share file names: the numbers name each by its label.
        labels = (
            dict(zip([s.path for s in surfaces], self.labels, strict=True)) if self.labels else None
        )
        numbers = {n: comparison_lines(compare_surfaces(surfaces, n, labels=labels)) for n in names}
        self.post_message(self.Loaded(surfaces, numbers))

    def on_compare_screen_loaded(self, message: Loaded) -> None:
        self.surfaces = message.surfaces
        self.numbers = dict(message.numbers)
        self.refresh_bindings()  # `k` for 2D files only
        self.redraw()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A file that cannot be read, or any error of a worker, is said, never swallowed."""
        msg = failed(self, event, {"compare-read": "reading the files", "export": "the export"})
        if msg is not None and self.surfaces is None:
            self.query_one("#numbers", Static).update(plain(msg))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Map kinds exist for 2D files only: 1D files are curves (False hides `k`)."""
        if action == "next_kind":
            return bool(self.surfaces) and self.surfaces[0].y is not None
        if action == "toggle_difference":
            return len(self.paths) == 2
        return True

    def redraw(self) -> None:
        """Draw the panes and numbers from the files read (nothing is read or fitted here)."""
        if self.surfaces is None:
            return
        panes = list(self.query(".pane"))
        w = max(panes[0].size.width, 30) if panes else 40
        h = max(panes[0].size.height, 10) if panes else 16
        # By what is drawn: `auto` is drawn as the contour map `k` comes back to.
        shown = map_kind(self.kind, ratio=self.name_ == "ratio")
        if self.difference:
            shown = difference_kind(self.kind)
        state = (self.name_, shown, w, h, not self.app.no_color, self.difference)
        texts = self._drawn.get(state)
        if texts is None:
            texts = self._draw(w, h, panes)
            if len(self._drawn) >= self.MAX_CACHED:
                self._drawn.pop(next(iter(self._drawn)))  # the oldest
            self._drawn[state] = texts
        for pane, text in zip(panes, texts, strict=False):
            pane.update(Text.from_ansi(text))
        # File names and errors as written, never as markup (plain also cleans them).
        numbers = self.numbers.get(self.name_, "")
        if self.difference:
            numbers = texts[1]  # the difference's own line, drawn with it
        self.query_one("#numbers", Static).update(plain(numbers))

    def _draw(self, w: int, h: int, panes: list) -> list[str]:
        assert self.surfaces is not None
        if self.difference:  # one pane shows B - A; the other is hidden (its text: the numbers)
            return list(difference_view(self.surfaces, self.name_, self.kind, w, h,
                                        not self.app.no_color))  # fmt: skip
        try:
            texts = render_compare(self.surfaces, self.name_, self.kind, width=w, height=h,
                                   color=not self.app.no_color, names=self.labels)  # fmt: skip
        except LandscapeError as e:
            texts = [str(e)] + [""] * (len(panes) - 1)
        if len(texts) == 1:  # 1D files are overlaid on one plot
            texts = texts + [""] * (len(panes) - 1)
        return texts

    def action_next_surface(self) -> None:
        names = list(self.numbers)  # the surfaces every file has
        if not names:
            return
        self.name_ = (
            names[(names.index(self.name_) + 1) % len(names)] if self.name_ in names else names[0]
        )
        self.redraw()

    def action_next_kind(self) -> None:
        self.kind = next_kind(self.kind, ratio=self.name_ == "ratio")
        self.redraw()

    def action_export(self) -> None:
        """The files side by side on their shared scale, as one PNG beside the first."""
        if self.surfaces is None:
            self.notify("The files are still being read", severity="warning")
            return
        try:
            if self.difference:
                specs = [resolve_difference(*self.surfaces, self.name_, self.kind, figure=True)]
            else:
                specs = resolve_compare(self.surfaces, self.name_, self.kind)
                if self.labels:
                    from tui_landscape.plots.views import relabel

                    specs = relabel(specs, self.labels)
        except LandscapeError as e:
            self.notify(str(e), severity="error", markup=False)
            return
        what = map_kind(self.kind, ratio=self.name_ == "ratio")
        if self.difference:
            what = difference_kind(self.kind)
        stems = "-".join(p.stem for p in self.paths) + ("-diff" if self.difference else "")
        write_figure(
            self, figure_path(self.paths[0].parent, "compare", stems, self.name_, what), specs
        )

    def action_toggle_difference(self) -> None:
        """Show B - A in one pane (the files must share their grid and directions), or both."""
        if self.surfaces is None:
            self.notify("The files are still being read", severity="warning")
            return
        if not self.difference:
            try:
                resolve_difference(*self.surfaces, self.name_, self.kind)
            except LandscapeError as e:  # other grids or directions: said, and nothing changes
                self.notify(str(e), severity="error", markup=False)
                return
        self.difference = not self.difference
        for pane in list(self.query(".pane"))[1:]:
            pane.display = not self.difference  # the difference takes the whole width
        self.redraw()


def comparison_lines(c: Comparison) -> str:
    """Each file's minimum and fitted numbers, the verdict and the notes, a line each: the
    verdict and notes as ``compare`` prints them (the notes last, where a short panel cuts
    them first), numbers as ``info`` writes them ("n/a", never "nan")."""
    lines = []
    for f in c.files:
        sh = f.sharpness
        if sh is None:
            lines.append(f"{f.label}: {f.error}")
            continue
        curv = ", ".join(f"{a.axis} {format_number(a.curvature)}" for a in sh.axes)
        lines.append(
            f"{f.label}: min {format_number(sh.min_value)}, curvature {curv}, "
            f"mean rise r={sh.radius:g} {format_number(sh.mean_increase)}"
        )
    if c.verdict:
        lines.append(c.verdict)
    lines.extend(f"note: {w}" for w in c.warnings)
    return "\n".join(lines)
