"""Errors a user can cause, each carrying the process exit code it should end with.

The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``;
anything else is a bug and keeps its traceback.
"""


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
