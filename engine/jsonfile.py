"""Small JSON files this project writes and reads back (a study's side files, a training's
outcome, the batch-size cache), read as files anyone may have put there.

A plain ``path.read_text()`` hangs on a FIFO in the file's place and fills memory from a link
to ``/dev/zero``; JSON nested thousands deep raises ``RecursionError``. Here the file is
opened without blocking, must be a regular file of at most ``max_bytes``, and every such
fault is a ``ValueError`` (or the ``OSError`` of opening it) naming it. ``read_regular`` is
that careful read alone, for the user's own files too (a config).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["MAX_BYTES", "open_regular", "read_json", "read_json_object", "read_regular"]

MAX_BYTES = 1 << 20  # our side files are a few kB; a larger file is not one of ours


def read_json(path: Path, max_bytes: int = MAX_BYTES) -> Any:
    """The JSON value of the regular file at ``path``; ``OSError`` where it cannot be opened,
    ``ValueError`` (naming why) where it is not a regular file, is larger than ``max_bytes``
    or is not JSON."""
    data = read_regular(path, max_bytes)
    try:
        return json.loads(data)
    except RecursionError as e:
        raise ValueError(f"JSON nested too deep ({e})") from None


@contextlib.contextmanager
def open_regular(path: Path) -> Iterator[BinaryIO | None]:
    """``path`` opened to read, None where it is not a regular file (a FIFO, a device, a
    folder); ``OSError`` where it cannot be opened. Opened without blocking: a plain open of a
    FIFO planted there waits for a writer that never comes."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    with os.fdopen(os.open(path, flags), "rb") as f:
        yield f if stat.S_ISREG(os.fstat(f.fileno()).st_mode) else None


def read_regular(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file at ``path`` (a config, a side file); ``OSError`` where it
    cannot be opened, ``ValueError`` where it is not a regular file (a FIFO, a device) or is
    larger than ``max_bytes``."""
    with open_regular(path) as f:
        if f is None:
            raise ValueError("not a regular file")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes} bytes")
    return data


def read_json_object(path: Path, max_bytes: int = MAX_BYTES) -> dict[str, Any] | None:
    """``read_json``'s object, None where there is none: absent, unreadable, half-written (a
    crash mid-write), not an object (written by hand) or any fault ``read_json`` names; the
    caller computes it again."""
    try:
        data = read_json(path, max_bytes)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
