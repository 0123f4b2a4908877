"""TOML files as the user writes them: read safely (a regular file of bounded size, a byte
order mark allowed) and parsed with one clear error. Configs, study files and saved configs
all read here."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.jsonfile import read_regular

__all__ = ["TOML_MAX_BYTES", "parse_toml", "read_toml_file", "read_toml_text"]

TOML_MAX_BYTES = 16 << 20  # a config or a study file is a few kB: a larger one is not one


def read_toml_text(path: Path) -> str:
    """The text of the TOML file at ``path``. A FIFO or a link to /dev/zero in its place
    blocked or read without end, so only a regular file of at most ``TOML_MAX_BYTES`` is
    read; utf-8-sig, since the byte order mark some Windows editors write was a TOML error at
    line 1. Raises ``OSError`` or ``ValueError`` (``UnicodeDecodeError`` among them)."""
    return read_regular(path, TOML_MAX_BYTES).decode("utf-8-sig")


def parse_toml(text: str, what: str) -> dict[str, Any]:
    """``tomllib.loads`` with one clear error, also for nesting too deep to parse (tomllib
    recurses: a file nested thousands deep raised RecursionError)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{what} is not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{what} is not valid TOML: nested too deeply") from None


def read_toml_file(path: Path, what: str) -> tuple[str, dict[str, Any]]:
    """The text of a TOML file and its parsed tables; one line naming ``what`` (e.g. "Config
    file") where it is missing, unreadable or not TOML."""
    try:
        text = read_toml_text(path)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"Cannot read {what.lower()} {path}: {e}") from None
    return text, parse_toml(text, f"{what} {path}")
