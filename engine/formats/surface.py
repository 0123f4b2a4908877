"""Surface files (HDF5): writing, reading, and a cheap look at what a file holds.

The layout is the reference code's, so its plotting scripts read our files, plus
a completion mask and provenance attributes (see ``docs/surface-format.md``):

- ``xcoordinates`` (nx,) float64; ``ycoordinates`` (ny,) float64 for 2D
- ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc`` and any other metric
  ``<split>_<name>`` (``surface_names``): (nx,) or (ny, nx) float64 with ``Z[i, j]`` at
  ``(x[j], y[i])``; -1 at unfinished points
- ``completed``: uint8 mask of the same shape (1 = finished; a loss of 0 is finished)
- ``dir_file``: scalar string, the direction file's path
- ``failed_index`` (n,) int64 and ``failed_error`` (n,) strings: points whose evaluation
  raised on every try (they stay unfinished, so a resume tries them again)
- root attributes: ``format``, ``format_version``, ``tool_version``, ``created``,
  ``updated``, ``config`` (resolved TOML), ``dir_file_sha256``, ``id``

The names live in ``engine.formats.constants``.

Crash safety: the HDF5 file is never modified in place. Finished points are appended to a
journal beside it (``FILE.h5.journal``, one JSON line per point, fsynced at least every
``compute.flush_seconds``); at checkpoints the journal is folded into a fresh file (the
datasets copied, the surfaces written anew, so the size stays that of one file) that is
renamed over it, then the journal is emptied. A process killed at any moment leaves the last
good file plus a journal whose torn last line, if any, is ignored; any other journal line that
is not a well-formed record of this file's points and surfaces is skipped with a warning.

Hostile files: side files (lock, journal, temporary copy) are opened without following
symbolic links, the lock is taken before anything about the output is read, and every text
read from a file has its control characters written out (``clean_text``).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import functools
import json
import logging
import math
import os
import re
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine import __version__
from engine.errors import ConfigError, LandscapeError, clean_text
from engine.formats.constants import (
    ATTR_CONFIG,
    ATTR_CREATED,
    ATTR_DIR_TYPE,
    ATTR_FORMAT,
    ATTR_FORMAT_VERSION,
    ATTR_ID,
    ATTR_TOOL_VERSION,
    ATTR_UPDATED,
    DIR_FILE,
    DIRECTIONS_SUFFIX,
    FAILED_ERROR,
    FAILED_INDEX,
    HESSIAN_NAMES,
    JOURNAL_SUFFIX,
    LAYOUT_OURS,
    LAYOUT_REFERENCE,
    LOCK_SUFFIX,
    MASK,
    METRIC_NAME,
    PROJ_X,
    PROJ_Y,
    SURFACE_FORMAT,
    SURFACE_FORMAT_VERSION,
    SURFACE_NAMES,
    SURFACE_SPLITS,
    TMP_SUFFIX,
    UNFINISHED,
    XCOORDS,
    YCOORDS,
)
from engine.grid import Axis, Grid

log = logging.getLogger(__name__)

__all__ = [
    "HESSIAN_NAMES",
    "SURFACE_NAMES",
    "Surface",
    "SurfaceInfo",
    "SurfaceWriter",
    "acquire_lock",
    "clean_text",
    "directions_path",
    "journal_path",
    "lock_holder",
    "read_journal",
    "read_surface",
    "removable_sidecars",
    "sidecars",
    "surface_info",
    "surface_names",
]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


_METRIC = re.compile(METRIC_NAME)
_KNOWN = (*SURFACE_NAMES, *HESSIAN_NAMES)


def surface_names(names: Iterable[str]) -> tuple[str, ...]:
    """The surface names among ``names``, in the one order every reader and view uses.

    A surface is a known name (``SURFACE_NAMES``, ``HESSIAN_NAMES``) or a loss function's
    metric ``<split>_<name>`` (``METRIC_NAME``); nothing else is (``completed``,
    ``proj_xcoord``, ...). Per split, train then test: its loss, its accuracy, then its other
    metrics sorted; the Hessian's names last, in their order.
    """
    keys = {n: k for n in names if (k := _surface_key(n)) is not None}
    return tuple(sorted(keys, key=keys.__getitem__))


def _surface_key(name: object) -> tuple[int, int, str] | None:
    if name in HESSIAN_NAMES:
        return (len(SURFACE_SPLITS), HESSIAN_NAMES.index(name), "")
    if not isinstance(name, str) or _METRIC.fullmatch(name) is None:
        return None
    split, metric = name.split("_", 1)
    return (SURFACE_SPLITS.index(split), {"loss": 0, "acc": 1}.get(metric, 2), metric)


def _writable_names(names: Sequence[str]) -> list[str]:
    """``names`` in ``surface_names`` order; anything else is a caller's bug (ValueError)."""
    ordered = list(surface_names(names))
    if not names or len(ordered) != len(names):
        raise ValueError(
            f"Expected `names` to be distinct surface names ({', '.join(_KNOWN)} or "
            f"'{METRIC_NAME}'), but got {list(names)!r}."
        )
    return ordered


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
    attrs: dict[str, Any] = field(default_factory=dict)
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


