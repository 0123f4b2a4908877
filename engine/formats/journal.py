"""The journal beside a surface file: ``FILE.h5.journal``, one JSON line per finished point.

Its first line is ``{"id": ...}``, the id of the file it belongs to; each other line is
``{"k": index, "v": {surface: value, ...}}`` or ``{"k": index, "error": "..."}``. The writer
appends and fsyncs (``Journal``); readers (``read_journal``) apply the lines that are exactly
a record of their file, drop a torn last line and skip any other with a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from engine.formats.constants import ATTR_ID
from engine.formats.files import open_side, write_error
from engine.jsonfile import open_regular

log = logging.getLogger(__name__)

__all__ = ["Journal", "journal_id", "read_journal"]


class Journal:
    """The append end of a journal, held by the one writer of its surface file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = open_side(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def append(self, data: bytes) -> None:
        """Append ``data`` (whole lines) and fsync; on a failed write (a full disk, a file
        size limit) cut the journal back to its last whole line and say so in one line."""
        end = os.fstat(self._fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as e:
            with contextlib.suppress(OSError):  # a half line would glue to the next one
                os.ftruncate(self._fd, end)
            raise write_error(self.path, e) from None

    def reset(self, file_id: str) -> None:
        """Empty the journal down to its header: every point is in the file ``file_id``."""
        try:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, json.dumps({ATTR_ID: file_id}).encode() + b"\n")
            os.fsync(self._fd)
        except OSError as e:
            raise write_error(self.path, e) from None

    def close(self) -> None:
        os.close(self._fd)


def journal_id(path: Path) -> str | None:
    """The id in a journal's header line, or None (no journal, or an unreadable one)."""
    try:
        with open_regular(path) as f:
            line = f.readline() if f is not None else b""
        return json.loads(line).get(ATTR_ID) if line.endswith(b"\n") else None
    except (OSError, ValueError, AttributeError):
        return None


def read_journal(
    path: Path, file_id: str, size: int, names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The journal's valid records, if it belongs to the file ``file_id`` (of ``size`` points
    and surfaces ``names``); a torn tail is dropped, any other bad line skipped with a warning."""
    return journal_records(journal_bytes(path), path, file_id, size, names)


def journal_bytes(path: Path) -> bytes:
    try:
        with open_regular(path) as f:
            return f.read() if f is not None else b""
    except (FileNotFoundError, IsADirectoryError):
        return b""
    except OSError as e:
        log.warning("%s cannot be read (%s); its points are not applied", path, e)
        return b""


def journal_records(
    data: bytes, path: Path, file_id: str, size: int, names: tuple[str, ...]
) -> list[dict[str, Any]]:
    lines = data.split(b"\n")[:-1]  # the part after the last newline is a torn write
    if not lines:
        return []
    header = _json_line(lines[0])
    if not isinstance(header, dict) or header.get(ATTR_ID) != file_id:
        return []  # left over from another file of the same name (or not a journal at all)
    records = []
    for n, line in enumerate(lines[1:], start=2):
        r = _json_line(line)
        why = _invalid_record(r, size, names)
        if why:
            log.warning("%s line %d skipped: %s", path, n, why)
        else:
            records.append(r)
    return records


def _json_line(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: a line nested thousands deep
        return None


def _invalid_record(r: Any, size: int, names: tuple[str, ...]) -> str:
    """Why a journal record cannot be applied ("" when it can): exactly ``{"k": index,
    "v": {surface: number, ...}}`` with every surface of the file, or ``{"k", "error"}``."""
    if not isinstance(r, dict):
        return "not a JSON object"
    k = r.get("k")
    if type(k) is not int:  # bool is an int to Python: true would index every point
        return "'k' is not an integer"
    if not 0 <= k < size:
        return f"point {k} is outside the grid's {size} points"
    if set(r) == {"k", "error"}:
        return "" if isinstance(r["error"], str) else "'error' is not text"
    if set(r) != {"k", "v"} or not isinstance(r["v"], dict):
        return "neither a point's values nor its error"
    v = r["v"]
    if set(v) != set(names):
        return f"its values are for {sorted(v)}, the file's surfaces are {sorted(names)}"
    bad = [n for n, x in v.items() if type(x) not in (int, float)]
    return f"'{bad[0]}' is not a number" if bad else ""
