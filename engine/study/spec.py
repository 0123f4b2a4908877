"""The study file: TOML mapped onto frozen dataclasses, every member's config resolved up front.

A study is a base config, a list of members (each a preset, a config file or inline overrides
of the base, with a label and its factor values), the seeds that replicate every member, the
stages to run and the pairs to interpolate between (``docs/studies.md`` shows a file). Unknown
keys and wrong types are refused with the dotted path, by ``engine.config``'s own machinery;
``load_study`` then resolves each member's config and refuses an invalid one in one line that
names the member and the key, before anything runs.

A member's config: its own ``preset`` / ``config`` file if it names one, else the base's; then
the base's ``set``, then the member's ``set`` (dotted keys, as ``--set``). Paths in the study
file are taken from the study file's folder; a preset ``NAME`` is ``<presets>/NAME.toml``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import (
    Config,
    _build,
    config_from_dict,
    key_type,
    parse_value,
)
from engine.errors import ConfigError
from engine.tomlfile import read_toml_file

__all__ = [
    "GridSpec",
    "MeasureSpec",
    "MemberSpec",
    "PairSpec",
    "RecipeSpec",
    "SourceSpec",
    "Study",
    "StudySpec",
    "load_study",
    "member_data",
]

# Labels name folders (members/<label>-s<seed>): no separators, nothing a shell must quote.
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
# Control characters (engine.errors.clean_text's): never in a name that readers print.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _doc(text: str) -> dict[str, Any]:
    return {"doc": text}


@dataclass(frozen=True)
class SourceSpec:
    """Where a config comes from: a preset, a config file, or neither (the defaults)."""

    preset: str = field(default="", metadata=_doc("preset name: <presets>/NAME.toml"))
    config: str = field(default="", metadata=_doc("config file, relative to the study file"))
    set: Mapping[str, Any] = field(
        default_factory=dict, metadata=_doc("overrides as dotted keys, e.g. 'train.lr' = 0.01")
    )


@dataclass(frozen=True)
class MemberSpec(SourceSpec):
    label: str = field(default="", metadata=_doc("the member's name (its folder)"))
    factors: Mapping[str, Any] = field(
        default_factory=dict, metadata=_doc("the member's value of each study factor")
    )


@dataclass(frozen=True)
class PairSpec:
    a: str = field(default="", metadata=_doc("label of the interpolation's start (alpha = 0)"))
    b: str = field(default="", metadata=_doc("label of its end (alpha = 1)"))


@dataclass(frozen=True)
class GridSpec:
    x1d: str = field(default="-1:1:21", metadata=_doc("1D surfaces' grid.x"))
    x2d: str = field(default="-1:1:11", metadata=_doc("2D surfaces' grid.x"))
    y2d: str = field(default="-1:1:11", metadata=_doc("2D surfaces' grid.y"))
    pca: str = field(default="auto:11", metadata=_doc("PCA surface's axes, fitted to the path"))
    interpolation: str = field(default="-0.5:1.5:21", metadata=_doc("pairs' alpha grid"))
    hessian_map: bool = field(
        default=False,
        metadata=_doc("Hessian over the 2D grid (true) or at the centre only (false)"),
    )
    hessian_grid: str = field(
        default="",
        metadata=_doc("the Hessian map's grid.x and grid.y, if coarser than x2d (empty: x2d, y2d)"),
    )
    hessian_map_seeds: tuple[int, ...] = field(
        default=(),
        metadata=_doc("the seeds whose Hessian stage maps the grid (empty: all; others: centre)"),
    )


@dataclass(frozen=True)
class MeasureSpec:
    rho: float = field(default=0.05, metadata=_doc("adaptive / average sharpness radius"))
    p: float = field(default=2.0, metadata=_doc("norm of the adaptive perturbation"))
    steps: int = field(default=10, metadata=_doc("projected gradient ascent steps"))
    samples: int = field(default=20, metadata=_doc("random perturbations, average sharpness"))
    directions: int = field(default=50, metadata=_doc("basin volume: random directions"))
    radius: float = field(default=1.0, metadata=_doc("basin volume: radius along each"))
    margin: float = field(default=0.1, metadata=_doc("basin volume and basin width: loss margin"))
    sharpness_radius: float = field(
        default=0.25, metadata=_doc("mean rise: points within this distance of the minimum")
    )
    batch_size: int = field(default=1024, metadata=_doc("evaluation batch size"))


@dataclass(frozen=True)
class RecipeSpec:
    """engine.minimizer.RecipeRule: the one rule that trains every member."""

    lr_grid: tuple[float, ...] = field(
        default=(), metadata=_doc("learning rates tried, best final train loss kept (empty: own)")
    )
    converged_train_acc: float = field(
        default=0.95, metadata=_doc("below this train accuracy a member is 'not_converged'")
    )


@dataclass(frozen=True)
class StudySpec:
    name: str = field(default="", metadata=_doc("the study's name"))
    seeds: tuple[int, ...] = field(default=(0,), metadata=_doc("training seeds (replicates)"))
    factors: tuple[str, ...] = field(default=(), metadata=_doc("the factors members vary"))
    target: str = field(default="gap", metadata=_doc("what the measures are correlated with"))
    stages: tuple[str, ...] = field(
        default=(), metadata=_doc("stages to run (empty: all, see engine/study/stages.py)")
    )
    presets: str = field(
        default="../paper", metadata=_doc("folder of presets, relative to the study file")
    )
    eval_subset: int = field(
        default=0,
        metadata=_doc(
            "maps and measures on a fixed subset of N samples per split (data.subset of every "
            "stage but train; 0: the members' own); training and the generalization numbers "
            "use every sample"
        ),
    )
    base: SourceSpec = field(default_factory=SourceSpec)
    grid: GridSpec = field(default_factory=GridSpec)
    measures: MeasureSpec = field(default_factory=MeasureSpec)
    recipe: RecipeSpec = field(default_factory=RecipeSpec)
    members: tuple[MemberSpec, ...] = ()
    pairs: tuple[PairSpec, ...] = ()


@dataclass(frozen=True)
class Study:
    """A loaded study: the spec, where it came from, and each member's resolved config data
    (plain nested dicts, validated; the runner adds the per-seed and per-stage keys)."""

    spec: StudySpec
    path: Path | None
    text: str  # the study file as given (a mapping's TOML)
    overrides: tuple[str, ...]
    members: Mapping[str, dict[str, Any]]  # label -> config data

    @property
    def digest(self) -> str:
        """The identity of a study folder: the study file's text and the overrides."""
        h = hashlib.blake2b(digest_size=8)
        h.update(self.text.encode())
        for o in self.overrides:
            h.update(b"\0" + o.encode())
        return h.hexdigest()

    def member(self, label: str) -> MemberSpec:
        return next(m for m in self.spec.members if m.label == label)


