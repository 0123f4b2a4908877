"""Reading surface files, ours or the reference's: ``read_surface`` (the whole file with its
journal applied) and ``surface_info`` (a cheap look: attributes, shapes and the mask).

The layout is the reference code's, so its plotting scripts read our files, plus a completion
mask and provenance attributes (``docs/surface-format.md`` is the schema; ``layout`` validates
it in order). Every text read from a file has its control characters written out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine.errors import clean_text
from engine.formats.constants import (
    ATTR_CONFIG,
    ATTR_CREATED,
    ATTR_DIR_TYPE,
    ATTR_ID,
    ATTR_UPDATED,
    FAILED_ERROR,
    FAILED_INDEX,
    LAYOUT_OURS,
    LAYOUT_REFERENCE,
    PROJ_X,
    PROJ_Y,
    UNFINISHED,
    XCOORDS,
    YCOORDS,
)
from engine.formats.files import dir_file_of, journal_path, open_checked, text_of
from engine.formats.journal import journal_bytes, journal_records
from engine.formats.layout import (
    VLEN_STR,
    Layout,
    Root,
    check,
    damaged,
    done_mask,
    existing_file,
    open_low,
)
from engine.formats.provenance import Provenance
from engine.grid import Axis, Grid

__all__ = ["Surface", "SurfaceInfo", "read_surface", "surface_info"]


def _axis_from_coords(c: np.ndarray) -> Axis:
    return Axis(float(c[0]), float(c[-1]), len(c))


@dataclass
class Surface:
    """A surface file's contents: coordinates, values (NaN where unfinished), mask, provenance."""

    path: Path
    layout: str  # 'tui-landscape' or 'reference'
    x: np.ndarray
    y: np.ndarray | None
    values: dict[str, np.ndarray]
    completed: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)  # every root attribute, as read
    dir_file: str = ""
    failed: dict[int, str] = field(default_factory=dict)  # flat index -> error, unfinished

    @property
    def grid(self) -> Grid:
        return Grid(
            _axis_from_coords(self.x), None if self.y is None else _axis_from_coords(self.y)
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return self.completed.shape

    @property
    def n_done(self) -> int:
        return int(self.completed.sum())

    @property
    def provenance(self) -> Provenance:
        """Where it came from (``Provenance``): every field "" in a reference file."""
        return Provenance.from_attrs(self.attrs)


def read_surface(path: str | Path) -> Surface:
    """Open a surface file, ours or the reference's, validating it in order."""
    p = existing_file(path)
    # The journal before the file: a checkpoint in between folds the journal's points into
    # the file we then read, so the count never goes backwards (file first could meet the
    # old file and the just-emptied journal).
    journal = journal_bytes(journal_path(p))
    with open_checked(p) as f:
        try:
            surface = _read_open(p, f, check(p, Root(f.id)))
        except (OSError, KeyError, ValueError) as e:
            raise damaged(p, e) from None
    if surface.layout == LAYOUT_OURS and journal:
        # Points finished since the last checkpoint (a run going on, or one that was killed).
        records = journal_records(
            journal, journal_path(p), str(surface.attrs.get(ATTR_ID, "")),
            surface.completed.size, tuple(surface.values),
        )  # fmt: skip
        _apply(surface, records)
    return surface


def _apply(s: Surface, records: list[dict[str, Any]]) -> None:
    """Fold validated journal records (``read_journal``) into a surface read from its file."""
    flat_done = s.completed.reshape(-1)
    for r in records:
        k = r["k"]
        if "error" in r:
            s.failed[k] = clean_text(r["error"])
            continue
        for n, a in s.values.items():
            a.reshape(-1)[k] = r["v"][n]
        flat_done[k] = True
        s.failed.pop(k, None)


def _read_open(p: Path, f: h5py.File, lay: Layout) -> Surface:
    ours, shape, names = lay.ours, lay.shape, lay.names
    x = np.asarray(f[XCOORDS][()], dtype=np.float64).reshape(-1)
    y = np.asarray(f[YCOORDS][()], dtype=np.float64).reshape(-1) if YCOORDS in f else None
    # Flat order is meshgrid order in both layouts; the reference allocates (nx, ny),
    # so reshaping its flat data to (ny, nx) puts non-square grids right as well.
    raw = {n: np.asarray(f[n][()], dtype=np.float64).reshape(shape) for n in names}
    done = done_mask(Root(f.id), lay, raw)
    values = {n: np.where(done, a, np.nan) for n, a in raw.items()}
    if not ours:
        # Each reference array marks its own unfinished points too (a test split run later).
        values = {n: np.where(a == UNFINISHED, np.nan, a) for n, a in values.items()}
    attrs = {k: text_of(v) for k, v in f.attrs.items()}
    failed: dict[int, str] = {}
    if ours and FAILED_INDEX in f:
        errors = [text_of(e) for e in f[FAILED_ERROR][()]]
        failed = dict(zip((int(k) for k in f[FAILED_INDEX][()]), errors, strict=True))
    layout = LAYOUT_OURS if ours else LAYOUT_REFERENCE
    return Surface(p, layout, x, y, values, done, attrs, dir_file_of(f), failed)


@dataclass(frozen=True)
class SurfaceInfo:
    """What a surface file holds, read cheaply (``surface_info``): no surface values."""

    path: Path
    layout: str  # LAYOUT_OURS or LAYOUT_REFERENCE
    format_version: int | None  # None for the reference's layout
    shape: tuple[int, ...]  # (nx,) or (ny, nx)
    names: tuple[str, ...]  # the surfaces present, in ``surface_names`` order
    done: int  # finished points, the journal's included
    failed: int  # points that raised on every try and are still unfinished
    created: str  # ISO time, "" where the file does not say (reference files)
    updated: str
    dir_type: str  # "weights", "states", or "" where the file does not say
    has_path: bool  # holds a projected training path (a PCA surface)
    journaled: int = 0  # records applied from the journal: points since the last checkpoint
    config: str = ""  # the stored config (TOML), "" where the file has none (reference files)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def total(self) -> int:
        return math.prod(self.shape)


def surface_info(path: str | Path) -> SurfaceInfo:
    """Look at a surface file without reading its surfaces: one open, attributes and shapes.

    The arrays it reads are the completion mask (ours: ``completed``, one byte a point; the
    reference's: its first loss, where -1 marks unfinished points), because no attribute
    holds the count and adding one would change the files, and ``failed_index`` where a
    point failed. Our journal, when one is left beside the file (a run going on or killed),
    is parsed for the points it adds: it holds only the points since the last checkpoint.
    Raises ``LandscapeError`` with one line for a missing, non-HDF5, foreign or damaged file.
    """
    p = existing_file(path)
    jpath = journal_path(p)
    journal = journal_bytes(jpath)  # before the file, as read_surface
    with open_low(p) as gid:
        try:
            root = Root(gid)
            lay = check(p, root)
            done = done_mask(root, lay).reshape(-1)
            failed = set(lay.failed)
            info = dict(
                created=str(root.attr(ATTR_CREATED, "", VLEN_STR)),
                updated=str(root.attr(ATTR_UPDATED, "", VLEN_STR)),
                dir_type=str(root.attr(ATTR_DIR_TYPE, "", VLEN_STR)),
                has_path=root.has(PROJ_X) and root.has(PROJ_Y),
                config=str(root.attr(ATTR_CONFIG, "", VLEN_STR)) if lay.ours else "",
            )
            # The id is needed only to accept a journal; most files have none.
            file_id = str(root.attr(ATTR_ID, "", VLEN_STR)) if lay.ours and journal else ""
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise damaged(p, e) from None
    journaled = 0
    if lay.ours and file_id:
        records = journal_records(journal, jpath, file_id, done.size, lay.names)
        journaled = len(records)
        for r in records:
            k = r["k"]
            if "error" in r:
                failed.add(k)
            else:
                done[k] = True
                failed.discard(k)
    layout = LAYOUT_OURS if lay.ours else LAYOUT_REFERENCE
    n_done = int(done.sum())
    return SurfaceInfo(
        p, layout, lay.version, lay.shape, lay.names, n_done, len(failed), **info,
        journaled=journaled,
    )  # fmt: skip
