"""Resolve user callables given as ``pkg.module:name`` or ``path/to/file.py:name``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

__all__ = ["IN_MEMORY", "is_callable_spec", "load_callable"]

# A value with this prefix (``model.arch``, ``data.dataset``, ``data.test_dataset``,
# ``data.loss``) stands for an object handed over in memory through the Python API
# (``tui_landscape.compute``): recorded so a file says what made it, never loaded from a config.
IN_MEMORY = "python:"


def is_callable_spec(spec: str) -> bool:
    return ":" in spec


def load_callable(spec: str, key: str) -> Callable[..., Any]:
    """Import ``spec`` and return the callable it names; errors name the config ``key``."""
    if spec.startswith(IN_MEMORY):
        raise ConfigError(
            f"`{key}` = {spec!r} records an object passed from Python (tui_landscape.compute); "
            "a config cannot load it: name a built-in, 'pkg.module:callable' or 'file.py:callable'."
        )
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise ConfigError(
            f"Expected `{key}` as 'pkg.module:callable' or 'file.py:callable', but got {spec!r}."
        )
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"`{key}`: file not found: {path}")
        mod_name = f"_tui_landscape_user_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        assert (
            module_spec is not None and module_spec.loader is not None
        )  # a .py path always has one
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module  # dataclasses and pickling look modules up here
        try:
            module_spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(mod_name, None)
            raise ConfigError(f"`{key}`: importing {path} failed: {type(e).__name__}: {e}") from e
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: modules beside the user
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            raise ConfigError(f"`{key}`: cannot import module {target!r} ({e}).") from None
        except Exception as e:
            raise ConfigError(
                f"`{key}`: importing {target!r} failed: {type(e).__name__}: {e}"
            ) from e
    fn = getattr(module, name, None)
    if fn is None or not callable(fn):
        raise ConfigError(f"`{key}`: {target!r} has no callable named {name!r}.")
    return fn