def spec_to_dict(spec: StudySpec) -> dict[str, Any]:
    """The spec as plain JSON-able data (tuples as lists, mappings as dicts)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(spec)


def spec_from_dict(data: Mapping[str, Any]) -> StudySpec:
    """Build a ``StudySpec``; unknown keys and wrong types are refused with the dotted path."""
    data = dict(data)
    lists = {}
    for key, cls in (("members", MemberSpec), ("pairs", PairSpec)):
        items = data.pop(key, [])
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            raise ConfigError(f"Expected `{key}` to be an array of tables ([[{key}]]).")
        lists[key] = tuple(_build(cls, i, f"{key}[{n}].") for n, i in enumerate(items))
    spec = dataclasses.replace(_build(StudySpec, data, ""), **lists)
    _check(spec)
    return spec


def _check(spec: StudySpec) -> None:
    from engine.study.stages import STAGES
    from engine.study.table import MEASURES

    if not spec.name:
        raise ConfigError("Expected `name` to name the study.")
    for key, text in (
        ("name", spec.name),
        *((f"factors[{n}]", f) for n, f in enumerate(spec.factors)),
    ):
        if not text.strip() or _CONTROL.search(text):  # printed by every reader of the folder
            raise ConfigError(f"Expected `{key}` to be printable text, but got {text!r}.")
    if len(set(spec.factors)) != len(spec.factors):
        raise ConfigError(f"Expected `factors` to be distinct, but got {list(spec.factors)}.")
    if spec.eval_subset < 0:
        raise ConfigError(f"Expected `eval_subset` >= 0, but got {spec.eval_subset}.")
    seeds = spec.seeds
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) >= 2**63:
        raise ConfigError(
            f"Expected `seeds` to be distinct integers from 0 to 2**63 - 1, but got {list(seeds)}."
        )
    if stray := sorted(set(spec.grid.hessian_map_seeds) - set(seeds)):
        raise ConfigError(
            f"Expected `grid.hessian_map_seeds` to name seeds of `seeds` {list(seeds)}, "
            f"but got {stray}."
        )
    for s in spec.stages:
        STAGES.get(s)
    if spec.target not in MEASURES:
        raise ConfigError(
            f"Expected `target` to be one of {', '.join(map(repr, MEASURES))}, but got "
            f"{spec.target!r}."
        )
    if not spec.members:
        raise ConfigError("Expected at least one member ([[members]] with a label).")
    labels = [m.label for m in spec.members]
    for n, m in enumerate(spec.members):
        if not _LABEL.match(m.label):
            raise ConfigError(
                f"Expected `members[{n}].label` to be letters, digits, '.', '_', '+' or '-', "
                f"but got {m.label!r}."
            )
        if labels.count(m.label) > 1:
            raise ConfigError(f"Member label {m.label!r} is used twice.")
        if m.preset and m.config:
            raise ConfigError(f"Member {m.label!r}: give `preset` or `config`, not both.")
        if set(m.factors) != set(spec.factors):
            raise ConfigError(
                f"Member {m.label!r}: expected `factors` to give {list(spec.factors)}, but got "
                f"{list(m.factors)}."
            )
        for f, v in m.factors.items():  # compared, ordered, and written to the table's CSV
            if not isinstance(v, str | int | float | bool):
                raise ConfigError(
                    f"Expected `members[{n}].factors.{f}` to be a number, a string or "
                    f"true/false, but got {v!r}."
                )
    for n, p in enumerate(spec.pairs):
        for k in ("a", "b"):
            if getattr(p, k) not in labels:
                raise ConfigError(
                    f"Expected `pairs[{n}].{k}` to be a member's label ({', '.join(labels)}), "
                    f"but got {getattr(p, k)!r}."
                )
        if p.a == p.b:
            raise ConfigError(f"Expected `pairs[{n}]` to join two different members.")
    m = spec.measures
    if m.rho <= 0 or m.p <= 0 or m.radius <= 0 or m.margin <= 0:
        raise ConfigError("Expected `measures.rho`, `.p`, `.radius` and `.margin` > 0.")
    if m.steps < 1 or m.samples < 1 or m.directions < 1 or m.batch_size < 1:
        raise ConfigError(
            "Expected `measures.steps`, `.samples`, `.directions` and `.batch_size` >= 1."
        )
    if any(lr <= 0 for lr in spec.recipe.lr_grid):
        raise ConfigError("Expected every `recipe.lr_grid` value > 0.")


def _merge(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``dotted`` in nested ``data``; a table value for a section (not a table-typed key
    such as ``model.kwargs``) is merged key by key, so ``set = {train = {lr = 0.1}}`` and
    ``set = {"train.lr" = 0.1}`` mean the same."""
    tp = _key_type(dotted) if "." in dotted else None
    is_section = dotted.count(".") == 0 or dataclasses.is_dataclass(tp)
    if isinstance(value, Mapping) and (is_section or tp is None):
        for k, v in value.items():
            _merge(data, f"{dotted}.{k}", v)
        return
    node = data
    keys = dotted.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"Cannot set `{dotted}`: `{k}` is not a table.")
    node[keys[-1]] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)


