"""Where a surface came from, typed: written and read here, as cooler's ``write_info``.

A run hands the writer a ``Provenance`` (its resolved config, the directions' hash and type,
the device, the batch size); the writer stamps the rest (format version, tool version, times,
the file's id) and readers get it back from ``Surface.provenance``. Nothing else spells these
attribute names. A file that lacks one (a reference file, an old one) reads it as "" (None for
the version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from engine.formats.constants import (
    ATTR_BATCH_SIZE,
    ATTR_CONFIG,
    ATTR_CREATED,
    ATTR_DEVICE,
    ATTR_DIR_SHA256,
    ATTR_DIR_TYPE,
    ATTR_FORMAT_VERSION,
    ATTR_ID,
    ATTR_TOOL_VERSION,
    ATTR_UPDATED,
)

__all__ = ["Provenance"]

# Field -> root attribute. The first five are the run's to give; the writer stamps the rest.
_ATTRS = {
    "config": ATTR_CONFIG,
    "dir_hash": ATTR_DIR_SHA256,
    "dir_type": ATTR_DIR_TYPE,
    "device": ATTR_DEVICE,
    "batch_size": ATTR_BATCH_SIZE,
    "tool_version": ATTR_TOOL_VERSION,
    "created": ATTR_CREATED,
    "updated": ATTR_UPDATED,
    "id": ATTR_ID,
}
_GIVEN = ("config", "dir_hash", "dir_type", "device", "batch_size")


@dataclass(frozen=True)
class Provenance:
    """A surface file's provenance. A run gives the first five fields; the rest are the
    writer's (``SurfaceWriter.create`` ignores them) and are read back from the file."""

    config: str = ""  # the resolved config as TOML (``tui-landscape info FILE --config``)
    dir_hash: str = ""  # ``sha256:`` of the directions' shapes and float32 bytes
    dir_type: str = ""  # ``weights`` or ``states``
    device: str = ""  # the device(s) the run started on
    batch_size: str = ""  # "256", or "256 (auto, probe)": what data.batch_size = "auto" chose
    tool_version: str = ""  # the tui-landscape that created the file
    created: str = ""  # ISO 8601 UTC
    updated: str = ""  # ISO 8601 UTC, the last checkpoint
    id: str = ""  # random hex id of the file; its journal's first line names it
    format_version: int | None = None  # None for the reference's layout

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name != "format_version" and not isinstance(v, str):
                raise TypeError(f"Expected Provenance.{f.name} to be text, but got {v!r}.")

    def given_attrs(self) -> dict[str, str]:
        """The run's attributes to write, the empty ones left out."""
        return {_ATTRS[k]: v for k in _GIVEN if (v := getattr(self, k))}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Provenance:
        """From a file's root attributes (already decoded): what is absent reads as ""."""
        values = {k: _text(attrs.get(a)) for k, a in _ATTRS.items()}
        version = attrs.get(ATTR_FORMAT_VERSION)
        try:
            number = None if version is None else int(version)
        except (TypeError, ValueError):
            number = None
        return cls(**values, format_version=number)


def _text(v: Any) -> str:
    return "" if v is None else v if isinstance(v, str) else str(v)
