"""The study table: one row per member and seed, written as ``table.json`` and ``table.csv``,
and read back checked.

The format (``docs/studies.md``) is the seam between the runner and its readers (the report,
``info``, ``plot``, ``compare``, the app): ``{"format": "tui-landscape-study-table",
"version": 1, "name", "factors", "target", "measures": {name: {"doc", "sharper_is_larger"}},
"rows": [{"member", "seed", "factors", "status", "note", "values", "files", "seconds"}]}``.
A missing value is a measure not computed. Only rows with status "ok" are minimizers.
Both files are written atomically (a temporary file, then a rename), after every member.
``read_table`` is the one reader: it checks, in order, that the file is JSON, ours, of a
version this tool reads, and that every key has its type, and refuses anything else in one
line naming the file and the key. No torch, no h5py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, LandscapeError, clean_text, describe

__all__ = [
    "MEASURES",
    "STATUSES",
    "TABLE_FORMAT",
    "TABLE_NAME",
    "TABLE_VERSION",
    "MeasureInfo",
    "Row",
    "StudyTable",
    "is_study_folder",
    "read_table",
    "stored_number",
    "write_atomic",
    "write_table",
]

TABLE_NAME = "table.json"
TABLE_FORMAT = "tui-landscape-study-table"
TABLE_VERSION = 1
OK = "ok"
STATUSES = ("ok", "not_converged", "diverged", "failed", "pending")

# name -> (doc, a larger value means a sharper minimum; None where sharpness does not apply)
_M: dict[str, tuple[str, bool | None]] = {
    "train_loss": ("mean train loss at the minimum (eval mode)", None),
    "train_error": ("train error in [0, 1] at the minimum", None),
    "test_loss": ("mean test loss at the minimum", None),
    "test_error": ("test error in [0, 1] at the minimum", None),
    "gap": ("generalization gap: test_error - train_error", None),
    "gap_loss": ("test_loss - train_loss", None),
    "curvature_filter": ("mean 2nd derivative of train loss along the axes, filter-norm", True),
    "basin_width_filter": ("mean width of the sub-(min + margin) basin, filter-norm", False),
    "mean_rise_filter": ("mean train-loss rise within the radius, filter-norm", True),
    "surface_ratio_filter": (
        "mean non-convexity of the 2D surface itself (its 2x2 Hessian), filter-norm",
        None,
    ),
    "curvature_raw": ("as curvature_filter, unnormalized directions", True),
    "basin_width_raw": ("as basin_width_filter, unnormalized directions", False),
    "mean_rise_raw": ("as mean_rise_filter, unnormalized directions", True),
    "surface_ratio_raw": ("as surface_ratio_filter, unnormalized directions", None),
    "lambda_max": ("largest Hessian eigenvalue at the minimum", True),
    "lambda_min": ("smallest Hessian eigenvalue at the minimum", None),
    "eig_ratio": ("|lambda_min / lambda_max| at the minimum", None),
    "trace": ("Hessian trace (Hutchinson) at the minimum", True),
    "trace_se": ("standard error of the trace", None),
    "mean_ratio_map": ("mean |lambda_min / lambda_max| over the 2D Hessian map", None),
    "adaptive_sharpness": ("worst-case adaptive sharpness (projected gradient ascent)", True),
    "average_sharpness": ("average-case sharpness over random perturbations", True),
    "basin_volume": ("fraction of random directions staying under the margin", False),
    "basin_volume_low": ("95% Wilson interval of basin_volume: low end", None),
    "basin_volume_high": ("95% Wilson interval of basin_volume: high end", None),
}
MEASURES: dict[str, dict[str, Any]] = {
    k: {"doc": d, "sharper_is_larger": s} for k, (d, s) in _M.items()
}


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` by a temporary file and a rename: never half a file. The
    temporary name is this writer's own, and is removed when the write fails."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _json_value(v: Any) -> Any:
    """NaN and inf as null: JSON has neither."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def table_dict(
    name: str,
    factors: Sequence[str],
    target: str,
    rows: Sequence[Mapping[str, Any]],
    pairs: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    clean = [
        {**r, "values": {k: _json_value(v) for k, v in r.get("values", {}).items()}} for r in rows
    ]
    return {
        "format": TABLE_FORMAT,
        "version": TABLE_VERSION,
        "name": name,
        "factors": list(factors),
        "target": target,
        "measures": MEASURES,
        "rows": clean,
        "pairs": list(pairs),
    }


