"""What the file browser lists: a folder's surface files and study folders, each as a row.

No Textual here: the browser (``screens.browser``) lists a folder in a worker with
``list_folder`` and draws the rows; ``benchmarks/bench_browser.py`` times the same calls. A
surface file is described from ``surface_info`` (attributes and shapes, no surfaces), a study
folder from its table. Each row holds short cells ("ours 2D", "running 57%", "unreadable") and
a status line's text that says in full what the file holds, or why it cannot be read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import LandscapeError
from engine.formats import LAYOUT_OURS, clean_text, lock_holder, surface_info
from engine.formats.constants import DIRECTIONS_SUFFIX

__all__ = [
    "RUNNING",
    "STUDY",
    "UNREADABLE",
    "FileRow",
    "ago",
    "config_cells",
    "describe_file",
    "describe_study",
    "list_folder",
    "study_folders",
    "surface_files",
    "unreadable_reason",
]

UNREADABLE = "unreadable"
RUNNING = "running"  # how the done column starts while a run writes the file
STUDY = "study"  # the kind of a study folder's row


@dataclass(frozen=True)
class FileRow:
    """One line of the browser: a file, its cells, and the status line's text for it."""

    path: Path
    cells: tuple[str, str, str, str, str]  # kind, grid, surfaces, done, created (ISO time)
    detail: str = ""  # the file's name and what it holds in full, or why it cannot be read
    # From the stored config, shown by a wide browser (its WIDE): model, loss, direction kind.
    extra: tuple[str, str, str] = ("", "", "")


def surface_files(folder: Path) -> list[Path]:
    """The ``.h5`` files of a folder, sorted, without the direction files runs write beside."""
    return sorted(p for p in folder.glob("*.h5") if not p.name.endswith(DIRECTIONS_SUFFIX))


def _mtime(p: Path) -> str:
    try:
        return dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC).isoformat(timespec="seconds")
    except OSError:
        return ""


def unreadable_reason(e: LandscapeError, p: Path) -> str:
    """A reading error as one line that names the file by its name, not its path."""
    return clean_text(" ".join(str(e).split())).replace(clean_text(str(p)), p.name)


def describe_file(p: Path) -> FileRow:
    """A file's row: (kind, grid, surfaces, completion, created), or 'unreadable' and why."""
    try:
        info = surface_info(p)
    except LandscapeError as e:
        return FileRow(p, (UNREADABLE, "", "", "", _mtime(p)), unreadable_reason(e, p))
    nx = info.shape[-1]
    grid = f"{nx}" + (f" x {info.shape[0]}" if info.ndim == 2 else "")
    kind = "ours" if info.layout == LAYOUT_OURS else "ref"
    pct = f"{100 * info.done / info.total:.0f}%"
    if lock_holder(p) is not None:
        pct = f"{RUNNING} {pct}"
    created = info.created or _mtime(p)  # the reference's files do not say
    names = ", ".join(info.names)
    failed = f", {info.failed} failed" if info.failed else ""
    layout = "tui-landscape" if info.layout == LAYOUT_OURS else "reference"
    # The likeliest question first: a narrow status line cuts the end.
    detail = (
        f"{clean_text(p.name)}: {info.done}/{info.total} points done{failed}; {names}; "
        f"{'created' if info.created else 'modified'} {created}; {layout} layout"
    )
    return FileRow(p, (f"{kind} {info.ndim}D", grid, names, pct, created), detail,
                   config_cells(info.config))  # fmt: skip


def config_cells(config: str) -> tuple[str, str, str]:
    """The model, loss and direction kind a stored config names ("" where it says nothing:
    a reference file, or a config that cannot be read)."""
    import tomllib

    try:
        c = tomllib.loads(config) if config else {}
    except tomllib.TOMLDecodeError:
        return ("", "", "")

    def get(section: str, key: str) -> str:
        table = c.get(section)
        value = table.get(key) if isinstance(table, dict) else None
        return value if isinstance(value, str) else ""

    # A model handed over in Python is "python:<module>.<Class>@<digest>": its class says it.
    model = get("model", "arch").removeprefix("python:").split("@")[0].rsplit(".", 1)[-1]
    loss = get("data", "loss") or ("crossentropy" if "data" in c else "")
    loss = loss.removeprefix("python:").rsplit(":", 1)[-1]
    return (model, loss, get("directions", "kind"))


def study_folders(folder: Path) -> list[Path]:
    """The study folders in ``folder`` (each holds a study's table), sorted."""
    from engine.study.table import is_study_folder

    try:
        return sorted(p for p in folder.iterdir() if is_study_folder(p))
    except OSError:
        return []


def describe_study(p: Path) -> FileRow:
    """A study folder's row: its members, factors and how many reached a minimizer."""
    from engine.study.table import TABLE_NAME, read_table

    try:
        t = read_table(p)
    except LandscapeError as e:
        return FileRow(p, (UNREADABLE, "", "", "", _mtime(p)), unreadable_reason(e, p))
    ok, n = len(t.ok_rows()), len(t.rows)
    factors = ", ".join(t.factors)
    detail = (
        f"{clean_text(p.name)}/: study {clean_text(t.name)}, {ok} of {n} members reached a "
        f"minimizer; factors {clean_text(factors) or '-'}; enter lists its members"
    )
    return FileRow(p, (STUDY, f"{n}", factors, f"{ok}/{n} ok", _mtime(p / TABLE_NAME)), detail)


def list_folder(folder: Path, cancelled: Callable[[], bool] = lambda: False) -> list[FileRow]:
    """Every surface file of ``folder`` described, then its study folders; stops early once
    ``cancelled()`` is true."""
    rows = []
    for p in surface_files(folder):
        if cancelled():
            break
        rows.append(describe_file(p))
    for p in study_folders(folder):
        if cancelled():
            break
        rows.append(describe_study(p))
    return rows


def ago(when: str, now: dt.datetime) -> str:
    """An ISO time as a short age: 'just now', '3m ago', '2h ago', '5d ago', then its date
    (in the time's own offset, as the file wrote it); text that is no time, as it is."""
    try:
        t = dt.datetime.fromisoformat(when)
    except ValueError:
        return when
    if t.tzinfo is None:
        t = t.astimezone()  # a naive time is the local clock's
    s = (now - t).total_seconds()
    if s < -60 or s >= 7 * 86400:  # a clock ahead of ours, or a week old: the date
        return t.date().isoformat()
    if s < 60:
        return "just now"
    if s < 3600:
        return f"{s // 60:.0f}m ago"
    if s < 86400:
        return f"{s // 3600:.0f}h ago"
    return f"{s // 86400:.0f}d ago"
