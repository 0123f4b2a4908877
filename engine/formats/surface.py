"""The surface file format (HDF5): one module owns names, versions, writing and reading.

The layout is the reference code's, so its plotting scripts read our files, plus
a completion mask and provenance attributes (see ``docs/surface-format.md``):

- ``xcoordinates`` (nx,) float64; ``ycoordinates`` (ny,) float64 for 2D
- ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``: (nx,) or (ny, nx)
  float64 with ``Z[i, j]`` at ``(x[j], y[i])``; -1 at unfinished points
- ``completed``: uint8 mask of the same shape (1 = finished; a loss of 0 is finished)
- ``dir_file``: scalar string, the direction file's path
- ``failed_index`` (n,) int64 and ``failed_error`` (n,) strings: points whose evaluation
  raised on every try (they stay unfinished, so a resume tries them again)
- root attributes: ``format``, ``format_version``, ``tool_version``, ``created``,
  ``updated``, ``config`` (resolved TOML), ``dir_file_sha256``, ``id``

Crash safety: the HDF5 file is never modified in place. Finished points are appended to a
journal beside it (``FILE.h5.journal``, one JSON line per point, fsynced at least every
``compute.flush_seconds``); at checkpoints the journal is folded into a copy of the file that
is renamed over it, then the journal is emptied. A process killed at any moment leaves the
last good file plus a journal whose torn last line, if any, is ignored.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine import __version__
from engine.errors import ConfigError, LandscapeError
from engine.grid import Axis, Grid

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "HESSIAN_NAMES",
    "SURFACE_NAMES",
    "Surface",
    "SurfaceWriter",
    "read_surface",
]

FORMAT = "tui-landscape-surface"
FORMAT_VERSION = 2
SURFACE_NAMES = ("train_loss", "train_acc", "test_loss", "test_acc")
# Hessian runs: the reference's eigenvalue names, and the Hessian-vector products per point.
HESSIAN_NAMES = ("max_eig", "min_eig", "hvp_products")
UNFINISHED = -1.0  # what the reference writes at points not computed yet
MASK = "completed"
FAILED_INDEX, FAILED_ERROR = "failed_index", "failed_error"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


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
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"surface file not found: {p}")
    if not p.is_file():
        raise ConfigError(f"not a file: {p}")
    try:
        if not h5py.is_hdf5(p):
            raise LandscapeError(f"{p} is not an HDF5 file")
        f = _open(p, "r")
    except OSError as e:
        raise LandscapeError(f"{p} cannot be opened as HDF5 (truncated or corrupt?): {e}") from None
    try:
        with f:
            surface = _read_open(p, f)
    except (OSError, KeyError, ValueError) as e:
        raise LandscapeError(f"{p} is damaged or incomplete: {type(e).__name__}: {e}") from None
    if surface.layout == "tui-landscape":
        # Points finished since the last checkpoint (a run going on, or one that was killed).
        _apply(surface, read_journal(journal_path(p), str(surface.attrs.get("id", ""))))
    return surface


def _apply(s: Surface, records: list[dict[str, Any]]) -> None:
    flat_done = s.completed.reshape(-1)
    for r in records:
        k = r["k"]
        if not 0 <= k < flat_done.size:
            continue
        if "error" in r:
            s.failed[k] = r["error"]
            continue
        for n, a in s.values.items():
            if n in r["v"]:
                a.reshape(-1)[k] = r["v"][n]
        flat_done[k] = True
        s.failed.pop(k, None)


def _read_open(p: Path, f: h5py.File) -> Surface:
    ours = f.attrs.get("format") == FORMAT
    if ours:
        version = int(f.attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise LandscapeError(
                f"{p} has surface format version {version}; this tui-landscape "
                f"({__version__}) reads up to {FORMAT_VERSION}: upgrade it"
            )
    if "xcoordinates" not in f:
        raise LandscapeError(f"{p} is not a surface file (no 'xcoordinates' dataset)")
    x = np.asarray(f["xcoordinates"][()], dtype=np.float64).reshape(-1)
    y = (
        np.asarray(f["ycoordinates"][()], dtype=np.float64).reshape(-1)
        if "ycoordinates" in f
        else None
    )
    shape = (len(x),) if y is None else (len(y), len(x))
    names = [n for n in (*SURFACE_NAMES, *HESSIAN_NAMES) if n in f]
    if not names:
        raise LandscapeError(f"{p} holds no surface (expected one of {', '.join(SURFACE_NAMES)})")
    raw: dict[str, np.ndarray] = {}
    for n in names:
        a = np.asarray(f[n][()], dtype=np.float64)
        if a.size != int(np.prod(shape)):
            raise LandscapeError(f"{p}: '{n}' has shape {a.shape}, the grid needs {shape}")
        # Flat order is meshgrid order in both layouts; the reference allocates (nx, ny),
        # so reshaping its flat data to (ny, nx) puts non-square grids right as well.
        raw[n] = a.reshape(shape)
    if ours and MASK in f:
        done = np.asarray(f[MASK][()]).reshape(shape).astype(bool)
    else:
        # The reference marks unfinished points with -1 in the losses.
        first = next((n for n in names if n.endswith("_loss")), names[0])
        done = raw[first] != UNFINISHED
    values = {n: np.where(done, a, np.nan) for n, a in raw.items()}
    if not ours:
        # Each reference array marks its own unfinished points too (a test split run later).
        values = {n: np.where(a == UNFINISHED, np.nan, a) for n, a in values.items()}
    dir_file = ""
    if "dir_file" in f:
        v = f["dir_file"][()]
        dir_file = v.decode() if isinstance(v, bytes) else str(v)
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    failed: dict[int, str] = {}
    if ours and FAILED_INDEX in f:
        errors = [e.decode() if isinstance(e, bytes) else str(e) for e in f[FAILED_ERROR][()]]
        failed = dict(zip((int(k) for k in f[FAILED_INDEX][()]), errors, strict=True))
    layout = "tui-landscape" if ours else "reference"
    return Surface(p, layout, x, y, values, done, attrs, dir_file, failed)


def journal_path(path: Path) -> Path:
    """The journal of finished points beside a surface file: ``FILE.h5.journal``."""
    return path.with_name(path.name + ".journal")


def read_journal(path: Path, file_id: str) -> list[dict[str, Any]]:
    """The journal's records, if it belongs to the file ``file_id``; a torn tail is dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # the part after the last newline is a torn write
    if not lines:
        return []
    try:
        header = json.loads(lines[0])
    except ValueError:
        return []
    if header.get("id") != file_id:
        return []  # left over from another file of the same name
    records = []
    for line in lines[1:]:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and isinstance(r.get("k"), int) and ("v" in r or "error" in r):
            records.append(r)
    return records