@functools.lru_cache(maxsize=1024)
def _key_type(dotted: str) -> Any:
    """``key_type``, remembered: it resolves type hints, and a plan merges hundreds of keys."""
    return key_type(dotted)


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    return read_toml_file(path, what)[1]


def _source(src: SourceSpec, root: Path, presets: Path) -> dict[str, Any] | None:
    if src.preset:
        return _read_toml(presets / f"{src.preset}.toml", f"preset {src.preset!r}")
    if src.config:
        return _read_toml(root / src.config, "config file")
    return None


def member_data(spec: StudySpec, member: MemberSpec, root: Path) -> dict[str, Any]:
    """A member's config as nested data: its source (else the base's), the base's ``set``,
    then its own ``set``. Not yet validated (``load_study`` does that)."""
    presets = root / spec.presets
    data = _source(member, root, presets)
    if data is None:
        data = _source(spec.base, root, presets) or {}
    for k, v in spec.base.set.items():
        _merge(data, k, v)
    for k, v in member.set.items():
        _merge(data, k, v)
    return data


def validate_member(label: str, data: Mapping[str, Any], stage: str = "") -> Config:
    """``config_from_dict`` with the member named: "member 'x': Expected `train.lr` > 0..."."""
    try:
        return config_from_dict(data)
    except ConfigError as e:
        where = f" (stage {stage})" if stage else ""
        raise ConfigError(f"member {label!r}{where}: {e}") from None


