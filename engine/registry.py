"""A named choice as a registry (timm's ``register_model``): one table per kind of choice.

The engine's choices among named things (losses, direction norms, direction kinds) are each
one ``Registry``: entries are added where they are written, with ``register``, the config's
accepted values are ``names()``, and ``get`` refuses an unknown name in one line that lists
the valid ones. No torch here: the config reads the names at import, and the config must
stay light (the app builds its form before torch loads).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from engine.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind of choice by name, in the order they were registered.

    ``what`` names the choice in errors ("loss", "direction norm"); ``key`` the config key
    that takes it ("data.loss").
    """

    def __init__(self, what: str, key: str) -> None:
        self.what, self.key = what, key
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a second entry of one name warns and wins."""
        if name in self._entries:
            warnings.warn(f"{self.what} {name!r} registered twice", stacklevel=3)
        self._entries[name] = entry
        return entry

    def register(self, name: str, make: Callable[[Callable], T]) -> Callable[[Callable], Callable]:
        """A decorator: ``make(fn)`` is the entry stored under ``name``; ``fn`` is returned."""

        def deco(fn: Callable) -> Callable:
            self.add(name, make(fn))
            return fn

        return deco

    def remove(self, name: str) -> None:
        """Drop ``name`` (tests register a temporary entry and take it away again)."""
        self._entries.pop(name, None)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def get(self, name: str) -> T:
        """The entry of ``name``; an unknown name is a ``ConfigError`` listing the valid ones."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(self.unknown(name)) from None

    def unknown(self, name: object, extra: str = "") -> str:
        """The one-line refusal of ``name`` (``extra``: other accepted forms, after the list)."""
        return (
            f"Expected `{self.key}` to be one of {', '.join(map(repr, self._entries))}"
            f"{extra}, but got {name!r}."
        )

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