def read_surface(path: str | Path) -> Surface:
    """Open a surface file, ours or the reference's, validating it in order."""
    p = _existing_file(path)
    # The journal before the file: a checkpoint in between folds the journal's points into
    # the file we then read, so the count never goes backwards (file first could meet the
    # old file and the just-emptied journal).
    journal = _journal_bytes(journal_path(p))
    with _open_checked(p) as f:
        try:
            surface = _read_open(p, f, _check(p, _Root(f.id)))
        except (OSError, KeyError, ValueError) as e:
            raise _damaged(p, e) from None
    if surface.layout == LAYOUT_OURS and journal:
        # Points finished since the last checkpoint (a run going on, or one that was killed).
        records = _journal_records(
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


@dataclass(frozen=True)
class _Layout:
    """What validation found: whose layout, its version, the grid's shape, the surfaces."""

    ours: bool
    version: int | None
    shape: tuple[int, ...]
    names: tuple[str, ...]
    failed: tuple[int, ...] = ()  # the failed points' flat indices (ours), checked in range


def _existing_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"surface file not found: {p}")
    if not p.is_file():
        raise ConfigError(f"not a file: {p}")
    return p


@contextmanager
def _open_checked(p: Path) -> Iterator[h5py.File]:
    """Open ``p`` read-only, or say in one line that it is not HDF5 or cannot be opened."""
    try:
        f = _open(p, "r")
    except OSError as e:
        # Asked only on failure, so a good file is opened once.
        if not _is_hdf5(p):
            raise LandscapeError(f"{p} is not an HDF5 file") from None
        raise LandscapeError(f"{p} cannot be opened as HDF5 (truncated or corrupt?): {e}") from None
    with f:
        yield f


@contextmanager
def _open_low(p: Path) -> Iterator[h5py.h5g.GroupID]:
    """``_open_checked`` through the low-level API (no ``h5py.File``: a third of the cost)."""
    try:
        fid = h5py.h5f.open(os.fsencode(p), h5py.h5f.ACC_RDONLY, _fapl())
    except OSError as e:
        if not _is_hdf5(p):
            raise LandscapeError(f"{p} is not an HDF5 file") from None
        raise LandscapeError(f"{p} cannot be opened as HDF5 (truncated or corrupt?): {e}") from None
    try:
        yield h5py.h5g.open(fid, b"/")
    finally:
        fid.close()


@functools.cache
def _fapl() -> h5py.h5p.PropFAID:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_file_locking(False, True)  # as ``_open``: a run's writer may hold the file
    # HDF5 refuses to open a file a second time in one process with another close degree:
    # h5py.File uses 'weak', so a strong degree here failed while another thread (the app's
    # watch, a test) held the file open. 'default' matches whichever degree it is open with.
    fapl.set_fclose_degree(h5py.h5f.CLOSE_DEFAULT)
    return fapl


def _is_hdf5(p: Path) -> bool:
    try:
        return bool(h5py.is_hdf5(p))
    except OSError:
        return True  # unreadable: let the open's own error speak


def _damaged(p: Path, e: BaseException) -> LandscapeError:
    return LandscapeError(f"{p} is damaged or incomplete: {type(e).__name__}: {e}")