def load_study(
    source: str | Path | Mapping[str, Any], overrides: Iterable[str] = (), root: Path | None = None
) -> Study:
    """Read a study file (or a mapping, with ``root`` for its relative paths), apply
    ``key=value`` overrides of the study's own keys (``seeds=[0]``, ``grid.x2d=-1:1:5``;
    ``base.set.KEY=VALUE`` reaches every member's config) and resolve every member."""
    overrides = tuple(overrides)
    if isinstance(source, Mapping):
        data, path = copy.deepcopy(dict(source)), None
        text = _toml_text(data)  # the folder's identity and its study.toml, as for a file
        root = root or Path.cwd()
    else:
        path = Path(source)
        text, data = read_toml_file(path, "Study file")
        root = path.parent
    for item in overrides:
        _override(data, item)
    spec = spec_from_dict(data)
    members = {}
    for m in spec.members:
        try:
            d = member_data(spec, m, root)
        except ConfigError as e:  # a preset or config file, or a `set` key: name the member
            raise ConfigError(f"member {m.label!r}: {e}") from None
        validate_member(m.label, d)
        members[m.label] = d
    return Study(spec, path, text, overrides, members)


def _toml_text(data: Mapping[str, Any]) -> str:
    import tomli_w

    try:
        return tomli_w.dumps(data)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"The study is not expressible as TOML: {e}") from None


def _override(data: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise ConfigError(f"Expected `--set` as 'key=value', but got {item!r}.")
    key, raw = (s.strip() for s in item.split("=", 1))
    if not key:
        raise ConfigError(f"Expected `--set` as 'key=value', but got {item!r}.")
    if key.startswith("base.set."):
        dotted = key[len("base.set.") :]  # a config key: a string key takes the text as typed
        data.setdefault("base", {}).setdefault("set", {})[dotted] = parse_value(
            raw, key_type(dotted)
        )
        return
    node = data
    keys = key.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"Cannot set `{key}`: `{k}` is not a table.")
    node[keys[-1]] = parse_value(raw)


def resolved_config(data: Mapping[str, Any], keys: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of member config ``data`` with dotted ``keys`` set (the runner's per-stage keys)."""
    out = copy.deepcopy(dict(data))
    for k, v in keys.items():
        _merge(out, k, v)
    return out
