"""Two or more surfaces side by side on one scale, with their sharpness numbers."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from engine.errors import LandscapeError
from engine.formats import read_surface
from engine.sharpness import format_number, sharpness
from tui_landscape.plots.spec import APP_KINDS, map_kind, next_kind, resolve_compare, surface_values
from tui_landscape.plots.views import render_compare
from tui_landscape.safe import plain
from tui_landscape.screens.figures import figure_path, write_figure

__all__ = ["CompareScreen"]


class CompareScreen(Screen):
    """Side by side (one shared set of levels or colour range); s switches the surface."""

    BINDINGS = [
        Binding("s", "next_surface", "Surface"),
        Binding("k", "next_kind", "Kind"),
        Binding("e", "export", "Export"),
        Binding("escape", "app.pop_screen", "Back"),
    ]
    KINDS = APP_KINDS

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.name_, self.kind = "train_loss", "auto"

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            for k in range(len(self.paths)):
                yield Static(id=f"pane{k}", classes="pane")
        yield Static(id="numbers")
        # Without the palette hint every key fits in 80 columns; ctrl+p still opens it.
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.title = "compare: " + ", ".join(p.name for p in self.paths)
        self.surfaces = [read_surface(p) for p in self.paths]
        self.refresh_bindings()  # `k` for 2D files only
        self.call_after_refresh(self.redraw)

    def on_resize(self) -> None:
        self.redraw()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Map kinds exist for 2D files only: 1D files are curves (False hides `k`)."""
        if action == "next_kind":
            surfaces = getattr(self, "surfaces", None)
            return bool(surfaces) and surfaces[0].y is not None
        return True

    def redraw(self) -> None:
        if not hasattr(self, "surfaces"):
            return
        panes = list(self.query(".pane"))
        w = max(panes[0].size.width, 30) if panes else 40
        h = max(panes[0].size.height, 10) if panes else 16
        try:
            texts = render_compare(self.surfaces, self.name_, self.kind, width=w, height=h,
                                   color=not self.app.no_color)  # fmt: skip
        except LandscapeError as e:
            texts = [str(e)] + [""] * (len(panes) - 1)
        if len(texts) == 1:  # 1D files are overlaid on one plot
            texts = texts + [""] * (len(panes) - 1)
        for pane, text in zip(panes, texts, strict=False):
            pane.update(Text.from_ansi(text))
        lines = []
        for s in self.surfaces:
            try:
                sh = sharpness(s.x, s.y, surface_values(s, self.name_))
                # The numbers as `info` and the plot view write them ("n/a", never "nan").
                curv = ", ".join(f"{a.axis} {format_number(a.curvature)}" for a in sh.axes)
                lines.append(
                    f"{s.path.name}: min {format_number(sh.min_value)}, curvature {curv}, "
                    f"mean rise r={sh.radius:g} {format_number(sh.mean_increase)}"
                )
            except LandscapeError as e:
                lines.append(f"{s.path.name}: {e}")
        # File names and errors as written, never as markup (plain also cleans them).
        self.query_one("#numbers", Static).update(plain("\n".join(lines)))

    def action_next_surface(self) -> None:
        names = [n for n in self.surfaces[0].values if all(n in s.values for s in self.surfaces)]
        self.name_ = (
            names[(names.index(self.name_) + 1) % len(names)] if self.name_ in names else names[0]
        )
        self.redraw()

    def action_next_kind(self) -> None:
        self.kind = next_kind(self.kind, ratio=self.name_ == "ratio")
        self.redraw()

    def action_export(self) -> None:
        """The files side by side on their shared scale, as one PNG beside the first."""
        try:
            specs = resolve_compare(self.surfaces, self.name_, self.kind)
        except LandscapeError as e:
            self.notify(str(e), severity="error", markup=False)
            return
        what = map_kind(self.kind, ratio=self.name_ == "ratio")
        stems = "-".join(p.stem for p in self.paths)
        write_figure(
            self, figure_path(self.paths[0].parent, "compare", stems, self.name_, what), specs
        )
