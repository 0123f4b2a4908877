"""Set up a surface (model, data, directions, grid), run it live, save it as TOML.

Every field maps to one config key; the whole setup is validated by the engine's own config
loader on each change, and the error is shown under the field it names. The run goes through
the engine's result stream (``Job.points``) in a worker thread; the plot redraws from the
recorded points at most five times a second.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Footer, Header, Input, Label, ProgressBar, RichLog, Select

from engine.config import Config, config_to_toml, load_config
from engine.errors import LandscapeError
from engine.formats import Surface
from engine.models import list_models, parameter_count
from tui_landscape.screens.picker import FilePicker
from tui_landscape.screens.plot import PlotView

__all__ = ["FIELDS", "SetupScreen"]

DATASETS = ("digits", "cifar10", "cifar100", "mnist", "fashionmnist", "imagefolder")
# (config key, label, choices or None for free text)
FIELDS: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("model.arch", "model", None),
    ("model.checkpoint", "checkpoint", None),
    ("data.dataset", "data set", DATASETS),
    ("data.root", "data root", None),
    ("data.splits", "splits", ('["train", "test"]', '["train"]', '["test"]')),
    ("directions.kind", "directions", ("random", "interpolate", "file", "pca")),
    ("directions.norm", "norm", ("filter", "layer", "weight", "none")),
    ("directions.ignore", "ignore", ("biasbn", "none")),
    ("directions.type", "type", ("auto", "weights", "states")),
    ("directions.seed", "seed", None),
    ("directions.target", "target ckpt", None),
    ("directions.file", "direction file", None),
    ("directions.checkpoints", "checkpoints (pca)", None),
    ("grid.x", "grid x", None),
    ("grid.y", "grid y", None),
    ("compute.device", "device", None),
    ("compute.workers", "workers", None),
    ("compute.preview", "preview", ("false", "true")),
]
REDRAW_SECONDS = 0.2  # at most five redraws a second while points stream in


def _wid(key: str) -> str:
    return key.replace(".", "-")


def _value_of(cfg: Config, key: str) -> str:
    sec, k = key.split(".")
    v = getattr(getattr(cfg, sec), k)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "[" + ", ".join(f'"{e}"' for e in v) + "]"
    return str(v)


class SetupScreen(Screen):
    """Fields on the left, the live plot and the log on the right."""

    BINDINGS = [
        Binding("ctrl+r", "run", "Run"),
        Binding("ctrl+c", "cancel", "Cancel run", priority=True),
        Binding("ctrl+s", "save", "Save TOML"),
        Binding("ctrl+e", "estimate", "Estimate time"),
        Binding("ctrl+o", "pick_checkpoint", "Pick checkpoint"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, config: Path | None = None) -> None:
        super().__init__()
        self.config_path = config
        self.cfg: Config | None = None
        self.job = None
        self.cancel_requested = False
        self._last_draw = 0.0

    def compose(self) -> ComposeResult:
        base = load_config(self.config_path) if self.config_path else load_config(
            None, ["model.arch=digits_cnn", "model.checkpoint=recipe:digits_cnn",
                   "grid.x=-1:1:11", "grid.y=-1:1:11", "compute.device=auto"]
        )  # fmt: skip
        yield Header()
        with Horizontal():
            with VerticalScroll(id="fields"):
                for key, label, choices in FIELDS:
                    value = _value_of(base, key)
                    yield Label(f"{label}  [{key}]", classes="field-label")
                    if choices:
                        opts = list(choices) if value in choices else [value, *choices]
                        yield Select([(c, c) for c in opts], value=value, allow_blank=False,
                                     id=_wid(key))  # fmt: skip
                    elif key == "model.arch":
                        names = [m.name for m in list_models()]
                        yield Select(
                            [(f"{n}  ({parameter_count(n):,} parameters)", n) for n in names],
                            prompt="built-in models", id="model-list",
                        )  # fmt: skip
                        yield Input(value=value, id=_wid(key), suggester=SuggestFromList(names))
                    elif key == "model.checkpoint":
                        with Horizontal(classes="with-button"):
                            yield Input(value=value, id=_wid(key))
                            yield Button("…", id="pick-checkpoint")
                    else:
                        yield Input(value=value, id=_wid(key))
                    yield Label("", id=f"err-{_wid(key)}", classes="field-error")
                yield Label("output file", classes="field-label")
                yield Input(value=str(base.output.path or "surface.h5"), id="out")
                yield Label("save setup as", classes="field-label")
                yield Input(value=str(self.config_path or "setup.toml"), id="save-as")
                yield Label("", id="summary")
                with Horizontal(id="buttons"):
                    yield Button("Run (ctrl+r)", id="run", variant="success", disabled=True)
                    yield Button("Cancel", id="cancel", disabled=True)
                    yield Button("Save (ctrl+s)", id="save")
            with Vertical(id="right"):
                yield PlotView(id="live")
                yield ProgressBar(id="progress", show_eta=True)
                yield RichLog(id="log", max_lines=500, wrap=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "tui-landscape: new surface"
        self.validate()

    def overrides(self) -> list[str]:
        """The fields as ``--set`` overrides (TOML values, else taken as strings)."""
        return [f"{key}={self.query_one(f'#{_wid(key)}').value}" for key, _, _ in FIELDS]

    def validate(self) -> Config | None:
        """The setup as the engine sees it; marks the field its first error names."""
        for key, _, _ in FIELDS:
            self.query_one(f"#err-{_wid(key)}", Label).update("")
        try:
            cfg = load_config(None, self.overrides())
        except LandscapeError as e:
            msg = str(e)
            key = next((k for k, _, _ in FIELDS if f"`{k}`" in msg), None)
            target = f"#err-{_wid(key)}" if key else "#summary"
            self.query_one(target, Label).update(msg)
            self.query_one("#run", Button).disabled = True
            self.cfg = None
            return None
        g = cfg.parsed_grid
        self.query_one("#summary", Label).update(f"{g.size} points ({g.ndim}D)")
        self.query_one("#run", Button).disabled = self.job is not None
        self.cfg = cfg
        return cfg

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id not in ("out", "save-as"):
            self.validate()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "model-list" and isinstance(event.value, str):
            self.query_one("#model-arch", Input).value = event.value
        self.validate()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {
            "run": self.action_run,
            "cancel": self.action_cancel,
            "save": self.action_save,
            "pick-checkpoint": self.action_pick_checkpoint,
        }[event.button.id]()

    def action_pick_checkpoint(self) -> None:
        """Choose the checkpoint in a file tree (from the current directory)."""

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one("#model-checkpoint", Input).value = str(path)

        self.app.push_screen(FilePicker(Path.cwd()), chosen)

    def action_save(self) -> None:
        cfg = self.validate()
        if cfg is None:
            self.notify("Fix the setup first", severity="error")
            return
        path = Path(self.query_one("#save-as", Input).value or "setup.toml")
        path.write_text(config_to_toml(cfg))
        self.log_line(f"Saved {path}: run it with `tui-landscape compute {path} --out FILE.h5`")
        self.notify(f"Saved {path}")

    def action_estimate(self) -> None:
        cfg = self.validate()
        if cfg is not None:
            self.log_line("Timing one point (loading the model and data first)...")
            self.estimate(cfg)

    @work(thread=True, exclusive=True, group="estimate", exit_on_error=False)
    def estimate(self, cfg: Config) -> None:
        """Seconds per point from timing the center point once (after one warm-up)."""
        from engine.data import load_splits
        from engine.run import Landscape, load_model, make_directions, resolve_device

        post = self.app.call_from_thread
        try:
            model = load_model(cfg)
            grid = cfg.parsed_grid
            land = Landscape(
                model, load_splits(cfg.data), make_directions(cfg, model, grid), cfg,
                resolve_device(cfg.compute.device),
            )  # fmt: skip
            land.check()
            land.evaluate(0.0, 0.0)
            t = time.perf_counter()
            land.evaluate(0.0, 0.0)
            sec = time.perf_counter() - t
        except LandscapeError as e:
            post(self.log_line, f"error: {e}")
            return
        total = sec * grid.size
        post(
            self.log_line,
            f"Estimate: {sec * 1000:.1f} ms per point, about {total:.0f} s for {grid.size} "
            "points in one process",
        )

    def log_line(self, text: str) -> None:
        self.query_one("#log", RichLog).write(text)

    def action_run(self) -> None:
        cfg = self.validate()
        if cfg is None or self.job is not None:
            return
        self.cancel_requested = False
        self.query_one("#run", Button).disabled = True
        self.query_one("#cancel", Button).disabled = False
        self.compute(cfg, Path(self.query_one("#out", Input).value or "surface.h5"))

    def action_cancel(self) -> None:
        if self.job is not None:
            self.cancel_requested = True
            self.log_line("Cancelling: finished points are kept; Run again resumes.")

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def compute(self, cfg: Config, out: Path) -> None:
        from engine.run import prepare

        post = self.app.call_from_thread
        try:
            post(self.log_line, f"Preparing {out} (model, data, directions)...")
            job = prepare(cfg, out)
        except LandscapeError as e:
            post(self._finished, f"error: {e}")
            return
        job.quiet_workers = True
        self.job = job
        todo = job.total - job.done
        post(self._started, job, todo)
        t0, n = time.perf_counter(), 0
        try:
            for r in job.points():
                n += 1
                if r.error:
                    post(self.log_line, f"point {r.coords} failed: {r.error}")
                post(self._progress, r.done, job.total, n / max(time.perf_counter() - t0, 1e-9))
                if self.cancel_requested:
                    break
        except LandscapeError as e:
            post(self._finished, f"error: {e}")
            return
        finally:
            self.job = None
        verb = "Cancelled" if self.cancel_requested else "Done"
        post(self._finished, f"{verb}: {job.done}/{job.total} points in {job.path}")

    def _started(self, job, todo: int) -> None:
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=job.total, progress=job.done)
        self.log_line(f"Computing {todo} of {job.total} points into {job.path}")
        self._job_for_view = job
        self._draw(force=True)

    def _progress(self, done: int, total: int, pps: float) -> None:
        self.query_one("#progress", ProgressBar).update(progress=done)
        self.sub_title = f"{done}/{total} points, {pps:.1f} pt/s"
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < REDRAW_SECONDS:
            return
        self._last_draw = now
        job = getattr(self, "_job_for_view", None)
        if job is None:
            return
        w = job.writer
        values = {n: np.where(w.completed, a, np.nan) for n, a in w.arrays.items()}
        g = job.grid
        surface = Surface(
            job.path, "tui-landscape", g.x.coordinates(),
            None if g.y is None else g.y.coordinates(), values, w.completed.copy(),
        )  # fmt: skip
        view = self.query_one("#live", PlotView)
        view.surface = surface
        view.redraw()

    def _finished(self, text: str) -> None:
        self._draw(force=True)
        self.log_line(text)
        self.notify(text, severity="error" if text.startswith("error") else "information")
        self.query_one("#cancel", Button).disabled = True
        self.validate()
