"""The one writer of a surface file: ``SurfaceWriter``.

The HDF5 file is never modified in place. Finished points are appended to the journal
(``FILE.h5.journal``, fsynced at least every ``compute.flush_seconds``); at checkpoints the
journal is folded into a fresh copy (``FILE.h5.tmp``: the other datasets copied, the surfaces
written anew, so the size stays that of one file) that is read back and checked before it is
renamed over the file, and only then is the journal emptied. A full disk or a file size limit
therefore costs no point that was journaled: the run stops with one line and a rerun resumes.
Before folding, the writer checks that the file is still the one it created (its id and its
inode): a file put over the output meanwhile is refused, and the journal kept.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine import __version__
from engine.errors import LandscapeError
from engine.formats.constants import (
    ATTR_CREATED,
    ATTR_FORMAT,
    ATTR_FORMAT_VERSION,
    ATTR_ID,
    ATTR_TOOL_VERSION,
    ATTR_UPDATED,
    DIR_FILE,
    FAILED_ERROR,
    FAILED_INDEX,
    MASK,
    SURFACE_FORMAT,
    SURFACE_FORMAT_VERSION,
    UNFINISHED,
    XCOORDS,
    YCOORDS,
)
from engine.formats.files import (
    fresh_hdf5,
    fsync_path,
    journal_path,
    open_hdf5,
    refuse_link,
    tmp_path,
    write_error,
    writing,
)
from engine.formats.journal import Journal, journal_id, read_journal
from engine.formats.layout import writable_names
from engine.formats.lock import Lock, acquire_lock
from engine.formats.provenance import Provenance
from engine.formats.reader import Surface, read_surface
from engine.grid import Grid

__all__ = ["SurfaceWriter"]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class SurfaceWriter:
    """The one writer of a surface file: holds the arrays, journals points, checkpoints.

    ``create`` starts a fresh file; ``resume`` reopens one of ours (with its journal).
    ``record`` and ``record_failure`` keep a point in memory and queue its journal line;
    ``flush`` appends the queued lines and fsyncs (cheap, every few seconds); ``checkpoint``
    folds everything into a checked copy of the file that is renamed over it and empties the
    journal (every ``checkpoint_seconds`` and at ``close``). A sidecar ``FILE.lock``
    (``flock``) is held for the writer's life: a second writer is refused.
    """

    def __init__(self, path: Path, grid: Grid, names: list[str], lock: Lock | None = None) -> None:
        self.path, self.grid = path, grid
        self._lock = lock if lock is not None else acquire_lock(path)
        try:
            # In the order a reader sees them, so ``Job.snapshot`` shows what a reload shows.
            self.names = writable_names(names)
            self._identity = _identity(path)  # before the read: a swap meanwhile is caught
            s = read_surface(path)  # the file with its journal applied
            self.completed = s.completed.copy()
            self.arrays = {n: s.values[n].copy() for n in self.names}
            self.failed = dict(s.failed)
            # A version-1 file has no id yet: it gets one at its first checkpoint.
            self._had_id = bool(s.attrs.get(ATTR_ID))
            self.id = str(s.attrs.get(ATTR_ID) or uuid.uuid4().hex)
            jpath = journal_path(path)
            ours = journal_id(jpath) == self.id
            self._dirty = not self._had_id or (
                ours and bool(read_journal(jpath, self.id, self.completed.size, tuple(s.values)))
            )
            self._pending: list[bytes] = []
            self._journal = Journal(jpath)
            if not ours:
                self._journal.reset(self.id)
        except BaseException:
            self._lock.close()
            raise

    @classmethod
    def create(
        cls,
        path: str | Path,
        grid: Grid,
        names: list[str],
        provenance: Provenance,
        dir_file: str,
        on_locked: Callable[[], None] | None = None,
        extras: dict[str, np.ndarray] | None = None,
        lock: Lock | None = None,
    ) -> SurfaceWriter:
        """Build a fresh file; ``on_locked`` runs first, once the lock is held (files beside).

        ``names``: the surfaces (``surface_names``; anything else is a ValueError).
        ``provenance``: the run's config, directions and device (the writer stamps the
        versions, times and id). ``extras`` are further root datasets (a PCA surface's
        projected path). ``lock`` is the output's lock when the caller took it first
        (``acquire_lock``); the writer keeps it.
        """
        if not isinstance(provenance, Provenance):
            raise TypeError(f"Expected a Provenance, but got {type(provenance).__name__}.")
        names = writable_names(names)
        p = Path(path)
        # Before the rename: never replace a file another run writes.
        owned = lock is None
        lock = acquire_lock(p) if lock is None else lock
        tmp = tmp_path(p)
        try:
            if journal_path(p).is_symlink():  # as every side file: refused, never followed
                raise refuse_link(journal_path(p))
            if on_locked is not None:
                on_locked()
            # Built beside the target and renamed, so a crash never leaves a half-made header.
            file_id = uuid.uuid4().hex  # ties the journal to this file
            with writing(p), fresh_hdf5(tmp) as f:
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
                f.attrs[ATTR_ID] = file_id
                for k, v in provenance.given_attrs().items():
                    f.attrs[k] = v
                f.flush()
            _verify(tmp, p, file_id, names, np.zeros(grid.shape, dtype=bool), {}, "")
            fsync_path(tmp)
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
            self._journal.append(b"".join(self._pending))
            self._pending = []

    def checkpoint(self) -> None:
        """Fold everything into the HDF5 file (copy, write, check, rename), then empty the
        journal. Refuses, keeping the journal, when the file is not the one this writer
        made (replaced meanwhile) or the copy cannot be written whole (a full disk)."""
        self.flush()
        if not self._dirty:
            return
        self._check_same()
        tmp = tmp_path(self.path)
        rewritten = {*self.names, MASK, FAILED_INDEX, FAILED_ERROR}
        try:
            # A fresh file, not a copy written over: HDF5 never gives back the space of
            # replaced datasets, so a copy grew by ~4 KB at every checkpoint.
            with writing(self.path, self._kept()), open_hdf5(self.path, "r") as src:
                if self._had_id and src.attrs.get(ATTR_ID) != self.id:
                    raise self._replaced()
                with fresh_hdf5(tmp) as f:
                    for name in src:
                        if name not in rewritten:
                            src.copy(src[name], f, name=name)
                    for k, v in src.attrs.items():
                        f.attrs[k] = v
                    for n in self.names:
                        f.create_dataset(
                            n, data=np.where(self.completed, self.arrays[n], UNFINISHED)
                        )
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
                    f.flush()
            # Read the copy back before it replaces the only good file: a copy cut short
            # (h5py once reported such a write only as "Exception ignored") never does.
            _verify(tmp, self.path, self.id, self.names, self.completed, self.arrays, self._kept())
            fsync_path(tmp)
            self._check_same()  # once more, just before the rename
            identity = _identity(tmp)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._identity, self._had_id = identity, True
        self._journal.reset(self.id)
        self._dirty = False

    def _check_same(self) -> None:
        """Refuse to fold into a file that is not the one this writer made or last wrote."""
        try:
            now = _identity(self.path)
        except FileNotFoundError:
            now = None
        if now != self._identity:
            raise self._replaced()

    def _replaced(self) -> LandscapeError:
        return LandscapeError(
            f"{self.path} was replaced or removed while this run wrote it; not writing over "
            f"it{self._kept()}"
        )

    def _kept(self) -> str:
        return f"; the points since the last checkpoint are kept in {journal_path(self.path)}"

    def close(self) -> None:
        if self._lock.closed:
            return
        try:
            self.checkpoint()
            journal_path(self.path).unlink(missing_ok=True)  # folded: nothing left in it
        finally:
            self._journal.close()
            self._lock.close()

    def __enter__(self) -> SurfaceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def _verify(
    tmp: Path,
    out: Path,
    file_id: str,
    names: list[str],
    completed: np.ndarray,
    arrays: dict[str, np.ndarray],
    then: str,
) -> None:
    """Read the written copy back: its id, its mask and every surface as they should be.
    A copy that is short (a write failed where only a warning said so) is refused."""
    try:
        with open_hdf5(tmp, "r") as f:
            ok = f.attrs.get(ATTR_ID) == file_id and np.array_equal(
                f[MASK][()].astype(bool), completed
            )
            for n in names if ok else ():
                want = np.where(completed, arrays[n], UNFINISHED) if arrays else UNFINISHED
                got = f[n][()]
                ok = ok and got.shape == completed.shape
                ok = ok and np.array_equal(got, np.broadcast_to(want, got.shape), equal_nan=True)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError):
        ok = False
    if not ok:
        # The likeliest cause is space: say so when the disk has none left.
        why = OSError(_space_errno(tmp), f"its copy {tmp.name} read back incomplete")
        raise write_error(out, why, then)


def _space_errno(path: Path) -> int:
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return 0
    return errno.ENOSPC if st.f_bavail * st.f_frsize < 64 * 1024 else 0
