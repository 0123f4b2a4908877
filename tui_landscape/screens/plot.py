"""The plot view: one surface file, its surfaces and kinds, a cursor, 1D slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from engine.errors import LandscapeError
from engine.formats import Surface, Trajectory, has_trajectory, read_surface, read_trajectory
from engine.sharpness import format_sharpness, sharpness
from tui_landscape.plots.terminal import curve_plot
from tui_landscape.plots.views import render, surface_values

__all__ = ["PlotScreen", "PlotView"]


class PlotView(Static):
    """A surface drawn to the widget's size; redrawn on resize and on every change."""

    DEFAULT_CSS = "PlotView { height: 1fr; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.surface: Surface | None = None
        self.name_ = "train_loss"
        self.kind = "auto"
        self.log_scale = False
        self.levels: int | None = None  # None: the default levels
        self.cursor: tuple[int, int] | None = None  # (i, j) grid cell
        self.slice: str | None = None  # None, "row" or "column" through the cursor
        self.trajectory: Trajectory | None = None

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        s = self.surface
        if s is None:
            self.update("No surface yet.")
            return
        w, h = max(self.size.width, 40), max(self.size.height, 12)
        color = not self.app.no_color
        try:
            if self.slice and s.y is not None and self.cursor is not None:
                text = self._slice(s, w, h, color)
            else:
                cur = None
                if self.cursor is not None and s.y is not None:
                    i, j = self.cursor
                    cur = (float(s.x[j]), float(s.y[i]))
                text = render(
                    s, self.name_, self.kind, levels=self.levels, log=self.log_scale, width=w,
                    height=h, color=color,
                    trajectory=self.trajectory, cursor=cur,
                )  # fmt: skip
        except LandscapeError as e:
            text = str(e)
        self.update(Text.from_ansi(text))

    def _slice(self, s: Surface, w: int, h: int, color: bool) -> str:
        z = surface_values(s, self.name_)
        i, j = self.cursor
        if self.slice == "row":
            return curve_plot(s.x, {f"{self.name_} at y={s.y[i]:.3g}": z[i]}, width=w, height=h,
                              color=color, xlabel="x", left_label=self.name_)  # fmt: skip
        return curve_plot(s.y, {f"{self.name_} at x={s.x[j]:.3g}": z[:, j]}, width=w, height=h,
                          color=color, xlabel="y", left_label=self.name_)  # fmt: skip


class PlotScreen(Screen):
    """One file: switch surfaces and kinds, move a cursor to read values, slice, reload."""

    BINDINGS = [
        Binding("s", "next_surface", "Surface"),
        Binding("k", "next_kind", "Kind"),
        Binding("l", "toggle_log", "Log"),
        Binding("plus,equals_sign", "levels(2)", "Levels"),
        Binding("minus", "levels(-2)", "Fewer levels", show=False),
        Binding("up", "move(1, 0)", "Cursor", show=False),
        Binding("down", "move(-1, 0)", show=False),
        Binding("left", "move(0, -1)", show=False),
        Binding("right", "move(0, 1)", show=False),
        Binding("r", "slice('row')", "Row"),
        Binding("c", "slice('column')", "Column"),
        Binding("f5", "reload", "Reload", show=False),  # in help (?)
        Binding("escape", "app.pop_screen", "Back"),
    ]
    KINDS = ("auto", "contour", "filled", "heatmap")

    def __init__(self, path: Path, trajectory: Path | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.trajectory_path = trajectory

    def compose(self) -> ComposeResult:
        yield Header()
        yield PlotView(id="plot")
        yield Static(id="status")
        # Without the palette hint every key fits in 100 columns; ctrl+p still opens it.
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.title = f"tui-landscape: {self.path.name}"
        self.action_reload()

    @property
    def view(self) -> PlotView:
        return self.query_one(PlotView)

    def action_reload(self) -> None:
        """Read the file again (with its journal): a running computation's points appear."""
        try:
            s = read_surface(self.path)
        except LandscapeError as e:
            self.notify(str(e), severity="error")
            return
        v = self.view
        v.surface = s
        if v.name_ not in s.values:
            v.name_ = next(iter(s.values))
        if v.cursor is None:
            v.cursor = tuple(int(k) for k in np.unravel_index(s.grid.center_index(), s.shape))
            if s.y is None:
                v.cursor = (0, v.cursor[0])
        traj = self.trajectory_path
        if traj is None and s.layout == "tui-landscape" and has_trajectory(self.path):
            traj = self.path  # a PCA surface holds its projected path (proj_xcoord, ...)
        if traj is not None:
            v.trajectory = read_trajectory(traj, s)
        v.redraw()
        self.update_status()

    def update_status(self) -> None:
        v = self.view
        s = v.surface
        if s is None:
            return
        i, j = v.cursor
        z = surface_values(s, v.name_)
        value = z[i, j] if z.ndim == 2 else z[j]
        at = f"x={s.x[j]:.4g}" + (f", y={s.y[i]:.4g}" if s.y is not None else "")
        val = (
            "unfinished"
            if not np.isfinite(value)
            and not (s.completed[i, j] if s.completed.ndim == 2 else s.completed[j])
            else f"{value:.6g}"
        )
        parts = [f"{v.name_} at ({at}) = {val}", f"{s.n_done}/{s.completed.size} done"]
        if v.name_.endswith("_loss") and np.isfinite(z).any():
            parts.append(format_sharpness(sharpness(s.x, s.y, z))[1])
        self.query_one("#status", Static).update(" | ".join(parts))

    def action_next_surface(self) -> None:
        v = self.view
        names = list(v.surface.values) + (["ratio"] if "max_eig" in v.surface.values else [])
        v.name_ = names[(names.index(v.name_) + 1) % len(names)] if v.name_ in names else names[0]
        v.redraw()
        self.update_status()

    def action_next_kind(self) -> None:
        v = self.view
        v.kind = self.KINDS[(self.KINDS.index(v.kind) + 1) % len(self.KINDS)]
        v.slice = None
        v.redraw()
        self.notify(f"kind: {v.kind}", timeout=1.5)

    def action_levels(self, step: int) -> None:
        v = self.view
        v.levels = min(max((v.levels or 10) + step, 2), 40)
        v.redraw()
        self.notify(f"{v.levels} levels", timeout=1.5)

    def action_toggle_log(self) -> None:
        self.view.log_scale = not self.view.log_scale
        self.view.redraw()

    def action_move(self, di: int, dj: int) -> None:
        v = self.view
        if v.surface is None:
            return
        ny = 1 if v.surface.y is None else len(v.surface.y)
        i, j = v.cursor
        v.cursor = (min(max(i + di, 0), ny - 1), min(max(j + dj, 0), len(v.surface.x) - 1))
        v.redraw()
        self.update_status()

    def action_slice(self, which: str) -> None:
        v = self.view
        v.slice = None if v.slice == which else which
        v.redraw()
