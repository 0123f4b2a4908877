"""Errors a user can cause, each carrying the process exit code it should end with.

The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``;
anything else is a bug and keeps its traceback. ``clean_text`` lives here, importable without
numpy or h5py, because every message that quotes a file goes through it.
"""

from __future__ import annotations

import re


class LandscapeError(Exception):
    """A run-time problem caused by the user's input (exit code 1)."""

    exit_code = 1


def describe(e: BaseException) -> str:
    """``Type: first line of the message``: a foreign exception as part of one error line."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


class ConfigError(LandscapeError):
    """A usage problem: bad config, bad grid spec, unknown name, missing input file (exit 2)."""

    exit_code = 2


# C0 controls but tab and newline, DEL, C1 controls: what moves a terminal's cursor, retitles
# its window or starts an escape sequence when a file's text is printed.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(s: str) -> str:
    """``s`` with its control characters written out (``\\x1b``): every string read from a
    file goes through here, so no command or widget can show a raw escape sequence."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


class DataSetError(LandscapeError):
    """A data set that is wrong in itself (an item that raises, more items than its len()
    says): the same at every grid point, so a run stops at once instead of recording each
    point as failed."""