def table_csv(table: Mapping[str, Any]) -> str:
    """The rows flattened: label, seed, the factors, status, note, then every measure."""
    factors, measures = table["factors"], list(MEASURES)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["label", "seed", *factors, "status", "note", *measures])
    for r in table["rows"]:
        vals = r.get("values", {})
        w.writerow(
            [
                r["member"],
                r["seed"],
                *(r["factors"].get(f, "") for f in factors),
                r["status"],
                r.get("note", ""),
                *("" if vals.get(m) is None else repr(float(vals[m])) for m in measures),
            ]
        )
    return buf.getvalue()


def write_table(
    folder: Path,
    name: str,
    factors: Sequence[str],
    target: str,
    rows: Sequence[Mapping[str, Any]],
    pairs: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Write ``table.json`` and ``table.csv`` in ``folder``; returns the table."""
    table = table_dict(name, factors, target, rows, pairs)
    write_atomic(folder / TABLE_NAME, json.dumps(table, indent=1) + "\n")
    write_atomic(folder / "table.csv", table_csv(table))
    return table


@dataclass(frozen=True)
class MeasureInfo:
    """What a measure is, and which way is sharper (a basin's width or volume: smaller; None
    where sharpness does not apply, as for the gap or an eigenvalue ratio)."""

    doc: str = ""
    sharper_is_larger: bool | None = True


@dataclass(frozen=True)
class Row:
    """One member trained with one seed: its factor values, status and measures."""

    member: str
    seed: int
    factors: dict[str, Any]
    status: str
    note: str = ""
    values: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The member's folder name, ``<member>-s<seed>``."""
        return f"{self.member}-s{self.seed}"

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class StudyTable:
    """A study's ``table.json``, read and checked."""

    path: Path
    name: str
    factors: tuple[str, ...]
    target: str
    measures: dict[str, MeasureInfo]
    rows: tuple[Row, ...]
    digest: str  # sha256 of the file's bytes: what correlation.json was computed from

    @property
    def folder(self) -> Path:
        return self.path.parent

    def ok_rows(self) -> list[Row]:
        return [r for r in self.rows if r.ok]

    def file(self, row: Row, stage: str) -> Path | None:
        """The path of ``row``'s file of ``stage`` (``surface_2d``, ``hessian``...), if any;
        a path that leaves the study folder (absolute, or through '..'), as only a table
        written by hand has, is refused in one line rather than opened."""
        rel = row.files.get(stage)
        if not rel:
            return None
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise _bad(
                self.path, f"`files.{stage}` of {row.label} leaves the study folder: {rel!r}"
            )
        return self.folder / rel

    def stages(self) -> list[str]:
        """Every stage some row has a file of, in the order the rows name them."""
        return list(dict.fromkeys(s for r in self.rows for s in r.files))

    def find(self, label: str) -> Row:
        """The row named ``label`` (``<member>-s<seed>``, or a member with one seed); an unknown
        name is one line listing the valid ones."""
        for r in self.rows:
            if label == r.label:
                return r
        same = [r for r in self.rows if r.member == label]
        if len(same) == 1:
            return same[0]
        names = ", ".join(r.label for r in self.rows)
        if same:
            raise ConfigError(f"member {label!r} has several seeds: name one of {names}")
        raise ConfigError(f"no member {label!r} in {self.folder}; its members: {names}")


def is_study_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding a study table (a cheap look, nothing is read)."""
    return Path(path).is_dir() and (Path(path) / TABLE_NAME).is_file()


def _table_path(path: Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / TABLE_NAME
    if not p.is_file():
        raise ConfigError(f"no study table: {p} does not exist")
    return p


def _bad(p: Path, what: str) -> LandscapeError:
    return LandscapeError(clean_text(f"{p} is not a readable study table: {what}"))


def read_table(path: Path) -> StudyTable:
    """``table.json`` of a study folder (or the file itself), checked in order: JSON, ours,
    the version, the keys and their types. Each refusal is one line naming the file."""
    p = _table_path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise _bad(p, describe(e)) from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise _bad(p, f"not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != TABLE_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise _bad(p, f"format {got!r}, expected {TABLE_FORMAT!r}")
    version = doc.get("version")
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or not 1 <= version <= TABLE_VERSION
    ):
        raise _bad(p, f"version {version!r}; this tool reads 1 to {TABLE_VERSION}")
    factors = _strings(p, doc.get("factors", []), "factors")
    target = doc.get("target", "gap")
    if not isinstance(target, str):
        raise _bad(p, f"`target` must be a string, got {target!r}")
    measures = {}
    for name, info in _dict(p, doc.get("measures", {}), "measures").items():
        info = _dict(p, info, f"measures.{name}")
        larger = info.get("sharper_is_larger", True)
        measures[name] = MeasureInfo(
            str(info.get("doc", "")), None if larger is None else bool(larger)
        )
    rows_in = doc.get("rows")
    if not isinstance(rows_in, list):
        raise _bad(p, "`rows` must be a list")
    rows = tuple(_row(p, k, r, factors) for k, r in enumerate(rows_in))
    seen: dict[str, int] = {}
    for k, r in enumerate(rows):  # a label names a member's folder, --member and the app's row
        if r.label in seen:
            raise _bad(
                p, f"`rows[{k}]` repeats member {r.member!r} seed {r.seed} (rows[{seen[r.label]}])"
            )
        seen[r.label] = k
    return StudyTable(
        p, str(doc.get("name", "")), tuple(factors), target, measures, rows,
        hashlib.sha256(raw).hexdigest(),
    )  # fmt: skip


def _dict(p: Path, v: Any, key: str) -> dict:
    if not isinstance(v, dict):
        raise _bad(p, f"`{key}` must be a table, got {type(v).__name__}")
    return v


def _strings(p: Path, v: Any, key: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise _bad(p, f"`{key}` must be a list of names")
    return v


def stored_number(v: Any) -> float | None:
    """A measure's value as JSON stores it: a number, or null for one that came out undefined
    (NaN); None where it is neither (written by hand)."""
    if v is None:
        return math.nan  # JSON has no NaN: null is a measure that came out undefined
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _row(p: Path, k: int, r: Any, factors: list[str]) -> Row:
    where = f"rows[{k}]"
    r = _dict(p, r, where)
    member, seed, status = r.get("member"), r.get("seed"), r.get("status")
    if not isinstance(member, str) or not member:
        raise _bad(p, f"`{where}.member` must be a name, got {member!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise _bad(p, f"`{where}.seed` must be an integer, got {seed!r}")
    if status not in STATUSES:
        raise _bad(p, f"`{where}.status` must be one of {', '.join(STATUSES)}, got {status!r}")
    values = {}
    for name, v in _dict(p, r.get("values", {}), f"{where}.values").items():
        x = stored_number(v)
        if x is None:
            raise _bad(p, f"`{where}.values.{name}` must be a number, got {v!r}")
        values[name] = x
    facs = _dict(p, r.get("factors", {}), f"{where}.factors")
    missing = [f for f in factors if f not in facs]
    if missing:
        raise _bad(p, f"`{where}.factors` lacks {', '.join(missing)}")
    for name, v in facs.items():  # a factor's values are compared, ordered and printed
        if not isinstance(v, str | int | float | bool):
            raise _bad(p, f"`{where}.factors.{name}` must be a number, a string or true/false, "
                          f"got {v!r}")  # fmt: skip
    files = _dict(p, r.get("files", {}), f"{where}.files")
    for stage, f in files.items():
        if not isinstance(f, str):
            raise _bad(p, f"`{where}.files.{stage}` must be a path, got {f!r}")
    note = r.get("note", "")
    if not isinstance(note, str):
        raise _bad(p, f"`{where}.note` must be a string, got {note!r}")
    return Row(member, seed, dict(facs), status, note, values, dict(files))
