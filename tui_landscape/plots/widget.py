"""The plot view widget: a surface drawn to the widget's size, in the plot view and the setup.

Importing it loads no plotting: numpy, plotext and the file format come with the first surface
drawn (``render``), so the setup screen, which shows an empty view until a run starts, paints
without them.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.errors import LandscapeError

if TYPE_CHECKING:
    from engine.formats import Surface, Trajectory
    from tui_landscape.plots.spec import PlotSpec

__all__ = ["PlotView"]


MIN_WIDTH, MIN_HEIGHT = 40, 12  # below this a plotext map is unreadable


class PlotView(Widget):
    """A surface drawn to the widget's size from its reactive state.

    Setting any state attribute (``surface``, ``name_``, ``kind``, ``levels``, ``log_scale``,
    ``cursor``, ``slice``, ``trajectory``, ``spectrum``) or resizing repaints it, and
    ``render`` is the one path that draws: repaints coalesce to at most one per frame, and a
    repaint whose state and size did not change reuses the last text (a plot takes tens of
    milliseconds).
    """

    DEFAULT_CSS = "PlotView { height: 1fr; }"

    # A Surface or Trajectory holds arrays, which `!=` cannot compare: always a new state.
    surface: reactive[Surface | None] = reactive(None, always_update=True)
    trajectory: reactive[Trajectory | None] = reactive(None, always_update=True)
    # The file's hessian_spectrum (read_spectrum), drawn by kind "density"; None: it has none.
    spectrum: reactive[dict | None] = reactive(None, always_update=True)
    name_ = reactive("train_loss")
    kind = reactive("auto")
    log_scale = reactive(False)
    levels: reactive[int | None] = reactive(None)  # None: the default levels
    cursor: reactive[tuple[int, int] | None] = reactive(None)  # (i, j) grid cell
    slice: reactive[str | None] = reactive(None)  # None, "row" or "column" through the cursor

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._last: tuple[tuple, tuple, Text] | None = None

    def render(self) -> Text:
        s = self.surface
        if s is None:
            return Text("No surface yet.")
        w, h = self.size.width, self.size.height
        if 0 < w < MIN_WIDTH or 0 < h < MIN_HEIGHT:
            # Drawn wider than the widget, each line would wrap into the next (the setup's
            # pane at 80 columns): say how far it is, and where the map fits.
            done = f"{s.n_done}/{s.completed.size} points done"
            return Text(f"{s.path.name}: {done}. The map needs {MIN_WIDTH}x{MIN_HEIGHT} cells "
                        f"(here {w}x{h}): a wider terminal, or the file's plot view.")  # fmt: skip
        w, h = max(w, MIN_WIDTH), max(h, MIN_HEIGHT)
        color = not self.app.no_color
        # The arrays are compared by identity (a new Surface is a new state), the rest by value.
        data = (s, self.trajectory, self.spectrum)
        state = (self.name_, self.kind, self.log_scale, self.levels, self.cursor, self.slice,
                 w, h, color)  # fmt: skip
        last = self._last
        if last is None or not all(map(operator.is_, last[0], data)) or last[1] != state:
            from tui_landscape.plots.terminal import draw

            try:
                text = draw(self.spec(), width=w, height=h, color=color)
            except LandscapeError as e:
                text = str(e)
            self._last = last = (data, state, Text.from_ansi(text))
        return last[2]

    def shown_levels(self) -> int:
        """How many levels the map shows now (its default ones, or a count chosen before):
        what the ``+`` and ``-`` keys step from. 0 for a curve, or a surface not drawn."""
        from tui_landscape.plots.kinds import SPECTRUM_KINDS
        from tui_landscape.plots.spec import resolve

        s = self.surface
        if s is None or self.kind in SPECTRUM_KINDS:  # a density has no levels
            return 0
        try:
            spec = resolve(s, self.name_, self.kind, levels=self.levels, log=self.log_scale)
        except LandscapeError:
            return 0
        return 0 if spec.kind == "curve" else int(spec.levels.size)

    def spec(self) -> PlotSpec:
        """What the view shows now: the map, the 1D slice through the cursor, or the file's
        eigenvalue density (kind ``density``)."""
        from tui_landscape.plots.kinds import SPECTRUM_KINDS
        from tui_landscape.plots.spec import resolve, slice_spec

        s = self.surface
        assert s is not None
        if self.kind in SPECTRUM_KINDS:
            from tui_landscape.plots.density import density_spec

            return density_spec(self.spectrum, s.path, log=self.log_scale)
        if self.slice and s.y is not None and self.cursor is not None:
            return slice_spec(s, self.name_, self.cursor, self.slice)
        cur = None
        if self.cursor is not None and s.y is not None:
            i, j = self.cursor
            cur = (float(s.x[j]), float(s.y[i]))
        return resolve(s, self.name_, self.kind, levels=self.levels, log=self.log_scale,
                       trajectory=self.trajectory, cursor=cur)  # fmt: skip
