"""A config saved as TOML from the app: only the keys that differ from the defaults, and an
existing file edited in place (tomlkit), its comments, order and layout kept.

Apart from ``engine.config`` because editing a user's file in place is its own concern, and
tomlkit is needed only here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config import Config, config_to_dict
from engine.errors import ConfigError
from engine.tomlfile import read_toml_text

__all__ = ["config_changes", "save_config"]


def config_changes(cfg: Config) -> dict[str, Any]:
    """The keys whose values differ from the defaults, as nested plain dicts (empty sections
    dropped): what a saved config needs to say, since the rest reads back as the defaults."""
    now, default = config_to_dict(cfg), config_to_dict(Config())
    out: dict[str, Any] = {}
    for sec, keys in now.items():
        changed = {k: v for k, v in keys.items() if v != default[sec][k]}
        if changed:
            out[sec] = changed
    return out


def save_config(cfg: Config, path: str | Path, *, full: bool = False) -> None:
    """Write ``cfg`` to ``path`` as TOML: every key if ``full``, else those that differ from
    the defaults. An existing file is edited in place with tomlkit, so its comments, order
    and layout stay: only keys whose values change are rewritten, and keys it lacks added."""
    import tomlkit  # only where a config is saved: the commands never need it

    p = Path(path)
    want = config_to_dict(cfg) if full else config_changes(cfg)
    if p.exists():
        try:  # a FIFO there blocked the read (and then the write): refused as not a file
            doc = tomlkit.parse(read_toml_text(p))
        except (OSError, ValueError, tomlkit.exceptions.TOMLKitError) as e:
            raise ConfigError(f"Cannot edit {p}: {e}") from None
    else:
        doc = tomlkit.document()
    had = doc.unwrap()  # plain values, to compare with ours
    if not full:  # a key the file sets must follow the config, default or not
        now = config_to_dict(cfg)
        for sec, table in had.items():
            if sec in now and isinstance(table, dict):
                for k in table.keys() & now[sec].keys():
                    want.setdefault(sec, {})[k] = now[sec][k]
    for sec, keys in want.items():
        old = had.get(sec, {})
        for k, v in keys.items():
            if k in old and old[k] == v:
                continue  # unchanged (1 and 1.0 too): the line stays as the user wrote it
            if sec not in doc:
                doc.add(sec, tomlkit.table())
            doc[sec][k] = v  # replacing a value keeps the comment at the end of its line
    p.write_text(tomlkit.dumps(doc), encoding="utf-8")