class _Root:
    """The root group of an open file through h5py's low-level API: names, shapes, scalars.

    ``surface_info`` reads hundreds of files for the browser; h5py's high-level objects cost
    several times as much per attribute read, and that was most of its time. The root's
    links are listed once, and a file without attributes (the reference's) is asked none.
    """

    def __init__(self, gid: h5py.h5g.GroupID) -> None:
        self._g = gid
        names: list[bytes] = []
        gid.links.iterate(names.append)  # append returns None: the iteration goes on
        self.names = frozenset(n.decode() for n in names)
        self._has_attrs = h5py.h5o.get_info(gid).num_attrs > 0

    def has(self, name: str) -> bool:
        return name in self.names

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(h5py.h5d.open(self._g, name.encode()).shape)

    def size(self, name: str) -> int:
        return math.prod(self.shape(name))

    def numeric(self, name: str) -> bool:
        """Whether ``name`` is a dataset of numbers held in this file: a link (to another file
        or elsewhere in this one) is not followed, a group or text is not a surface."""
        b = name.encode()
        if self._g.links.get_info(b).type != h5py.h5l.TYPE_HARD:
            return False
        try:
            return h5py.h5d.open(self._g, b).dtype.kind in "iuf"
        except KeyError:  # a group, or a datatype stored under the name
            return False

    def read(self, name: str) -> np.ndarray:
        d = h5py.h5d.open(self._g, name.encode())
        out = np.empty(d.shape, dtype=d.dtype)
        d.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
        return out

    def attr(self, name: str, default: Any = None, dtype: Any = None) -> Any:
        """A scalar attribute (bytes decoded), or ``default`` where absent or not a scalar.

        ``dtype`` is the type to read into (HDF5 converts): without it, that of the file.
        """
        if not self._has_attrs:
            return default
        try:
            a = h5py.h5a.open(self._g, name.encode())
        except KeyError:
            return default
        if a.shape != ():
            return default
        out = np.empty((), dtype=dtype or a.dtype)
        try:
            a.read(out)
        except (TypeError, OSError):  # not convertible (a fixed-length string): as stored
            out = np.empty((), dtype=a.dtype)
            a.read(out)
        return text_of(out[()])


# Our string attributes are variable-length: reading into this type skips building the
# file's dtype per read. Integers are read as int64 for the same reason.
_VLEN_STR = h5py.string_dtype()


def _check(p: Path, root: _Root) -> _Layout:
    """Validate in order, from attributes and shapes only: ours or the reference's, which
    version, the coordinates, at least one surface, every surface the grid's size."""
    try:
        ours = root.attr(ATTR_FORMAT, dtype=_VLEN_STR) == SURFACE_FORMAT
        version = int(root.attr(ATTR_FORMAT_VERSION, 0, np.int64)) if ours else None
        if version is not None and version > SURFACE_FORMAT_VERSION:
            raise LandscapeError(
                f"{p} has surface format version {version}; this tui-landscape "
                f"({__version__}) reads up to {SURFACE_FORMAT_VERSION}: upgrade it"
            )
        if not root.has(XCOORDS):
            raise LandscapeError(f"{p} is not a surface file (no '{XCOORDS}' dataset)")
        nx = root.size(XCOORDS)
        shape = (nx,) if not root.has(YCOORDS) else (root.size(YCOORDS), nx)
        # A known name must be a surface (a bad one is a damaged file); any other dataset
        # named like a metric is one only if it is numbers of the grid's size (else not ours).
        size = math.prod(shape)
        names = tuple(
            n
            for n in surface_names(root.names)
            if n in _KNOWN or (root.numeric(n) and root.size(n) == size)
        )
        if not names:
            raise LandscapeError(
                f"{p} holds no surface (expected one of {', '.join(SURFACE_NAMES)}, "
                "or another train_ or test_ metric)"
            )
        for n in names:
            if root.size(n) != math.prod(shape):
                raise LandscapeError(
                    f"{p}: '{n}' has shape {root.shape(n)}, the grid needs {shape}"
                )
        for name in (XCOORDS, YCOORDS) if len(shape) == 2 else (XCOORDS,):
            c = root.read(name).astype(np.float64, copy=False).reshape(-1)
            if c.size == 0 or not (np.isfinite(c).all() and (np.diff(c) > 0).all()):
                raise _unreadable(p, f"its {name} are not finite and strictly increasing")
        k = np.zeros(0, dtype=np.int64)
        if ours and root.has(FAILED_INDEX):
            k = root.read(FAILED_INDEX).reshape(-1)
            inside = k.size == 0 or (k.min() >= 0 and k.max() < math.prod(shape))
            if k.dtype.kind not in "iu" or not inside:
                raise _unreadable(p, f"its {FAILED_INDEX} are not point indices of its grid")
            if not root.has(FAILED_ERROR) or root.size(FAILED_ERROR) != k.size:
                raise _unreadable(p, f"its {FAILED_INDEX} and {FAILED_ERROR} do not pair up")
        config = root.attr(ATTR_CONFIG, "", _VLEN_STR)
        if not isinstance(config, str):
            raise _unreadable(p, f"its {ATTR_CONFIG} attribute is not text")
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise _damaged(p, e) from None
    return _Layout(ours, version, shape, names, tuple(int(i) for i in k))


