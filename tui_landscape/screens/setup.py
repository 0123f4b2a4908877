"""Set up a surface, run it live, save it as TOML.

The fields are built from the config's dataclasses: one line per key of the shown sections,
grouped by section, its widget chosen by the key's type (a finite type, a ``Literal``, a bool or
a list of Literals, is a Select of exactly its values; anything else an Input, read as TOML) and
its ``doc`` as tooltip and as the line shown for the focused field. So a new config key appears
here without an edit. The whole setup is validated by the engine's own config checks on each
change, and the error is shown under the field it names; then, in a worker thread, by the
engine's ``preflight`` (the model, its checkpoint, the data set), the checks ``compute`` makes
first, so Run is enabled only for a setup that ``compute`` would start. The first paint shows the
first section's fields; the others are built after it, a few fields a refresh (mounting and
styling all of them took seconds before the first paint), their values read from the opened config
until then. Torch is imported only in workers, once every field is built (the model list and its
sizes come from one). The run goes
through the engine's result stream (``Job.points``) in a worker thread; the plot redraws from the
recorded points at most five times a second. Saving asks where (``SaveConfig``) and writes the
output file's name too, so ``compute`` runs the saved file unchanged into the same surface.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import time
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import (
    Button,
    Collapsible,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    RichLog,
    Select,
)

from engine.config import (
    Config,
    config_from_dict,
    config_to_dict,
    load_config,
    output_path,
    save_config,
)
from engine.errors import LandscapeError
from tui_landscape.plots.widget import PlotView
from tui_landscape.report import fmt_rate, summary_lines

if TYPE_CHECKING:
    from tui_landscape.screens.save import SaveChoice

__all__ = ["SECTIONS", "SetupField", "SetupScreen", "setup_fields"]

# The config sections the setup shows. Not shown: `output` (the output file field below is its
# `path`) and `train` (the `train` command's keys, which change no surface).
SECTIONS = ("model", "data", "directions", "grid", "compute", "hessian")
FOLDED = ("compute", "hessian")  # start collapsed: how to run, and an optional extra map
MAX_SUBSET_CHOICES = 4  # a list of up to 4 choices is a Select of its subsets (15 at most)
REDRAW_SECONDS = 0.2  # at most five redraws a second while points stream in
BATCH_FIELDS = 6  # fields mounted a refresh after the first paint (about 0.1 s each batch)
OUT_DOC = "output.path: surface file; default '<config name>.h5', as `compute CONFIG` writes"

# The built-in models with their parameter counts, and the data set names: read once a process,
# in the setup's first worker (building every model on the meta device takes seconds).
_MODELS: list[tuple[str, int]] | None = None
_DATASETS: list[str] | None = None


def _finite(tp: Any) -> tuple[Any, ...] | None:
    """Every value of a finite type (Literal, bool, or a union of them), else None."""
    if tp is bool:
        return (False, True)
    origin = typing.get_origin(tp)
    if origin is Literal:
        return typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        arms = [_finite(a) for a in typing.get_args(tp)]
        return None if None in arms else tuple(itertools.chain.from_iterable(arms))
    if origin is tuple:  # tuple[Literal[...], ...]: the non-empty subsets, in declared order
        items = _finite(typing.get_args(tp)[0])
        if items is None or len(items) > MAX_SUBSET_CHOICES:
            return None
        n = len(items)
        return tuple(c for r in range(n, 0, -1) for c in itertools.combinations(items, r))
    return None


def _toml(v: Any) -> str:
    """A value as an inline TOML value (what a user would type after ``--set key=``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml(x)}" for k, x in v.items()) + "}"
    return repr(v)  # int or float; repr of a float is TOML too ('1e-05', 'inf')


