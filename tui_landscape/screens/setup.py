"""Set up a surface, run it live, save it as TOML.

The fields are the config form's (``panels.config_form``); this screen runs what it holds. The
setup is validated by the engine's config checks on each change (the error under the field it
names), then in a worker by the engine's ``preflight``, the checks ``compute`` makes first: Run
is enabled only for a setup ``compute`` would start. Torch is imported only in workers, once
every field is built. The run goes through the engine's result stream (``Job.points``) in a
worker; the plot redraws at most five times a second. Saving asks where (``SaveConfig``) and
writes the output file's name, so ``compute`` runs the saved file into the same surface.

Every worker is this screen's, and one ``Worker.StateChanged`` handler reports any error a
worker did not handle (a full disk, a torch error) in one line and gives the buttons back; the
workers change no state themselves, they call back on the UI thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, ProgressBar, RichLog
from textual.worker import Worker

from engine.config import Config, config_from_dict, load_config, output_path
from engine.errors import LandscapeError
from tui_landscape.panels.config_form import ConfigForm, SetupField, builtin_names, setup_fields
from tui_landscape.plots.widget import PlotView
from tui_landscape.report import fmt_rate, summary_lines
from tui_landscape.screens.workers import error_line, failed

if TYPE_CHECKING:
    from textual.timer import Timer

    from engine.run import Job
    from tui_landscape.screens.save import SaveChoice

__all__ = ["SECTIONS", "SetupField", "SetupScreen", "free_name", "setup_fields", "setup_from_file"]

# The config sections the setup shows. Not shown: `output` (the output file field below is its
# `path`) and `train` (the `train` command's keys, which change no surface).
SECTIONS = ("model", "data", "directions", "grid", "compute", "hessian")
FOLDED = ("compute", "hessian")  # start collapsed: how to run, and an optional extra map
SETTLE_SECONDS = 0.15  # a field is checked once its typing pauses this long
REDRAW_SECONDS = 0.2  # at most five redraws a second while points stream in
OUT_DOC = "output.path: surface file; default '<config name>.h5', as `compute CONFIG` writes"
# What each worker group does, as its error says it.
DOING = {"preflight": "checking the setup", "run": "the run", "estimate": "the estimate",
         "names": "listing the models"}  # fmt: skip


def free_name(out: Path) -> Path:
    """``NAME-1.h5``, ``NAME-2.h5`` ...: the first that does not exist beside ``out``."""
    n = 1
    while (p := out.with_name(f"{out.stem}-{n}{out.suffix}")).exists():
        n += 1
    return p


def setup_from_file(path: Path) -> SetupScreen | str:
    """A setup from the config stored in a surface file, its output a new name beside it
    (``free_name``); or, as one line, why the file gives none."""
    from engine.resume import stored_config

    try:
        cfg = stored_config(path)
    except LandscapeError as e:
        return error_line(e).removeprefix("--resume: ")
    out = free_name(path)
    return SetupScreen(base=replace(cfg, output=replace(cfg.output, path=str(out))))


class SetupScreen(Screen):
    """Fields on the left, the live plot and the log on the right."""

    # Priority: a focused Input has its own ctrl+e (end of line) and would take the key, and the
    # footer would drop the screen's binding while a field has focus (that is, nearly always).
    # The tooltip says what a key does: in the help (?) and the palette (ctrl+p) too.
    BINDINGS = [
        Binding("ctrl+r", "run", "Run", priority=True, tooltip="Run the setup here, drawn live"),
        Binding("ctrl+g", "detach", "Detach", priority=True,
                tooltip="Detach: run as its own process, which outlives the app and SSH"),
        Binding("ctrl+e", "estimate", "Estimate", priority=True,
                tooltip="Estimate the run's time from one point"),
        Binding("ctrl+s", "save", "Save", priority=True,
                tooltip="Save the setup as TOML (asks where)"),
        # Not in the footer (80 columns): the Cancel button beside Run shows it while it applies.
        Binding("ctrl+c", "cancel", "Cancel", priority=True, show=False,
                tooltip="Cancel the run: finished points are kept, Run again resumes"),
        # Not in the footer (80 columns: "? Help" must show): the … button beside the field.
        Binding("ctrl+o", "pick_checkpoint", "Checkpoint", priority=True, show=False,
                tooltip="Pick a checkpoint file"),
        # A field has focus nearly always, and takes "?" as text: help is on f1 here too.
        Binding("f1", "app.help", "Help", priority=True, tooltip="Help: every key of the app"),
        Binding("escape", "back", "Back",
                tooltip="Back to the file browser (asks first over a run or unsaved edits)"),
    ]  # fmt: skip
    # Below 100 columns the form narrows so the live map gets its 40 columns (app.tcss).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    def __init__(self, config: Path | None = None, base: Config | None = None) -> None:
        """The setup of the TOML file ``config``, or of ``base`` (a file's stored config, a
        copy of another setup), else a blank one."""
        super().__init__()
        self.config_path = config
        self.base = base
        self.edited = False  # a field changed since the setup was opened or saved
        self.then: Callable[[], None] | None = None  # what follows the run's end (esc, q)
        # Focus the first field as the screen mounts: the default auto-focus took the scrolled
        # fields first, and restyling all of them on that focus and its blur cost 0.5 s.
        self.AUTO_FOCUS = f"#{setup_fields(SECTIONS[:1])[0].wid}"
        self.cfg: Config | None = None
        self.checked: Config | None = None  # the last setup the engine's preflight passed
        # The setup the preflight is checking: checked once, not again for each Changed of
        # a field mounted meanwhile (a new check would cancel the running one).
        self.checking: Config | None = None
        self.run_when_checked = False  # Run was pressed while the preflight was running
        self.detach_when_checked = False  # so was Detach
        self.painted = False  # every field is built: workers may import torch
        self.leave_when_built = False  # esc was pressed while the fields were being built
        self.running = False  # a run was started and has not ended (set on the UI thread)
        self.job: Job | None = None  # the run's job, once prepared (set on the UI thread)
        self.cancel_requested = False
        self.error: str | None = None  # the error shown under a field: Run refused until fixed
        # The setup the preflight refused, and why: Run refused until a field changes.
        self.failed: tuple[Config, str] | None = None
        self._last_draw = 0.0
        self._settle: Timer | None = None  # the check after the last change of a field

    @property
    def form(self) -> ConfigForm:
        return self.query_one(ConfigForm)

    @property
    def fields(self) -> list[SetupField]:
        return self.form.fields

    def compose(self) -> ComposeResult:
        base = self.base or (load_config(self.config_path) if self.config_path else load_config(
            None, ["model.arch=digits_cnn", "model.checkpoint=recipe:digits_cnn",
                   "grid.x=-1:1:11", "grid.y=-1:1:11", "compute.device=auto"]
        ))  # fmt: skip
        # compute's own rule for the output file, so the app and `compute CONFIG` write one file
        out = str(output_path(base, self.config_path))
        yield Header()
        with Horizontal():
            with Vertical(id="setup"):
                with VerticalScroll(id="fields"):
                    yield ConfigForm(base, SECTIONS, FOLDED, out, OUT_DOC)
                    yield Label("", id="summary", markup=False)
                    with Horizontal(id="buttons"):
                        yield Button("Run (ctrl+r)", id="run", variant="success", disabled=True)
                        yield Button("Cancel", id="cancel", disabled=True)
                        yield Button("Save (ctrl+s)", id="save")
                # below the scrolled fields, so always in view
                yield Label("tab: next field; the focused one is explained here", id="field-doc")
            with Vertical(id="right"):
                yield PlotView(id="live")
                # the progress bar goes here with the first run (``_started``)
                # min_width: RichLog renders at 78 columns at least, cut off beside the fields
                yield RichLog(id="log", max_lines=500, wrap=True, min_width=20)
        # Without the palette hint the app's keys fit 80 columns; ctrl+p still opens it.
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.title = "tui-landscape: new surface"
        self.validate()

    def on_config_form_built(self, message: ConfigForm.Built) -> None:
        """Every field is built: the workers may start. They import torch, and loading its
        libraries holds the GIL for seconds (the UI thread stalls too)."""
        self.painted = True
        if self.leave_when_built:
            self.app.pop_screen()
            return
        self.load_names()
        self.validate()  # now with the engine's preflight, and each error under its field

    def action_back(self) -> None:
        """Leave, once every field is built: a choice list still mounting when its screen is
        removed fails inside Textual (`SelectOverlay` not found), so esc waits for the form.
        A run or unsaved edits are not dropped without asking (``_ask_to_leave``)."""
        if not self.painted:
            self.leave_when_built = True
            return
        self._ask_to_leave("Leave the setup", self.app.pop_screen)

    def before_quit(self) -> None:
        """The app's q: quit, asking first over a run or unsaved edits."""
        self._ask_to_leave("Quit", self.app.exit)

    def _ask_to_leave(self, what: str, leave: Callable[[], None]) -> None:
        """``leave`` at once where nothing would be lost; else ask: a running run is kept
        going detached or stopped (its points kept), unsaved edits are saved or dropped."""
        from tui_landscape.screens.choose import Answer, Choose

        if self.running and self.job is not None:
            job = self.job
            question = (f"{what}? A run is computing {job.path.name} ({job.done}/{job.total} "
                        "points). Keep it running detached (it outlives the app), or stop it "
                        "(the finished points are kept; Run again resumes)?")  # fmt: skip
            answers = [Answer("detach", "d", "Keep running detached", "success"),
                       Answer("stop", "s", "Stop it", "error")]  # fmt: skip
        elif self.running:  # still preparing: no point to keep yet
            question = f"{what}? A run is being prepared; stop it?"
            answers = [Answer("stop", "s", "Stop it", "error")]
        elif self.edited:
            question = f"{what}? The setup's edits are not saved."
            answers = [Answer("save", "s", "Save first", "primary"),
                       Answer("drop", "y", "Drop the edits", "error")]  # fmt: skip
        else:
            leave()
            return

        def answered(value: str | None) -> None:
            if value == "save":
                self.action_save()
            elif value == "drop":
                leave()
            elif value in ("stop", "detach"):
                self.then = (lambda: self._detach_then(leave)) if value == "detach" else leave
                if self.running:
                    self.action_cancel()
                else:  # ended while the question was open
                    self._after_run()

        self.app.push_screen(Choose(question, answers), answered)

    def _detach_then(self, leave: Callable[[], None]) -> None:
        """The in-app run stopped: the same setup goes on as its own process, then ``leave``."""
        from tui_landscape.detach import start_detached

        cfg = self.cfg
        if cfg is not None:
            try:
                run = start_detached(cfg, output_path(cfg, self.config_path), self.config_path)
            except (OSError, LandscapeError) as e:
                self.notify(f"Cannot detach: {error_line(e)}", severity="error", markup=False)
                return  # stay: the setup is still here to run again
            self.app.notify(f"Running {run.out.name} detached (pid {run.pid}); log: {run.log}",
                            markup=False)  # fmt: skip
        leave()

    def _after_run(self) -> None:
        then, self.then = self.then, None
        if then is not None:
            then()

    def new_setup(self) -> None:
        """The app's n: a new setup above this one (esc comes back here): blank, or a copy
        of this one where it was edited (asked)."""
        from tui_landscape.screens.choose import Answer, Choose

        if not self.edited or self.cfg is None:
            self.app.push_screen(SetupScreen())
            return

        def answered(value: str | None) -> None:
            if value is not None:
                base = self.cfg if value == "copy" else None
                self.app.push_screen(SetupScreen(base=base))

        self.app.push_screen(Choose(
            "New setup: a copy of this edited one, or a blank one? This one stays (esc in "
            "the new one comes back here).",
            [Answer("copy", "c", "Copy of this one", "primary"), Answer("blank", "b", "Blank")],
        ), answered)  # fmt: skip

    def on_config_form_changed(self, message: ConfigForm.Changed) -> None:
        """Validated once typing pauses (``SETTLE_SECONDS``), not on every key: a burst of
        keys (a laggy link delivers them together) met a check and a preflight per key, and
        the UI stalled seconds behind the keys. Run is off until the check has run."""
        self.edited, self.failed = True, None
        self.query_one("#run", Button).disabled = True
        if self._settle is not None:
            self._settle.stop()
        self._settle = self.set_timer(SETTLE_SECONDS, self._settled)

    def _settled(self) -> None:
        self._settle = None
        self.validate()

    @work(thread=True, exclusive=True, group="names", exit_on_error=False)
    def load_names(self) -> None:
        """The built-in models with their sizes, and the data set names: the first torch
        import, here rather than at start-up (it took seconds before the first paint)."""
        models, datasets = builtin_names()
        self.app.call_from_thread(self.form.offer_names, models, datasets)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's unhandled error ends: one line in the log and a toast, and
        the buttons back (Run, and Cancel off), whichever worker it was."""
        msg = failed(self, event, DOING)  # the toast
        if msg is None:
            return
        self.log_line(msg)
        if event.worker.group == "run":
            self._run_over()
        elif event.worker.group == "preflight":
            # The check could not say; Run is given back, and checks again first (``_check``).
            self.checking = None
            self.run_when_checked = self.detach_when_checked = False
            self.query_one("#summary", Label).update(msg)
            self.query_one("#run", Button).disabled = self.cfg is None or self.running

    def values(self) -> dict[str, Any]:
        """The setup as nested config mappings: the form's values, the output file as
        ``output.path`` empty where it is the opened config's default (as in its file)."""
        data = self.form.values()
        out = data["output"]["path"]
        default = output_path(Config(), self.config_path)
        data["output"]["path"] = "" if Path(out) == default else out
        return data

    def validate(self) -> Config | None:
        """The setup as the engine sees it; marks the field its first error names. The config's
        own checks run here; the engine's preflight follows in a worker (``preflight``)."""
        self.form.clear_errors()
        self.error = None
        try:
            cfg = config_from_dict(self.values())
        except LandscapeError as e:
            self._config_error(str(e))
            self.cfg = None
            return None
        self.cfg = cfg
        if cfg == self.checked:
            self._ready_to_run(cfg)
        elif self.failed is not None and self.failed[0] == cfg:
            self._config_error(self.failed[1])  # checked again after the next change only
        else:
            g = cfg.parsed_grid
            self.query_one("#summary", Label).update(
                f"{g.size} points ({g.ndim}D); checking the model and data..."
            )
            self.query_one("#run", Button).disabled = True
            if self.painted and cfg != self.checking:
                self._check(cfg)
        return cfg

    def _check(self, cfg: Config) -> None:
        self.checking = cfg
        self.preflight(cfg)

    @work(thread=True, exclusive=True, group="preflight", exit_on_error=False)
    def preflight(self, cfg: Config) -> None:
        """``compute``'s first checks, off the UI thread (the first one imports torch): the
        model, data and files it names, and the output (its folder, no run writing it)."""
        from engine.build import preflight
        from engine.formats import check_output

        try:
            preflight(cfg)
            check_output(output_path(cfg, self.config_path))
        except LandscapeError as e:  # the setup's own fault: shown under its field
            self.app.call_from_thread(self._preflight_failed, cfg, str(e))
            return
        self.app.call_from_thread(self._preflight_passed, cfg)

    def _preflight_passed(self, cfg: Config) -> None:
        self._checked(cfg)
        if cfg == self.cfg:  # else the setup changed meanwhile, and is being checked again
            self.checked = cfg
            self._ready_to_run(cfg)
            if self.run_when_checked:
                self.action_run()
            elif self.detach_when_checked:
                self.action_detach()

    def _preflight_failed(self, cfg: Config, msg: str) -> None:
        self._checked(cfg)
        if cfg == self.cfg:
            self.run_when_checked = self.detach_when_checked = False
            self.failed = (cfg, msg)
            self._config_error(msg)

    def _checked(self, cfg: Config) -> None:
        """The preflight of ``cfg`` is over: a later change back to it is checked again (the
        files it names may have changed)."""
        if cfg == self.checking:
            self.checking = None

    def _ready_to_run(self, cfg: Config) -> None:
        g = cfg.parsed_grid
        self.query_one("#summary", Label).update(f"{g.size} points ({g.ndim}D)")
        self.query_one("#run", Button).disabled = self.running

    def _batch_status(self, cfg: Config, text: str) -> None:
        """The run's batch size beside its points: 'auto (probing)', then what was chosen."""
        g = cfg.parsed_grid
        self.query_one("#summary", Label).update(f"{g.size} points ({g.ndim}D), batch {text}")

    def _config_error(self, msg: str) -> None:
        """Show an error under the first field it names (unfolding its section), else below the
        fields (a field not built yet: shown there once all are), and disable Run."""
        self.error = msg
        shown = self.form.show_error(msg)
        self.query_one("#summary", Label).update("" if shown else msg)
        self.query_one("#run", Button).disabled = True

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The focused field's doc, in full, below the fields. A button or a section title
        keeps the last field's doc."""
        f = self.form.field_of(event.widget)
        if f is not None:
            self.query_one("#field-doc", Label).update(f"{f.key}: {f.doc}")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {
            "run": self.action_run,
            "cancel": self.action_cancel,
            "save": self.action_save,
            "pick-checkpoint": self.action_pick_checkpoint,
        }[event.button.id]()

    def action_pick_checkpoint(self) -> None:
        """Choose the checkpoint in a file tree (from the current directory)."""

        from tui_landscape.screens.picker import FilePicker

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.form.set_text("model.checkpoint", str(path))

        self.app.push_screen(FilePicker(Path.cwd()), chosen)

    def action_save(self) -> None:
        """Ask where (a new file proposed), then save; see ``SaveConfig``."""
        from tui_landscape.screens.save import SaveConfig, new_config_path

        if self.validate() is None:
            self.notify("Fix the setup first", severity="error")
            return
        self.app.push_screen(SaveConfig(new_config_path(self.config_path)), self.save)

    def save(self, choice: SaveChoice | None) -> None:
        """Write the setup where the dialog says (``save_setup``)."""
        from tui_landscape.screens.save import save_setup

        cfg = self.validate()
        if choice is None or cfg is None:
            return
        try:
            out = save_setup(cfg, choice, self.config_path)
        except (OSError, LandscapeError) as e:
            self.log_line(f"error: cannot save {choice.path}: {e}")
            self.notify(f"Cannot save {choice.path}: {e}", severity="error", markup=False)
            return
        self.edited = False
        self.log_line(f"Saved {choice.path}: `tui-landscape compute {choice.path}` writes {out}")
        self.notify(f"Saved {choice.path}", markup=False)

    def action_estimate(self) -> None:
        cfg = self.validate()
        if cfg is not None:
            self.log_line("Timing one point (loading the model and data first)...")
            self.estimate(cfg)

    @work(thread=True, exclusive=True, group="estimate", exit_on_error=False)
    def estimate(self, cfg: Config) -> None:
        """Seconds per point from timing the center point once (after one warm-up); an error
        is reported by ``on_worker_state_changed``."""
        from engine.run import time_point

        sec, size = time_point(cfg)
        self.app.call_from_thread(
            self.log_line,
            f"Estimate: {sec * 1000:.1f} ms per point, about {sec * size:.0f} s for {size} "
            "points in one process",
        )

    def output_folder(self) -> Path:
        """The folder the setup's output goes to (the app's browser opens there when the setup
        is left); the working folder while the setup is not valid."""
        if self.cfg is None:
            return Path.cwd()
        return output_path(self.cfg, self.config_path).parent

    def log_line(self, text: str) -> None:
        self.query_one("#log", RichLog).write(text)

    def _checked_first(self, cfg: Config) -> bool:
        """Whether the preflight passed ``cfg``; else it is checked (again, where a check
        failed to say), and the caller's action runs if it passes."""
        if cfg == self.checked:
            return True
        self.log_line("Checking the setup first...")
        if cfg != self.checking:
            self._check(cfg)
        return False

    def _refused(self, cfg: Config | None) -> bool:
        """True, and says why, while a field is invalid: Run and Detach stay off until it is
        fixed (a check that failed is made again on the field's next change)."""
        if cfg is not None and self.error is None:
            return False
        self.notify(f"Fix the setup first: {self.error or 'a field is invalid'}",
                    severity="error", markup=False)  # fmt: skip
        return True

    def action_run(self) -> None:
        cfg = self.validate()
        self.run_when_checked = False
        if self.running or self._refused(cfg):
            return
        if not self._checked_first(cfg):  # Run starts it if the preflight passes
            self.run_when_checked = True
            return
        self._ask_output(cfg, self._start_run)

    def _ask_output(self, cfg: Config, start: Callable[[Config, Path, bool], None]) -> None:
        """``start(cfg, out, overwrite)`` at once for a new output; where it exists, ask:
        resume it (where it holds this setup's surface), overwrite it, or a new name."""
        from engine.resume import existing_surface
        from tui_landscape.screens.choose import Answer, Choose

        out = output_path(cfg, self.config_path)
        if not out.exists():
            start(cfg, out, False)
            return
        answers = [Answer("overwrite", "o", "Overwrite", "error"),
                   Answer("rename", "r", f"New name: {free_name(out).name}")]  # fmt: skip
        try:
            existing_surface(out, cfg, overwrite=False)
            why = "It holds this setup's surface: resume adds the missing points."
            answers.insert(0, Answer("resume", "u", "Resume", "success"))
        except LandscapeError as e:
            why = f"It cannot be resumed: {error_line(e).split('; pass --overwrite')[0]}."

        def answered(value: str | None) -> None:
            if value == "rename":
                new = free_name(out)
                self.query_one("#out", Input).value = str(new)  # the field says where it goes
                start(replace(cfg, output=replace(cfg.output, path=str(new))), new, False)
            elif value in ("resume", "overwrite"):
                start(cfg, out, value == "overwrite")

        self.app.push_screen(Choose(f"{out.name} exists. {why}", answers), answered)

    def _start_run(self, cfg: Config, out: Path, overwrite: bool) -> None:
        if self.running:
            return
        self.running, self.cancel_requested = True, False
        self.query_one("#run", Button).disabled = True
        self.query_one("#cancel", Button).disabled = False
        self.compute(cfg, out, overwrite)

    def action_detach(self) -> None:
        """Run the setup as its own process, which outlives the app (``tui_landscape.detach``)."""
        cfg = self.validate()
        self.detach_when_checked = False
        if self._refused(cfg):
            return
        if not self._checked_first(cfg):
            # As Run: started once compute's checks pass, which a detached process would fail.
            self.detach_when_checked = True
            return
        self._ask_output(cfg, self._start_detached)

    def _start_detached(self, cfg: Config, out: Path, overwrite: bool) -> None:
        from tui_landscape.detach import start_detached
        from tui_landscape.screens.browser import show_folder

        try:
            run = start_detached(cfg, out, self.config_path, overwrite=overwrite)
        except (OSError, LandscapeError) as e:
            self.notify(f"Cannot detach: {error_line(e)}", severity="error", markup=False)
            return
        self.notify(f"Running {run.out.name} detached (pid {run.pid}); log: {run.log}",
                    markup=False)  # fmt: skip
        show_folder(self.app, run.out.parent)

    def action_cancel(self) -> None:
        if self.running:
            self.cancel_requested = True
            self.log_line("Cancelling: finished points are kept; Run again resumes.")

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def compute(self, cfg: Config, out: Path, overwrite: bool = False) -> None:
        """Prepare and run, posting each point to the UI thread; an error ends in
        ``on_worker_state_changed``, a cancel or the end in ``_ended``."""
        from engine.run import prepare

        post = self.app.call_from_thread
        post(self.log_line, f"Preparing {out} (model, data, directions)...")
        if cfg.data.batch_size == "auto":
            post(self._batch_status, cfg, "auto (probing)")
        job = prepare(cfg, out, overwrite=overwrite)
        job.quiet_workers = True
        choice = job.landscape.batch_choice
        if choice.how != "given":
            post(self._batch_status, cfg, choice.provenance())
            post(self.log_line, choice.line().capitalize())
        post(self._started, job, job.total - job.done)
        t0, n, computed = time.perf_counter(), 0, 0
        # Closed on any exit: the job folds what it recorded into the file and frees its lock.
        with closing(job.points()) as points:
            for r in points:
                n += 1
                computed += r.error is None
                if r.error:
                    post(self.log_line, f"point {r.coords} failed: {r.error}")
                post(self._progress, r.done, job.total, fmt_rate(n, time.perf_counter() - t0))
                if self.cancel_requested:
                    break
        # What `compute` prints at its end, the minimum and a NaN's likely cause included.
        for line in summary_lines(job.summary(computed, time.perf_counter() - t0), job.grid.ndim):
            post(self.log_line, line)
        verb = "Cancelled" if self.cancel_requested else "Done"
        post(self._ended, f"{verb}: {job.done}/{job.total} points in {job.path}")

    def _ended(self, text: str) -> None:
        self.log_line(text)
        self.notify(text, markup=False)
        self._run_over()

    def _started(self, job: Job, todo: int) -> None:
        self.job = job
        bars = self.query("#progress").results(ProgressBar)
        bar = next(bars, None)
        if bar is None:  # the first run: mounted now (hidden before, it pulsed 15 times a second)
            bar = ProgressBar(id="progress", show_eta=True)
            self.query_one("#right").mount(bar, after="#live")
        bar.update(total=job.total, progress=job.done)
        self.log_line(f"Computing {todo} of {job.total} points into {job.path}")
        self._draw(force=True)

    def _progress(self, done: int, total: int, rate: str) -> None:
        self.query_one("#progress", ProgressBar).update(progress=done)
        self.sub_title = f"{done}/{total} points, {rate}"  # '12.3 s/pt' for a slow run
        self._draw()

    def _draw(self, force: bool = False) -> None:
        """The live view from the job's recorded points, at most five times a second."""
        now = time.monotonic()
        if self.job is None or (not force and now - self._last_draw < REDRAW_SECONDS):
            return
        self._last_draw = now
        self.query_one("#live", PlotView).surface = self.job.snapshot()

    def _run_over(self) -> None:
        """The run ended (done, cancelled or failed, said already): the buttons back."""
        self._draw(force=True)
        self.running, self.job = False, None
        self.sub_title = ""  # no run: its rate is no longer news (the log keeps the summary)
        self.query_one("#cancel", Button).disabled = True
        self.validate()
        self._after_run()  # esc or q asked to stop it: the setup is left now
