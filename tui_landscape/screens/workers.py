"""How a screen reports a worker's error: one line, never a traceback and never silence.

Each screen has one ``Worker.StateChanged`` handler (harlequin's pattern) that passes the event
here: a worker that ended in an error, whatever its type, is said in a toast that names what
the worker was doing.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.screen import Screen
from textual.worker import Worker, WorkerState

from engine.errors import LandscapeError

__all__ = ["error_line", "failed"]


def error_line(e: BaseException) -> str:
    """An error as one line: a user's error as it says itself, anything else with its type
    (``OSError: [Errno 28] No space left on device``)."""
    text = " ".join(str(e).split())
    return text if isinstance(e, LandscapeError) else f"{type(e).__name__}: {text}"


def failed(screen: Screen, event: Worker.StateChanged, doing: Mapping[str, str]) -> str | None:
    """The line ``error: <what the worker did> failed: <why>`` for a worker that ended in an
    error, also shown as a toast; None for any other state. ``doing`` names the groups."""
    if event.state != WorkerState.ERROR:
        return None
    worker = event.worker
    error = worker.error if worker.error is not None else RuntimeError("unknown error")
    msg = f"error: {doing.get(worker.group, worker.group)} failed: {error_line(error)}"
    screen.notify(msg, severity="error", markup=False)
    return msg
