"""Small JSON files this project writes and reads back (a study's side files, a training's
outcome, the batch-size cache), read as files anyone may have put there.

A plain ``path.read_text()`` hangs on a FIFO in the file's place and fills memory from a link
to ``/dev/zero``; JSON nested thousands deep raises ``RecursionError``. Here the file is
opened without blocking, must be a regular file of at most ``max_bytes``, and every such
fault is a ``ValueError`` (or the ``OSError`` of opening it) naming it. ``read_regular`` is
that careful read alone, for the user's own files too (a config).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["MAX_BYTES", "read_json", "read_json_object", "read_regular"]

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


def read_regular(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file at ``path`` (a config, a side file); ``OSError`` where it
    cannot be opened, ``ValueError`` where it is not a regular file (a FIFO, a device) or is
    larger than ``max_bytes``."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        chunks, left = [], max_bytes + 1
        while left > 0 and (chunk := os.read(fd, left)):  # a read may return less
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
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
