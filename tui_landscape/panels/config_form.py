"""The config form: one line per key of some config sections, built from the dataclasses.

A field's widget is chosen by the key's type (a finite type, a ``Literal``, a bool or a list of
Literals, is a Select of exactly its values; anything else an Input, read as TOML) and its
``doc`` is its tooltip and the line shown for the focused field. So a new config key appears
here without an edit. The form knows fields, values and where an error goes, nothing of runs:
the setup screen places it, as posting keeps its request editor a widget apart from the app.

The first paint shows the first section's fields; the others are built after it, a few fields
a refresh (mounting and styling all of them took seconds before the first paint), their values
read from the opened config until then; ``Built`` says when every field is there. A field the
user changes posts ``Changed`` (the Changed a field posts as it mounts is no change).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Button, Collapsible, Input, Label, Select

from engine.config import Config, config_to_dict, parse_value

__all__ = ["ConfigForm", "FieldInput", "SetupField", "builtin_names", "setup_fields"]

MAX_SUBSET_CHOICES = 4  # a list of up to 4 choices is a Select of its subsets (15 at most)
BATCH_FIELDS = 6  # fields mounted a refresh after the first paint (about 0.1 s each batch)

# The built-in models with their parameter counts, and the data set names: read once a process
# (building every model on the meta device takes seconds).
_NAMES: tuple[list[tuple[str, int]], list[str]] | None = None


def builtin_names() -> tuple[list[tuple[str, int]], list[str]]:
    """The built-in models with their parameter counts, and the built-in data sets: what the
    form offers (``offer_names``). It imports torch: call it in a worker."""
    global _NAMES
    if _NAMES is None:
        from engine.data import BUILTIN
        from engine.models import list_models, parameter_count

        _NAMES = [(m.name, parameter_count(m.name)) for m in list_models()], list(BUILTIN)
    return _NAMES


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
        """The config value of the field's text, left for the config's own checks to judge:
        the one parser of ``--set`` too (a string key keeps '0' or 'true' as typed)."""
        return parse_value(text, self.type)


def setup_fields(sections: Iterable[str], config: type = Config) -> list[SetupField]:
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
    from the worker that imports the engine's models (``ConfigForm.offer_names``)."""
    words = [a for a in typing.get_args(f.type) if typing.get_origin(a) is Literal]
    choices = [str(c) for a in words for c in typing.get_args(a)]
    return SuggestFromList(choices) if choices else None


class FieldInput(Input):
    """An Input whose editing keys keep their place among typed characters.

    Textual inserts a typed character as the key reaches the Input, but runs an editing
    binding (backspace, delete, home ...) only once the key has bubbled back up to the app.
    In a burst (a laggy SSH link, a fast typist) the characters overtook the queued backspaces:
    12 backspaces then "-1:1:41" gave "-0.5:-". Here the Input's own bindings run at once.
    """

    async def _on_key(self, event: events.Key) -> None:
        if not event.is_printable:
            bindings = self._bindings.key_to_bindings.get(event.key, ())
            if bindings:
                event.stop()
                event.prevent_default()
                await self.run_action(bindings[0].action)
                return
        await super()._on_key(event)


