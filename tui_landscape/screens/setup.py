"""Set up a surface, run it live, save it as TOML.

The fields are the config form's (``panels.config_form``); what the screen does with the setup
they hold (check it, run it live or detached, estimate it) is ``RunControl``'s
(``screens.run_control``), mixed in. The setup is validated by the engine's config checks once
typing pauses (the error under the field it names), then in a worker by the engine's
``preflight``. Torch is imported only in workers, once every field is built. Saving asks where
(``SaveConfig``) and writes the output file's name, so ``compute`` runs the saved file into the
same surface. Leaving over a run or unsaved edits asks first.

Every worker is this screen's, and one ``Worker.StateChanged`` handler reports any error a
worker did not handle (a full disk, a torch error) in one line and gives the buttons back; the
workers change no state themselves, they call back on the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Label, RichLog
from textual.worker import Worker

from engine.config import Config, config_from_dict, load_config, output_path
from engine.errors import LandscapeError
from tui_landscape.panels.config_form import ConfigForm, SetupField, builtin_names, setup_fields
from tui_landscape.plots.widget import PlotView
from tui_landscape.screens.run_control import RunControl, free_name
from tui_landscape.screens.workers import error_line, failed

if TYPE_CHECKING:
    from textual.timer import Timer

    from tui_landscape.screens.save import SaveChoice

__all__ = ["SECTIONS", "SetupField", "SetupScreen", "setup_fields", "setup_from_file"]

# The config sections the setup shows. Not shown: `output` (the output file field below is its
# `path`) and `train` (the `train` command's keys, which change no surface).
SECTIONS = ("model", "data", "directions", "grid", "compute", "hessian")
FOLDED = ("compute", "hessian")  # start collapsed: how to run, and an optional extra map
SETTLE_SECONDS = 0.15  # a field is checked once its typing pauses this long
OUT_DOC = "output.path: surface file; default '<config name>.h5', as `compute CONFIG` writes"
# What each worker group does, as its error says it.
DOING = {"preflight": "checking the setup", "run": "the run", "estimate": "the estimate",
         "names": "listing the models"}  # fmt: skip


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


class SetupScreen(RunControl, Screen):
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
        super().__init__()  # ``RunControl``'s state, then the screen's
        self.config_path = config
        self.base = base
        self.edited = False  # a field changed since the setup was opened or saved
        # Focus the first field as the screen mounts: the default auto-focus took the scrolled
        # fields first, and restyling all of them on that focus and its blur cost 0.5 s.
        self.AUTO_FOCUS = f"#{setup_fields(SECTIONS[:1])[0].wid}"
        self.cfg: Config | None = None
        self.painted = False  # every field is built: workers may import torch
        self.leave_when_built = False  # esc was pressed while the fields were being built
        self.error: str | None = None  # the error shown under a field: Run refused until fixed
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
        self._worker_failed(event.worker.group, msg)

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

    def output_folder(self) -> Path:
        """The folder the setup's output goes to (the app's browser opens there when the setup
        is left); the working folder while the setup is not valid."""
        if self.cfg is None:
            return Path.cwd()
        return output_path(self.cfg, self.config_path).parent

    def log_line(self, text: str) -> None:
        self.query_one("#log", RichLog).write(text)