def _count(n: int) -> str:
    """A parameter count short enough for the model list at 80 columns: 18.4k, 23.5M."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


@dataclass(frozen=True)
class SetupField:
    """One config key as a setup field."""

    key: str  # dotted config key
    doc: str  # the key's ``doc`` metadata
    type: Any  # the key's annotated type
    choices: tuple[Any, ...] | None  # the values of a finite type, offered in a Select

    @property
    def wid(self) -> str:
        """The widget id: the dotted key with '-' for '.'."""
        return self.key.replace(".", "-")

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        """The key within its section, the field's label."""
        return self.key.split(".", 1)[1]

    def text(self, value: Any) -> str:
        """How a config value reads in the field: strings as typed, the rest as TOML."""
        return value if isinstance(value, str) else _toml(value)

    def parse(self, text: str) -> Any:
        """The config value of the field's text, left for the config's own checks to judge."""
        if self.type is str:
            return text  # a path or name, never TOML (so '0' or 'true' stay strings)
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            return text  # bare words such as auto; a wrong type is named by the config


def setup_fields(sections: Iterable[str] = SECTIONS, config: type = Config) -> list[SetupField]:
    """A field for every key of the given sections of ``config``, in declaration order."""
    hints = typing.get_type_hints(config)
    out = []
    for name in sections:
        section = hints[name]
        types_ = typing.get_type_hints(section)
        for f in dataclasses.fields(section):
            tp = types_[f.name]
            out.append(SetupField(f"{name}.{f.name}", f.metadata.get("doc", ""), tp, _finite(tp)))
    return out


def _suggester(f: SetupField) -> SuggestFromList | None:
    """Completions: the words of a mixed type ('auto'); model and data set names come later,
    from the worker that imports the engine's models (``SetupScreen.load_names``)."""
    words = [a for a in typing.get_args(f.type) if typing.get_origin(a) is Literal]
    choices = [str(c) for a in words for c in typing.get_args(a)]
    return SuggestFromList(choices) if choices else None