class ConfigForm(Vertical):
    """The fields of ``sections`` of a config, grouped in folding sections, and the output
    file; ``values`` reads them back as nested config mappings."""

    DEFAULT_CSS = "ConfigForm { height: auto; }"

    class Changed(Message):
        """The user changed a field."""

    class Built(Message):
        """Every field is mounted (until then, fields not built keep the opened values)."""

    def __init__(self, base: Config, sections: tuple[str, ...], folded: tuple[str, ...],
                 out: str, out_doc: str) -> None:  # fmt: skip
        super().__init__()
        self.base = base  # the opened config: the values of the fields not built yet
        self.sections, self.folded = sections, folded
        self.fields = setup_fields(sections)
        # Sections the form does not show are kept as they were read, and given back.
        self._hidden = {k: v for k, v in config_to_dict(base).items() if k not in sections}
        self._out, self._out_doc = out, out_doc
        # Each field's widget by its key, and the text it was built with: the Changed a field
        # posts as it mounts is no change (each validated, a batch of six took 40 ms more).
        self._widgets: dict[str, Widget] = {}
        self._built_text: dict[str, str] = {"out": out}
        self._unbuilt = [f for f in self.fields if f.section != sections[0]]

    def compose(self) -> ComposeResult:
        """The sections in folding groups, only the first one's fields in it (``_build``)."""
        for section in self.sections:
            fields = [] if section != self.sections[0] else self._fields_of(section)
            folded = section in self.folded
            yield Collapsible(*fields, title=section, collapsed=folded, id=f"sec-{section}")
        with Horizontal(classes="field-row"):
            yield Label("output file", classes="field-label")
            yield FieldInput(self._out, id="out", compact=True, tooltip=self._out_doc)

    def _fields_of(self, section: str) -> list[Widget]:
        values = getattr(self.base, section)
        return [w for f in self.fields if f.section == section
                for w in self._field(f, getattr(values, f.name))]  # fmt: skip

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
            widget = FieldInput(value=f.text(value), id=f.wid, compact=True, tooltip=tip,
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
        self.call_after_refresh(self._build)

    def _build(self) -> None:
        """Mount the next few fields not built yet, after a refresh, until all are there."""
        batch, self._unbuilt = self._unbuilt[:BATCH_FIELDS], self._unbuilt[BATCH_FIELDS:]
        for section, fields in itertools.groupby(batch, key=lambda f: f.section):
            values = getattr(self.base, section)
            widgets = [w for f in fields for w in self._field(f, getattr(values, f.name))]
            self.query_one(f"#sec-{section} > Contents").mount_all(widgets)
        if self._unbuilt:
            self.call_after_refresh(self._build)
        else:
            self.call_after_refresh(self.post_message, self.Built())

    def offer_names(self, models: list[tuple[str, int]], datasets: list[str]) -> None:
        """The built-in models with their sizes in the model list, and the model and data set
        names as completions of their fields."""
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

    def set_text(self, key: str, text: str) -> None:
        """Type ``text`` into the Input of a field (a checkpoint picked from a file tree)."""
        self.query_one(f"#{key.replace('.', '-')}", Input).value = text

    def values(self) -> dict[str, Any]:
        """The fields as nested config mappings over the hidden sections, and the output
        file's text as ``output.path``."""
        data: dict[str, Any] = {k: dict(v) for k, v in self._hidden.items()}
        data.setdefault("output", {})["path"] = self.query_one("#out", Input).value.strip()
        for f in self.fields:
            widget = self.built(f)
            if widget is None:  # not built yet: as opened
                value = getattr(getattr(self.base, f.section), f.name)
            elif isinstance(widget, Select):
                # the option text back to its value (a Select's values are the texts)
                value = next((c for c in f.choices or () if f.text(c) == widget.value), None)
                value = f.parse(str(widget.value)) if value is None else value
            else:
                value = f.parse(widget.value)
            data.setdefault(f.section, {})[f.name] = value
        return data

    def built(self, f: SetupField) -> Widget | None:
        """The field's widget, once mounted (a Select has no value before)."""
        widget = self._widgets.get(f.key)
        return widget if widget is not None and widget.is_mounted else None

    def clear_errors(self) -> None:
        for label in self.query(".field-error").results(Label):
            if label.display:  # the others are empty already
                _show(label, "")

    def show_error(self, msg: str) -> bool:
        """Show an error under the first built field it names (unfolding its section); False
        where it names none (a field not built yet, or none at all)."""
        shown = {f.key: f for f in self.fields if self.built(f) is not None}
        named = (k for k in re.findall(r"`([\w.]+)(?:\[\d+\])?`", msg) if k in shown)
        key = next(named, None)
        if key is None:
            return False
        _show(self.query_one(f"#err-{shown[key].wid}", Label), msg)
        self.query_one(f"#sec-{shown[key].section}", Collapsible).collapsed = False
        return True

    def field_of(self, node: Widget | None) -> SetupField | None:
        """The field a focused widget belongs to: a choice list's focus lands on a widget
        inside it, so the nearest enclosing widget that is a field's."""
        fields = {f.wid: f for f in self.fields}
        while node is not None and node is not self:
            f = fields.get(node.id or "")
            if f is not None:
                return f
            node = node.parent
        return None

    def _mounted_as_built(self, wid: str | None, value: Any) -> bool:
        """Whether a Changed is the one a field posts as it mounts, with the value it was built
        with: no change (only the first Changed of a field can be)."""
        return wid is not None and self._built_text.pop(wid, None) == value

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._mounted_as_built(event.input.id, event.value):
            return
        if event.input.id == "model-arch":
            self._show_model()
        self.post_message(self.Changed())

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "model-list":  # a choice sets the arch field, a change then
            if isinstance(event.value, str):
                self.query_one("#model-arch", Input).value = event.value
            return
        if not self._mounted_as_built(event.select.id, event.value):
            self.post_message(self.Changed())


def _show(label: Label, text: str) -> None:
    label.update(text)
    label.display = bool(text)  # an empty error takes no line