def _unreadable(p: Path, reason: str) -> LandscapeError:
    return LandscapeError(f"{p} is not a readable surface: {reason}")


def _read_open(p: Path, f: h5py.File, lay: _Layout) -> Surface:
    ours, shape, names = lay.ours, lay.shape, lay.names
    x = np.asarray(f[XCOORDS][()], dtype=np.float64).reshape(-1)
    y = np.asarray(f[YCOORDS][()], dtype=np.float64).reshape(-1) if YCOORDS in f else None
    # Flat order is meshgrid order in both layouts; the reference allocates (nx, ny),
    # so reshaping its flat data to (ny, nx) puts non-square grids right as well.
    raw = {n: np.asarray(f[n][()], dtype=np.float64).reshape(shape) for n in names}
    done = _done_mask(_Root(f.id), lay, raw)
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
    return Surface(p, layout, x, y, values, done, attrs, _dir_file(f), failed)


def _done_mask(root: _Root, lay: _Layout, raw: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Finished points: our ``completed`` mask, or where the reference's loss is not -1."""
    if lay.ours and root.has(MASK):
        return root.read(MASK).reshape(lay.shape).astype(bool)
    first = next((n for n in lay.names if n.endswith("_loss")), lay.names[0])
    a = raw[first] if raw is not None else root.read(first)
    return a.reshape(lay.shape) != UNFINISHED


def text_of(v: Any) -> Any:
    """A value read from a file: bytes decoded (undecodable bytes escaped), text cleaned."""
    if isinstance(v, bytes):
        v = v.decode("utf-8", "backslashreplace")
    return clean_text(v) if isinstance(v, str) else v


def _dir_file(f: h5py.File) -> str:
    return str(text_of(f[DIR_FILE][()])) if DIR_FILE in f else ""


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
    p = _existing_file(path)
    jpath = journal_path(p)
    journal = _journal_bytes(jpath)  # before the file, as read_surface
    with _open_low(p) as gid:
        try:
            root = _Root(gid)
            lay = _check(p, root)
            done = _done_mask(root, lay).reshape(-1)
            failed = set(lay.failed)
            info = dict(
                created=str(root.attr(ATTR_CREATED, "", _VLEN_STR)),
                updated=str(root.attr(ATTR_UPDATED, "", _VLEN_STR)),
                dir_type=str(root.attr(ATTR_DIR_TYPE, "", _VLEN_STR)),
                has_path=root.has(PROJ_X) and root.has(PROJ_Y),
            )
            # The id is needed only to accept a journal; most files have none.
            file_id = str(root.attr(ATTR_ID, "", _VLEN_STR)) if lay.ours and journal else ""
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise _damaged(p, e) from None
    journaled = 0
    if lay.ours and file_id:
        records = _journal_records(journal, jpath, file_id, done.size, lay.names)
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


def journal_path(path: Path) -> Path:
    """The journal of finished points beside a surface file: ``FILE.h5.journal``."""
    return path.with_name(path.name + JOURNAL_SUFFIX)


def directions_path(path: Path) -> Path:
    """Where a run writes its directions: ``surface.h5`` -> ``surface.directions.h5``."""
    return path.with_name(path.name.removesuffix(".h5") + DIRECTIONS_SUFFIX)


def sidecars(path: str | Path) -> dict[str, Path]:
    """The side files of a surface file that exist, by kind.

    ``journal`` (points since the last checkpoint), ``lock`` (held while a run writes),
    ``tmp`` (a checkpoint cut short), and ``directions`` (the direction file a run writes
    beside its output; other surfaces may name it too, so deleting it is the caller's call).
    """
    p = Path(path)
    candidates = {
        "journal": journal_path(p),
        "lock": p.with_name(p.name + LOCK_SUFFIX),
        "tmp": p.with_name(p.name + TMP_SUFFIX),
        "directions": directions_path(p),
    }
    return {kind: q for kind, q in candidates.items() if q.is_file()}


def removable_sidecars(path: str | Path) -> dict[str, Path]:
    """The side files to delete with the surface file ``path``: ``sidecars(path)``, its
    direction file only when no other surface file of the folder names it (``dir_file``).

    A resumed run, or one with ``directions.kind = "file"``, may compute on the direction file
    another surface's run wrote; deleting it would leave that surface unable to resume. A file
    that cannot be read names nothing (it cannot be resumed either).
    """
    p = Path(path)
    found = sidecars(p)
    d = found.get("directions")
    if d is None:
        return found
    target = d.resolve()
    for other in p.parent.glob("*.h5"):
        if other.name.endswith(DIRECTIONS_SUFFIX) or other.resolve() == p.resolve():
            continue
        try:
            with _open_checked(other) as f:
                named = _dir_file(f)
        except (LandscapeError, OSError, KeyError, ValueError, TypeError):
            continue
        if named and (other.parent / named).resolve() == target:  # relative, or absolute
            return {k: q for k, q in found.items() if k != "directions"}
    return found


def read_journal(
    path: Path, file_id: str, size: int, names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The journal's valid records, if it belongs to the file ``file_id`` (of ``size`` points
    and surfaces ``names``); a torn tail is dropped, any other bad line skipped with a warning."""
    return _journal_records(_journal_bytes(path), path, file_id, size, names)


def _journal_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:  # a journal is a regular file: a FIFO planted there hangs
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return b""
            return f.read()
    except (FileNotFoundError, IsADirectoryError):
        return b""
    except OSError as e:
        log.warning("%s cannot be read (%s); its points are not applied", path, e)
        return b""


def _journal_records(
    data: bytes, path: Path, file_id: str, size: int, names: tuple[str, ...]
) -> list[dict[str, Any]]:
    lines = data.split(b"\n")[:-1]  # the part after the last newline is a torn write
    if not lines:
        return []
    header = _json_line(lines[0])
    if not isinstance(header, dict) or header.get(ATTR_ID) != file_id:
        return []  # left over from another file of the same name (or not a journal at all)
    records = []
    for n, line in enumerate(lines[1:], start=2):
        r = _json_line(line)
        why = _invalid_record(r, size, names)
        if why:
            log.warning("%s line %d skipped: %s", path, n, why)
        else:
            records.append(r)
    return records


def _json_line(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: a line nested thousands deep
        return None


def _invalid_record(r: Any, size: int, names: tuple[str, ...]) -> str:
    """Why a journal record cannot be applied ("" when it can): exactly ``{"k": index,
    "v": {surface: number, ...}}`` with every surface of the file, or ``{"k", "error"}``."""
    if not isinstance(r, dict):
        return "not a JSON object"
    k = r.get("k")
    if type(k) is not int:  # bool is an int to Python: true would index every point
        return "'k' is not an integer"
    if not 0 <= k < size:
        return f"point {k} is outside the grid's {size} points"
    if set(r) == {"k", "error"}:
        return "" if isinstance(r["error"], str) else "'error' is not text"
    if set(r) != {"k", "v"} or not isinstance(r["v"], dict):
        return "neither a point's values nor its error"
    v = r["v"]
    if set(v) != set(names):
        return f"its values are for {sorted(v)}, the file's surfaces are {sorted(names)}"
    bad = [n for n, x in v.items() if type(x) not in (int, float)]
    return f"'{bad[0]}' is not a number" if bad else ""


class SurfaceWriter:
    """The one writer of a surface file: holds the arrays, journals points, checkpoints.

    ``create`` starts a fresh file; ``resume`` reopens one of ours (with its journal).
    ``record`` and ``record_failure`` keep a point in memory and queue its journal line;
    ``flush`` appends the queued lines and fsyncs (cheap, every few seconds); ``checkpoint``
    folds everything into a copy of the file that is renamed over it and empties the journal
    (every ``checkpoint_seconds`` and at ``close``). A sidecar ``FILE.lock`` (``flock``) is
    held for the writer's life: a second writer is refused.
    """

    def __init__(self, path: Path, grid: Grid, names: list[str], lock: Lock | None = None) -> None:
        self.path, self.grid = path, grid
        self._lock = lock if lock is not None else acquire_lock(path)
        try:
            # In the order a reader sees them, so ``Job.snapshot`` shows what a reload shows.
            self.names = _writable_names(names)
            s = read_surface(path)  # the file with its journal applied
            self.completed = s.completed.copy()
            self.arrays = {n: s.values[n].copy() for n in self.names}
            self.failed = dict(s.failed)
            # A version-1 file has no id yet: it gets one at its first checkpoint.
            self.id = str(s.attrs.get(ATTR_ID) or uuid.uuid4().hex)
            jpath = journal_path(path)
            ours = _journal_id(jpath) == self.id
            self._dirty = not s.attrs.get(ATTR_ID) or (
                ours and bool(read_journal(jpath, self.id, self.completed.size, tuple(s.values)))
            )
            self._pending: list[bytes] = []
            self._journal = _open_side(jpath, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            if not ours:
                self._reset_journal()
        except BaseException:
            self._lock.close()
            raise

    @classmethod
    def create(
        cls,
        path: str | Path,
        grid: Grid,
        names: list[str],
        attrs: dict[str, Any],
        dir_file: str,
        on_locked: Callable[[], None] | None = None,
        extras: dict[str, np.ndarray] | None = None,
        lock: Lock | None = None,
    ) -> SurfaceWriter:
        """Build a fresh file; ``on_locked`` runs first, once the lock is held (files beside).

        ``names``: the surfaces (``surface_names``; anything else is a ValueError). ``extras``
        are further root datasets (a PCA surface's projected path). ``lock`` is the output's
        lock when the caller took it first (``acquire_lock``); the writer keeps it.
        """
        names = _writable_names(names)
        p = Path(path)
        # Before the rename: never replace a file another run writes.
        owned = lock is None
        lock = acquire_lock(p) if lock is None else lock
        tmp = p.with_name(p.name + TMP_SUFFIX)
        try:
            if journal_path(p).is_symlink():  # as every side file: refused, never followed
                raise refuse_link(journal_path(p))
            if on_locked is not None:
                on_locked()
            # Built beside the target and renamed, so a crash never leaves a half-made header.
            with fresh_hdf5(tmp) as f:
                f.create_dataset(XCOORDS, data=grid.x.coordinates())
                if grid.y is not None:
                    f.create_dataset(YCOORDS, data=grid.y.coordinates())
                for n in names:
                    f.create_dataset(n, data=np.full(grid.shape, UNFINISHED, dtype=np.float64))
                f.create_dataset(MASK, data=np.zeros(grid.shape, dtype=np.uint8))
                f.create_dataset(DIR_FILE, data=dir_file)
                for name, value in (extras or {}).items():
                    f.create_dataset(name, data=np.asarray(value))
                f.attrs[ATTR_FORMAT] = SURFACE_FORMAT
                f.attrs[ATTR_FORMAT_VERSION] = SURFACE_FORMAT_VERSION
                f.attrs[ATTR_TOOL_VERSION] = __version__
                f.attrs[ATTR_CREATED] = _now()
                f.attrs[ATTR_UPDATED] = f.attrs[ATTR_CREATED]
                f.attrs[ATTR_ID] = uuid.uuid4().hex  # ties the journal to this file
                for k, v in attrs.items():
                    f.attrs[k] = v
            _fsync_path(tmp)
            os.replace(tmp, p)
            journal_path(p).unlink(missing_ok=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            if owned:  # else the caller, who took it, releases it
                lock.close()
            raise
        # The same lock, never released in between: no other run can slip in.
        return cls(p, grid, names, lock)

    @classmethod
    def resume(cls, surface: Surface, lock: Lock | None = None) -> SurfaceWriter:
        """Reopen one of our files with every surface it holds (its journal applied)."""
        return cls(surface.path, surface.grid, list(surface.values), lock)

    def record(self, index: int, values: dict[str, float]) -> None:
        cell = np.unravel_index(index, self.grid.shape)
        for n in self.names:
            self.arrays[n][cell] = values[n]
        self.completed[cell] = True
        self.failed.pop(index, None)
        self._queue({"k": index, "v": {n: float(values[n]) for n in self.names}})

    def record_failure(self, index: int, error: str) -> None:
        """A point that raised on every try: kept unfinished, with its error."""
        self.failed[index] = error
        self._queue({"k": index, "error": error})

    def _queue(self, record: dict[str, Any]) -> None:
        self._pending.append(json.dumps(record).encode() + b"\n")  # NaN, inf round-trip
        self._dirty = True

    def flush(self) -> None:
        """Make the recorded points durable: append them to the journal and fsync."""
        if self._pending:
            os.write(self._journal, b"".join(self._pending))
            os.fsync(self._journal)
            self._pending = []

    def checkpoint(self) -> None:
        """Fold everything into the HDF5 file (copy, write, rename) and empty the journal."""
        self.flush()
        if not self._dirty:
            return
        tmp = self.path.with_name(self.path.name + TMP_SUFFIX)
        rewritten = {*self.names, MASK, FAILED_INDEX, FAILED_ERROR}
        try:
            # A fresh file, not a copy written over: HDF5 never gives back the space of
            # replaced datasets, so a copy grew by ~4 KB at every checkpoint.
            with _open(self.path, "r") as src, fresh_hdf5(tmp) as f:
                for name in src:
                    if name not in rewritten:
                        src.copy(src[name], f, name=name)
                for k, v in src.attrs.items():
                    f.attrs[k] = v
                for n in self.names:
                    f.create_dataset(n, data=np.where(self.completed, self.arrays[n], UNFINISHED))
                f.create_dataset(MASK, data=self.completed.astype(np.uint8))
                if self.failed:
                    keys = sorted(self.failed)
                    f.create_dataset(FAILED_INDEX, data=np.array(keys, dtype=np.int64))
                    f.create_dataset(
                        FAILED_ERROR,
                        data=[self.failed[k] for k in keys],
                        dtype=h5py.string_dtype(),
                    )
                f.attrs[ATTR_ID] = self.id
                f.attrs[ATTR_FORMAT_VERSION] = SURFACE_FORMAT_VERSION
                f.attrs[ATTR_UPDATED] = _now()
            _fsync_path(tmp)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._reset_journal()
        self._dirty = False

    def _reset_journal(self) -> None:
        os.ftruncate(self._journal, 0)
        os.write(self._journal, json.dumps({ATTR_ID: self.id}).encode() + b"\n")
        os.fsync(self._journal)

    def close(self) -> None:
        if self._lock.closed:
            return
        try:
            self.checkpoint()
            journal_path(self.path).unlink(missing_ok=True)  # folded: nothing left in it
        finally:
            os.close(self._journal)
            self._lock.close()

    def __enter__(self) -> SurfaceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _journal_id(path: Path) -> str | None:
    """The id in a journal's header line, or None (no journal, or an unreadable one)."""
    try:
        with open(path, "rb") as f:
            line = f.readline()
        return json.loads(line).get(ATTR_ID) if line.endswith(b"\n") else None
    except (OSError, ValueError, AttributeError):
        return None


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open(path: Path, mode: str) -> h5py.File:
    # HDF5's own lock would refuse `info` while a run writes; our lock file guards writers.
    return h5py.File(path, mode, locking=False)


class Lock:
    """``PATH.lock`` held with ``flock``: one writer per surface, released by ``close``."""

    def __init__(self, fd: int, path: Path, created: bool) -> None:
        self._fd: int | None = fd
        self.path, self.created = path, created

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self, remove: bool = False) -> None:
        """Release; ``remove`` also deletes the lock file if this lock created it (a run
        refused before it wrote anything leaves no file). It is unlinked while still held, so
        a process that opened it meanwhile finds it locked and is refused."""
        if self._fd is None:
            return
        if remove and self.created:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def acquire_lock(path: str | Path) -> Lock:
    """Hold ``PATH.lock`` exclusively, or refuse: another process writes this surface.

    Take it before reading anything about the output, and hand it to the writer: whoever
    holds it decides what the file becomes.
    """
    path = Path(path)
    lock_path = path.with_name(path.name + LOCK_SUFFIX)
    try:
        fd, created = _open_side(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL), True
    except FileExistsError:
        fd, created = _open_side(lock_path, os.O_RDWR), False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LandscapeError(
            f"{path} is being computed by another process; wait for it or choose another output"
        ) from None
    return Lock(fd, lock_path, created)


def lock_holder(path: str | Path) -> int | None:
    """Who writes the surface ``path``: the pid holding its ``PATH.lock``, 0 when it is held
    by a process we cannot name, None when no process holds it (or there is no lock file).

    The lock is looked up, never taken: Linux lists every ``flock`` in ``/proc/locks`` by
    device and inode, with its owner's pid. Taking it, even for a moment, could refuse a run
    starting in that moment, so the non-blocking try is only the fallback where
    ``/proc/locks`` cannot be read. A lock path that is a link or not a regular file is
    nobody's lock (hostile files are never followed).
    """
    path = Path(path)
    lock_path = path.with_name(path.name + LOCK_SUFFIX)
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None  # absent, a link, unreadable: no run of ours holds it
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        held = _proc_locks()
        if held is not None:
            # On overlay and btrfs (an anonymous device, major 0) /proc/locks names the
            # device underneath, not the one stat reports: the inode alone identifies it.
            exact = held.get((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
            if exact is not None or os.major(st.st_dev) != 0:
                return exact
            return next((pid for (_, _, ino), pid in held.items() if ino == st.st_ino), None)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def check_output(path: str | Path) -> Path:
    """The output's checks, made before anything is built: a ``.h5`` name, a folder that
    exists and can be written, no run writing it now. ``prepare`` makes them first and the
    app's setup on every change, so Run is refused where the run would be; the lock taken
    later still decides between two runs that start together."""
    out = Path(path)
    if out.suffix not in (".h5", ".hdf5"):
        raise ConfigError(f"Expected the output to end in .h5, but got {str(out)!r}.")
    if not out.parent.is_dir():
        raise ConfigError(f"output folder does not exist: {out.parent}")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write to the output folder {out.parent} (permission denied)")
    if out.exists() and not out.is_file():
        raise ConfigError(f"{out} is not a regular file; remove it or choose another output")
    pid = lock_holder(out)
    if pid is not None:
        who = f"another process (pid {pid})" if pid else "another process"
        raise LandscapeError(
            f"{out} is being computed by {who}; wait for it or choose another output"
        )
    return out


def _proc_locks() -> dict[tuple[int, int, int], int] | None:
    """Every exclusive ``flock`` the kernel lists, (major, minor, inode) -> pid; None where
    ``/proc/locks`` cannot be read (not Linux)."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    held = {}
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 12849 fe:00:2148414 0 EOF"; a waiter's has "->" second.
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK" or parts[3] != "WRITE":
            continue
        try:
            major, minor, ino = parts[5].split(":")
            held[(int(major, 16), int(minor, 16), int(ino))] = int(parts[4])
        except ValueError:
            continue
    return held


def _open_side(path: Path, flags: int) -> int:
    """Open a side file (lock, journal) without following a symbolic link planted there."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        if not path.is_symlink():
            raise  # O_EXCL: the caller opens the existing file instead
        raise refuse_link(path) from None
    except OSError as e:
        if path.is_symlink():
            raise refuse_link(path) from None
        raise LandscapeError(f"cannot open {path}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LandscapeError(f"{path} is not a regular file; remove it or choose another --out")
    return fd


def refuse_link(path: Path) -> LandscapeError:
    return LandscapeError(
        f"{path} is a symbolic link; refusing to write through it (remove it, or choose "
        "another --out)"
    )


@contextmanager
def fresh_hdf5(path: Path) -> Iterator[h5py.File]:
    """A new HDF5 file at ``path`` (a leftover there, ours or planted, is removed first):
    created exclusively, so neither a link nor a file put there meanwhile is written through."""
    if path.is_symlink():
        raise refuse_link(path)
    path.unlink(missing_ok=True)
    try:
        f = h5py.File(path, "w-", locking=False)
    except (FileExistsError, OSError) as e:
        raise LandscapeError(f"cannot create {path}: {e}") from None
    with f:
        yield f