class SetupScreen(Screen):
    """Fields on the left, the live plot and the log on the right."""

    # Priority: a focused Input has its own ctrl+e (end of line) and would take the key, and the
    # footer would drop the screen's binding while a field has focus (that is, nearly always).
    BINDINGS = [
        Binding("ctrl+r", "run", "Run", priority=True),
        Binding("ctrl+g", "detach", "Detach", priority=True),
        Binding("ctrl+e", "estimate", "Estimate", priority=True),
        Binding("ctrl+s", "save", "Save", priority=True),
        # Not in the footer (80 columns): the Cancel button beside Run shows it while it applies.
        Binding("ctrl+c", "cancel", "Cancel", priority=True, show=False),
        Binding("ctrl+o", "pick_checkpoint", "Checkpoint", priority=True),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, config: Path | None = None) -> None:
        super().__init__()
        self.config_path = config
        self.fields = setup_fields()
        # Each field's widget by its key, and the text it was built with: the Changed a field
        # posts as it mounts is no change (each validated, a batch of six took 40 ms more).
        self._widgets: dict[str, Widget] = {}
        self._built_text: dict[str, str] = {}
        self._hidden: dict[str, Any] = {}  # the sections not shown, as read
        self._base = Config()  # the opened config: the values of the fields not built yet
        self._unbuilt = [f for f in self.fields if f.section != SECTIONS[0]]
        # Focus the first field as the screen mounts: the default auto-focus took the scrolled
        # fields first, and restyling all of them on that focus and its blur cost 0.5 s.
        self.AUTO_FOCUS = f"#{self.fields[0].wid}"
        self.cfg: Config | None = None
        self.checked: Config | None = None  # the last setup the engine's preflight passed
        # The setup the preflight is checking: checked once, not again for each Changed of
        # a field mounted meanwhile (a new check would cancel the running one).
        self.checking: Config | None = None
        self.run_when_checked = False  # Run was pressed while the preflight was running
        self.detach_when_checked = False  # so was Detach
        self.painted = False  # every field is built: workers may import torch
        self.job = None
        self.cancel_requested = False
        self._last_draw = 0.0

    def compose(self) -> ComposeResult:
        base = load_config(self.config_path) if self.config_path else load_config(
            None, ["model.arch=digits_cnn", "model.checkpoint=recipe:digits_cnn",
                   "grid.x=-1:1:11", "grid.y=-1:1:11", "compute.device=auto"]
        )  # fmt: skip
        self._base = base
        # Sections the setup does not show are kept as they were read, and saved with the rest.
        self._hidden = {k: v for k, v in config_to_dict(base).items() if k not in SECTIONS}
        yield Header()
        with Horizontal():
            with Vertical(id="setup"):
                with VerticalScroll(id="fields"):
                    yield from self._sections(base)
                    with Horizontal(classes="field-row"):
                        yield Label("output file", classes="field-label")
                        # compute's own rule, so the app and `compute CONFIG` write one file
                        out = output_path(base, self.config_path)
                        self._built_text["out"] = str(out)
                        yield Input(str(out), id="out", compact=True, tooltip=OUT_DOC)
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
        yield Footer()

    def _sections(self, base: Config) -> ComposeResult:
        """The sections in folding groups, only the first one's fields in it (``_build``)."""
        for section in SECTIONS:
            fields = [] if section != SECTIONS[0] else self._fields_of(base, section)
            folded = section in FOLDED
            yield Collapsible(*fields, title=section, collapsed=folded, id=f"sec-{section}")

    def _fields_of(self, base: Config, section: str) -> list[Widget]:
        out: list[Widget] = []
        for f in self.fields:
            if f.section == section:
                out += self._field(f, getattr(getattr(base, section), f.name))
        return out

    def _field(self, f: SetupField, value: Any) -> list[Widget]:
        """A one-line field (its name beside its widget; the doc as tooltip), and its error."""
        tip = f"{f.key}: {f.doc}"
        out: list[Widget] = []
        if f.key == "model.arch":  # the built-in models with their sizes, above the free text
            models = Select([], prompt="loading the models...", id="model-list", compact=True,
                            tooltip=tip)  # fmt: skip
            out.append(Horizontal(Label("built-in", classes="field-label"), models,
                                  classes="field-row"))  # fmt: skip
        row: list[Widget] = [Label(f.name, classes="field-label").with_tooltip(tip)]
        if f.choices is not None:  # bools too: 'true' reads in any terminal, a Switch not
            options = [f.text(c) for c in f.choices]
            if f.text(value) not in options:
                options.insert(0, f.text(value))  # a value typed in a file, e.g. its order
            choices = [(o, o) for o in options]
            widget: Widget = Select(choices, value=f.text(value), allow_blank=False, id=f.wid,
                                    compact=True, tooltip=tip)  # fmt: skip
        else:
            widget = Input(value=f.text(value), id=f.wid, compact=True, tooltip=tip,
                           suggester=_suggester(f))  # fmt: skip
        row.append(widget)
        self._widgets[f.key] = widget
        self._built_text[f.wid] = f.text(value)
        if f.key == "model.checkpoint":
            row.append(Button("…", id="pick-checkpoint", compact=True, tooltip="pick a file"))
        out.append(Horizontal(*row, classes="field-row"))
        error = Label("", id=f"err-{f.wid}", classes="field-error", markup=False)
        error.display = False  # an empty error takes no line
        out.append(error)
        return out

    def on_mount(self) -> None:
        self.title = "tui-landscape: new surface"
        self.validate()
        self.call_after_refresh(self._build)

    def _build(self) -> None:
        """Mount the next few fields not built yet, after a refresh, until all are there."""
        batch, self._unbuilt = self._unbuilt[:BATCH_FIELDS], self._unbuilt[BATCH_FIELDS:]
        for section, fields in itertools.groupby(batch, key=lambda f: f.section):
            values = getattr(self._base, section)
            widgets = [w for f in fields for w in self._field(f, getattr(values, f.name))]
            self.query_one(f"#sec-{section} > Contents").mount_all(widgets)
        self.call_after_refresh(self._build if self._unbuilt else self._painted)

    def _painted(self) -> None:
        """Every field is built: the workers may start. They import torch, and loading its
        libraries holds the GIL for seconds (the UI thread stalls too)."""
        self.painted = True
        self.load_names()
        self.validate()  # now with the engine's preflight, and each error under its field

    @work(thread=True, exclusive=True, group="names", exit_on_error=False)
    def load_names(self) -> None:
        """The built-in models with their sizes, and the data set names: the first torch
        import, here rather than at start-up (it took seconds before the first paint)."""
        global _MODELS, _DATASETS
        if _MODELS is None:
            from engine.data import BUILTIN
            from engine.models import list_models, parameter_count

            _DATASETS = list(BUILTIN)
            _MODELS = [(m.name, parameter_count(m.name)) for m in list_models()]
        self.app.call_from_thread(self._names_loaded, _MODELS, _DATASETS or [])

    def _names_loaded(self, models: list[tuple[str, int]], datasets: list[str]) -> None:
        names = [n for n, _ in models]
        select = self.query_one("#model-list", Select)
        with select.prevent(Select.Changed):  # filling the list is no choice of the user's
            select.set_options([(f"{n} ({_count(count)})", n) for n, count in models])
            select.prompt = "built-in models"
        self.query_one("#model-arch", Input).suggester = SuggestFromList(names)
        self.query_one("#data-dataset", Input).suggester = SuggestFromList(datasets)
        self._show_model()

    def _show_model(self) -> None:
        """The model list shows the arch field's model when it is a built-in one."""
        select = self.query_one("#model-list", Select)
        arch = self.query_one("#model-arch", Input).value
        known = any(value == arch for _, value in select._options)
        with select.prevent(Select.Changed):
            if known:
                select.value = arch
            else:
                select.clear()

    def values(self) -> dict[str, Any]:
        """The setup as nested config mappings: the shown fields over the hidden sections, and
        the output file as ``output.path`` (empty where it is the opened config's default, as in
        the file it came from)."""
        data: dict[str, Any] = {k: dict(v) for k, v in self._hidden.items()}
        out = self.query_one("#out", Input).value.strip()
        default = output_path(Config(), self.config_path)
        data.setdefault("output", {})["path"] = "" if Path(out) == default else out
        for f in self.fields:
            widget = self._built(f)
            if widget is None:  # not built yet: as opened
                value = getattr(getattr(self._base, f.section), f.name)
            elif isinstance(widget, Select):
                # the option text back to its value (a Select's values are the texts)
                value = next((c for c in f.choices or () if f.text(c) == widget.value), None)
                value = f.parse(str(widget.value)) if value is None else value
            else:
                value = f.parse(widget.value)
            data.setdefault(f.section, {})[f.name] = value
        return data

    def _built(self, f: SetupField) -> Widget | None:
        """The field's widget, once mounted (a Select has no value before)."""
        widget = self._widgets.get(f.key)
        return widget if widget is not None and widget.is_mounted else None

    def validate(self) -> Config | None:
        """The setup as the engine sees it; marks the field its first error names. The config's
        own checks run here; the engine's preflight follows in a worker (``preflight``)."""
        for label in self.query(".field-error").results(Label):
            if label.display:  # the others are empty already
                self._show_error(label, "")
        try:
            cfg = config_from_dict(self.values())
        except LandscapeError as e:
            self._config_error(str(e))
            self.cfg = None
            return None
        self.cfg = cfg
        if cfg == self.checked:
            self._ready_to_run(cfg)
        else:
            g = cfg.parsed_grid
            self.query_one("#summary", Label).update(
                f"{g.size} points ({g.ndim}D); checking the model and data..."
            )
            self.query_one("#run", Button).disabled = True
            if self.painted and cfg != self.checking:
                self.checking = cfg
                self.preflight(cfg)
        return cfg

    @work(thread=True, exclusive=True, group="preflight", exit_on_error=False)
    def preflight(self, cfg: Config) -> None:
        """``compute``'s first checks, off the UI thread (the first one imports torch): the
        model, data and files it names, and the output (its folder, no run writing it)."""
        from engine.build import preflight
        from engine.formats import check_output

        try:
            preflight(cfg)
            check_output(output_path(cfg, self.config_path))
        except LandscapeError as e:
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
            self._config_error(msg)

    def _checked(self, cfg: Config) -> None:
        """The preflight of ``cfg`` is over: a later change back to it is checked again (the
        files it names may have changed)."""
        if cfg == self.checking:
            self.checking = None

    def _ready_to_run(self, cfg: Config) -> None:
        g = cfg.parsed_grid
        self.query_one("#summary", Label).update(f"{g.size} points ({g.ndim}D)")
        self.query_one("#run", Button).disabled = self.job is not None

    def _config_error(self, msg: str) -> None:
        """Show an error under the first field it names (unfolding its section), else below the
        fields, and disable Run."""
        shown = {f.key: f for f in self.fields if self._built(f) is not None}
        named = (k for k in re.findall(r"`([\w.]+)(?:\[\d+\])?`", msg) if k in shown)
        key = next(named, None)
        if key is None:  # also a field not built yet: shown there once all are (``_painted``)
            self.query_one("#summary", Label).update(msg)
        else:
            self.query_one("#summary", Label).update("")
            self._show_error(self.query_one(f"#err-{shown[key].wid}", Label), msg)
            self.query_one(f"#sec-{shown[key].section}", Collapsible).collapsed = False
        self.query_one("#run", Button).disabled = True

    def _show_error(self, label: Label, text: str) -> None:
        label.update(text)
        label.display = bool(text)  # an empty error takes no line

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The focused field's doc, in full, below the fields. A choice list's focus lands on a
        widget inside it: the field is the nearest enclosing widget that is one."""
        fields = {f.wid: f for f in self.fields}
        node = event.widget
        while node is not None and node is not self:
            f = fields.get(node.id or "")
            if f is not None:
                self.query_one("#field-doc", Label).update(f"{f.key}: {f.doc}")
                return
            node = node.parent
        # A button or a section title keeps the last field's doc.

    def _mounted_as_built(self, wid: str | None, value: Any) -> bool:
        """Whether a Changed is the one a field posts as it mounts, with the value it was built
        with: no change to validate (only the first Changed of a field can be)."""
        return wid is not None and self._built_text.pop(wid, None) == value

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._mounted_as_built(event.input.id, event.value):
            return
        if event.input.id == "model-arch":
            self._show_model()
        self.validate()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "model-list":  # a choice sets the arch field, validated then
            if isinstance(event.value, str):
                self.query_one("#model-arch", Input).value = event.value
            return
        if not self._mounted_as_built(event.select.id, event.value):
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

        from tui_landscape.screens.picker import FilePicker

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one("#model-checkpoint", Input).value = str(path)

        self.app.push_screen(FilePicker(Path.cwd()), chosen)

    def action_save(self) -> None:
        """Ask where (a new file proposed), then save; see ``SaveConfig``."""
        from tui_landscape.screens.save import SaveConfig, new_config_path

        if self.validate() is None:
            self.notify("Fix the setup first", severity="error")
            return
        self.app.push_screen(SaveConfig(new_config_path(self.config_path)), self.save)

    def save(self, choice: SaveChoice | None) -> None:
        """Write the setup to ``choice.path``, so that ``compute PATH`` writes the output file
        shown here: ``output.path`` is left out only where compute's default names that file."""
        cfg = self.validate()
        if choice is None or cfg is None:
            return
        out = output_path(cfg, self.config_path)  # where Run writes
        path = str(out) if choice.full or output_path(Config(), choice.path) != out else ""
        cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, path=path))
        try:
            save_config(cfg, choice.path, full=choice.full)
        except (OSError, LandscapeError) as e:
            self.log_line(f"error: cannot save {choice.path}: {e}")
            self.notify(f"Cannot save {choice.path}: {e}", severity="error", markup=False)
            return
        self.log_line(f"Saved {choice.path}: `tui-landscape compute {choice.path}` writes {out}")
        self.notify(f"Saved {choice.path}", markup=False)

    def action_estimate(self) -> None:
        cfg = self.validate()
        if cfg is not None:
            self.log_line("Timing one point (loading the model and data first)...")
            self.estimate(cfg)

    @work(thread=True, exclusive=True, group="estimate", exit_on_error=False)
    def estimate(self, cfg: Config) -> None:
        """Seconds per point from timing the center point once (after one warm-up)."""
        from engine.run import time_point

        post = self.app.call_from_thread
        try:
            sec, size = time_point(cfg)
        except LandscapeError as e:
            post(self.log_line, f"error: {e}")
            return
        total = sec * size
        post(
            self.log_line,
            f"Estimate: {sec * 1000:.1f} ms per point, about {total:.0f} s for {size} "
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

    def action_run(self) -> None:
        cfg = self.validate()
        self.run_when_checked = False
        if cfg is None or self.job is not None:
            return
        if cfg != self.checked:  # being checked: Run starts it if the preflight passes
            self.run_when_checked = True
            self.log_line("Checking the setup first...")
            return
        self.cancel_requested = False
        self.query_one("#run", Button).disabled = True
        self.query_one("#cancel", Button).disabled = False
        self.compute(cfg, output_path(cfg, self.config_path))

    def action_detach(self) -> None:
        """Run the setup as its own process, which outlives the app (``tui_landscape.detach``)."""
        from tui_landscape.detach import start_detached
        from tui_landscape.screens.browser import show_folder

        cfg = self.validate()
        self.detach_when_checked = False
        if cfg is None:
            self.notify("Fix the setup first", severity="error")
            return
        if cfg != self.checked:
            # As Run: started once compute's checks pass, which a detached process would fail.
            self.detach_when_checked = True
            self.log_line("Checking the setup first...")
            return
        try:
            run = start_detached(cfg, output_path(cfg, self.config_path), self.config_path)
        except LandscapeError as e:
            self.notify(str(e), severity="error", markup=False)
            return
        self.notify(f"Running {run.out.name} detached (pid {run.pid}); log: {run.log}",
                    markup=False)  # fmt: skip
        show_folder(self.app, run.out.parent)

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
        t0, n, computed = time.perf_counter(), 0, 0
        try:
            for r in job.points():
                n += 1
                computed += r.error is None
                if r.error:
                    post(self.log_line, f"point {r.coords} failed: {r.error}")
                post(self._progress, r.done, job.total, fmt_rate(n, time.perf_counter() - t0))
                if self.cancel_requested:
                    break
        except LandscapeError as e:
            post(self._finished, f"error: {e}")
            return
        finally:
            self.job = None
        # What `compute` prints at its end, the minimum and a NaN's likely cause included.
        for line in summary_lines(job.summary(computed, time.perf_counter() - t0), job.grid.ndim):
            post(self.log_line, line)
        verb = "Cancelled" if self.cancel_requested else "Done"
        post(self._finished, f"{verb}: {job.done}/{job.total} points in {job.path}")

    def _started(self, job, todo: int) -> None:
        bars = self.query("#progress").results(ProgressBar)
        bar = next(bars, None)
        if bar is None:  # the first run: mounted now (hidden before, it pulsed 15 times a second)
            bar = ProgressBar(id="progress", show_eta=True)
            self.query_one("#right").mount(bar, after="#live")
        bar.update(total=job.total, progress=job.done)
        self.log_line(f"Computing {todo} of {job.total} points into {job.path}")
        self._job_for_view = job
        self._draw(force=True)

    def _progress(self, done: int, total: int, rate: str) -> None:
        self.query_one("#progress", ProgressBar).update(progress=done)
        self.sub_title = f"{done}/{total} points, {rate}"  # '12.3 s/pt' for a slow run
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < REDRAW_SECONDS:
            return
        self._last_draw = now
        job = getattr(self, "_job_for_view", None)
        if job is None:
            return
        surface = job.snapshot()
        view = self.query_one("#live", PlotView)
        view.surface = surface
        view.redraw()

    def _finished(self, text: str) -> None:
        self._draw(force=True)
        self.sub_title = ""  # no run: its rate is no longer news (the log keeps the summary)
        self.log_line(text)
        severity = "error" if text.startswith("error") else "information"
        self.notify(text, severity=severity, markup=False)
        self.query_one("#cancel", Button).disabled = True
        self.validate()