class SurfaceWriter:
    """The one writer of a surface file: holds the arrays, journals points, checkpoints.

    ``create`` starts a fresh file; ``resume`` reopens one of ours (with its journal).
    ``record`` and ``record_failure`` keep a point in memory and queue its journal line;
    ``flush`` appends the queued lines and fsyncs (cheap, every few seconds); ``checkpoint``
    folds everything into a copy of the file that is renamed over it and empties the journal
    (every ``checkpoint_seconds`` and at ``close``). A sidecar ``FILE.lock`` (``flock``) is
    held for the writer's life: a second writer is refused.
    """

    def __init__(self, path: Path, grid: Grid, names: list[str]) -> None:
        self.path, self.grid, self.names = path, grid, names
        self._lock = _acquire_lock(path)
        try:
            s = read_surface(path)  # the file with its journal applied
            self.completed = s.completed.copy()
            self.arrays = {n: s.values[n].copy() for n in names}
            self.failed = dict(s.failed)
            # A version-1 file has no id yet: it gets one at its first checkpoint.
            self.id = str(s.attrs.get("id") or uuid.uuid4().hex)
            jpath = journal_path(path)
            ours = _journal_id(jpath) == self.id
            self._dirty = not s.attrs.get("id") or (ours and bool(read_journal(jpath, self.id)))
            self._pending: list[bytes] = []
            self._journal = os.open(jpath, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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
    ) -> SurfaceWriter:
        """Build a fresh file; ``on_locked`` runs first, once the lock is held (files beside).

        ``extras`` are further root datasets (a PCA surface's projected path).
        """
        p = Path(path)
        lock = _acquire_lock(p)  # before the rename: never replace a file another run writes
        tmp = p.with_name(p.name + ".tmp")
        try:
            if on_locked is not None:
                on_locked()
            # Built beside the target and renamed, so a crash never leaves a half-made header.
            with h5py.File(tmp, "w") as f:
                f.create_dataset("xcoordinates", data=grid.x.coordinates())
                if grid.y is not None:
                    f.create_dataset("ycoordinates", data=grid.y.coordinates())
                for n in names:
                    f.create_dataset(n, data=np.full(grid.shape, UNFINISHED, dtype=np.float64))
                f.create_dataset(MASK, data=np.zeros(grid.shape, dtype=np.uint8))
                f.create_dataset("dir_file", data=dir_file)
                for name, value in (extras or {}).items():
                    f.create_dataset(name, data=np.asarray(value))
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["tool_version"] = __version__
                f.attrs["created"] = _now()
                f.attrs["updated"] = f.attrs["created"]
                f.attrs["id"] = uuid.uuid4().hex  # ties the journal to this file
                for k, v in attrs.items():
                    f.attrs[k] = v
            _fsync_path(tmp)
            os.replace(tmp, p)
            journal_path(p).unlink(missing_ok=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            lock.close()
        return cls(p, grid, names)

    @classmethod
    def resume(cls, surface: Surface) -> SurfaceWriter:
        names = [n for n in (*SURFACE_NAMES, *HESSIAN_NAMES) if n in surface.values]
        return cls(surface.path, surface.grid, names)

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
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            shutil.copyfile(self.path, tmp)
            with _open(tmp, "r+") as f:
                for n in self.names:
                    f[n][...] = np.where(self.completed, self.arrays[n], UNFINISHED)
                f[MASK][...] = self.completed.astype(np.uint8)
                for name in (FAILED_INDEX, FAILED_ERROR):
                    if name in f:
                        del f[name]
                if self.failed:
                    keys = sorted(self.failed)
                    f.create_dataset(FAILED_INDEX, data=np.array(keys, dtype=np.int64))
                    f.create_dataset(
                        FAILED_ERROR,
                        data=[self.failed[k] for k in keys],
                        dtype=h5py.string_dtype(),
                    )
                f.attrs["id"] = self.id
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["updated"] = _now()
            _fsync_path(tmp)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._reset_journal()
        self._dirty = False

    def _reset_journal(self) -> None:
        os.ftruncate(self._journal, 0)
        os.write(self._journal, json.dumps({"id": self.id}).encode() + b"\n")
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
        return json.loads(line).get("id") if line.endswith(b"\n") else None
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


def _acquire_lock(path: Path):
    """Hold ``PATH.lock`` exclusively, or refuse: another process writes this surface."""
    lock = open(path.with_name(path.name + ".lock"), "a+")  # noqa: SIM115  (held open)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise LandscapeError(
            f"{path} is being computed by another process; wait for it or choose another --out"
        ) from None
    return lock
