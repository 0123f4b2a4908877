"""Small JSON files this project writes and reads back (a study's side files, a training's
outcome, the batch-size cache), read as files anyone may have put there.

A plain ``path.read_text()`` hangs on a FIFO in the file's place and fills memory from a link
to ``/dev/zero``; JSON nested thousands deep raises ``RecursionError``. Here the file is
opened without blocking, must be a regular file of at most ``max_bytes``, and every such
fault is a ``ValueError`` (or the ``OSError`` of opening it) naming it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["MAX_BYTES", "read_json", "read_json_object"]

MAX_BYTES = 1 << 20  # our side files are a few kB; a larger file is not one of ours


def read_json(path: Path, max_bytes: int = MAX_BYTES) -> Any:
    """The JSON value of the regular file at ``path``; ``OSError`` where it cannot be opened,
    ``ValueError`` (naming why) where it is not a regular file, is larger than ``max_bytes``
    or is not JSON."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = os.read(fd, max_bytes + 1)  # a regular file's read is whole
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes} bytes")
    try:
        return json.loads(data)
    except RecursionError as e:
        raise ValueError(f"JSON nested too deep ({e})") from None


def read_json_object(path: Path, max_bytes: int = MAX_BYTES) -> dict[str, Any] | None:
    """``read_json``'s object, None where there is none: absent, unreadable, half-written (a
    crash mid-write), not an object (written by hand) or any fault ``read_json`` names; the
    caller computes it again."""
    try:
        data = read_json(path, max_bytes)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
