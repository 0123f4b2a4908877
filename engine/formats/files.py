"""Side files of a surface file, and the careful ways this package opens and creates files.

A surface ``FILE.h5`` has side files, each named by a suffix in ``constants``: its journal
(``FILE.h5.journal``), its lock (``FILE.h5.lock``), a checkpoint's copy (``FILE.h5.tmp``), the
direction file a run writes beside it (``FILE.directions.h5``), and, for a run started
detached from the app, its output (``FILE.h5.log``) and the config it ran (``FILE.h5.toml``).
``sidecars`` lists those that exist; ``removable_sidecars`` those a delete takes with the file.

Side files are opened without following symbolic links (``open_side``), and a new HDF5 file is
created exclusively (``fresh_hdf5``): a link or a file planted there is never written through.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py

from engine.errors import LandscapeError, clean_text
from engine.formats.constants import (
    CONFIG_SUFFIX,
    DIR_FILE,
    DIRECTIONS_SUFFIX,
    JOURNAL_SUFFIX,
    LOCK_SUFFIX,
    LOG_SUFFIX,
    TMP_SUFFIX,
)

__all__ = [
    "directions_path",
    "fresh_hdf5",
    "journal_path",
    "lock_path",
    "log_path",
    "open_side",
    "real_dataset",
    "refuse_link",
    "removable_sidecars",
    "run_config_path",
    "sidecars",
    "text_of",
    "tmp_path",
    "write_error",
    "writing",
]


REAL_KINDS = ("i", "u", "f")  # numpy kinds of real numbers (a tuple: "" is in every string)


def real_dataset(d: object) -> bool:
    """Whether ``d`` (an item read from an HDF5 group) is a dataset of real numbers: not a
    group, text, records or complex numbers (whose imaginary part a cast would drop)."""
    return isinstance(d, h5py.Dataset) and d.dtype.kind in REAL_KINDS


def journal_path(path: Path) -> Path:
    """The journal of finished points beside a surface file: ``FILE.h5.journal``."""
    return path.with_name(path.name + JOURNAL_SUFFIX)


def lock_path(path: Path) -> Path:
    """The lock a writer of ``FILE.h5`` holds: ``FILE.h5.lock``."""
    return path.with_name(path.name + LOCK_SUFFIX)


def tmp_path(path: Path) -> Path:
    """Where a new version of ``FILE.h5`` is built before its rename: ``FILE.h5.tmp``."""
    return path.with_name(path.name + TMP_SUFFIX)


def directions_path(path: Path) -> Path:
    """Where a run writes its directions: ``surface.h5`` -> ``surface.directions.h5``."""
    return path.with_name(path.name.removesuffix(".h5") + DIRECTIONS_SUFFIX)


def log_path(path: Path) -> Path:
    """Where a detached run's output goes: ``FILE.h5`` -> ``FILE.h5.log``."""
    return path.with_name(path.name + LOG_SUFFIX)


def run_config_path(path: Path) -> Path:
    """The config a detached run of ``FILE.h5`` runs, when the setup had none saved:
    ``FILE.h5.toml`` (beside the file, never over a user's ``FILE.toml``)."""
    return path.with_name(path.name + CONFIG_SUFFIX)


# Every side file by kind, in the order ``sidecars`` lists them.
_SIDECARS = {
    "journal": journal_path,
    "lock": lock_path,
    "tmp": tmp_path,
    "directions": directions_path,
    "log": log_path,
    "config": run_config_path,
}


def sidecars(path: str | Path) -> dict[str, Path]:
    """The side files of a surface file that exist, by kind.

    ``journal`` (points since the last checkpoint), ``lock`` (held while a run writes),
    ``tmp`` (a checkpoint cut short), ``directions`` (the direction file a run writes beside
    its output; other surfaces may name it too, so deleting it is the caller's call), ``log``
    and ``config`` (a detached run's output and the config it ran). A link at one of these
    names is listed too (never followed): it is this file's name, planted or not.
    """
    p = Path(path)
    found = {kind: name(p) for kind, name in _SIDECARS.items()}
    return {kind: q for kind, q in found.items() if q.is_file() or q.is_symlink()}


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
            with open_checked(other) as f:
                named = dir_file_of(f)
        except (LandscapeError, OSError, KeyError, ValueError, TypeError):
            continue
        if named and (other.parent / named).resolve() == target:  # relative, or absolute
            return {k: q for k, q in found.items() if k != "directions"}
    return found


def text_of(v: Any) -> Any:
    """A value read from a file: bytes decoded (undecodable bytes escaped), text cleaned."""
    if isinstance(v, bytes):
        v = v.decode("utf-8", "backslashreplace")
    return clean_text(v) if isinstance(v, str) else v


def dir_file_of(f: h5py.File) -> str:
    """The direction file a surface names (``dir_file``), "" where it names none."""
    return str(text_of(f[DIR_FILE][()])) if DIR_FILE in f else ""


def open_hdf5(path: Path, mode: str) -> h5py.File:
    """``h5py.File`` without HDF5's own lock: it would refuse ``info`` while a run writes;
    our lock file guards writers."""
    return h5py.File(path, mode, locking=False)


@contextmanager
def open_checked(p: Path) -> Iterator[h5py.File]:
    """Open ``p`` read-only, or say in one line that it is not HDF5 or cannot be opened."""
    if not p.is_file():  # HDF5's open of a FIFO blocks until a writer comes: never ask it
        raise LandscapeError(f"{p} is not a file")
    try:
        f = open_hdf5(p, "r")
    except OSError as e:
        raise unopenable(p, e) from None
    with f:
        yield f


def unopenable(p: Path, e: OSError) -> LandscapeError:
    """Why ``p`` did not open, in one line: not HDF5 at all, or HDF5 that is truncated or
    corrupt. Asked only on failure, so a good file is opened once."""
    if not is_hdf5(p):
        return LandscapeError(f"{p} is not an HDF5 file")
    return LandscapeError(f"{p} cannot be opened as HDF5 (truncated or corrupt?): {e}")


def is_hdf5(p: Path) -> bool:
    try:
        return bool(h5py.is_hdf5(p))
    except OSError:
        return True  # unreadable: let the open's own error speak


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_side(path: Path, flags: int) -> int:
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


# Why a write failed, in the words a user acts on.
_WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f)",
}


def write_error(path: Path, e: OSError, then: str = "") -> LandscapeError:
    """A failed write of ``path`` in one line: a full disk, a quota or a size limit said so;
    ``then`` says what was kept ("; the points are kept in ...")."""
    why = _WRITE_ERRORS.get(e.errno or 0, e.strerror or str(e))
    return LandscapeError(f"cannot write {path}: {why}{then}")


class writing:
    """Turn a failed write (a full disk, a quota, ``ulimit -f``: the ``OSError`` that
    ``fresh_hdf5`` raises) into one line naming ``path``; ``then`` says what was kept."""

    def __init__(self, path: Path, then: str = "") -> None:
        self.path, self.then = path, then

    def __enter__(self) -> writing:
        return self

    def __exit__(self, kind: type | None, e: BaseException | None, tb: object) -> bool:
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError):
            raise write_error(self.path, e, self.then) from None
        return False


def refuse_link(path: Path) -> LandscapeError:
    return LandscapeError(
        f"{path} is a symbolic link; refusing to write through it (remove it, or choose "
        "another --out)"
    )


@contextmanager
def fresh_hdf5(path: Path) -> Iterator[h5py.File]:
    """A new HDF5 file at ``path`` (a leftover there, ours or planted, is removed first).

    HDF5 builds it in memory and it is written out here with plain writes: HDF5 left a file
    whose write failed (a full disk, ``ulimit -f``) half-closed and crashed as the process
    exited, while ``os.write`` raises an ``OSError`` with its errno (``writing`` says it in one
    line). The file is created exclusively, so neither a link nor a file put there meanwhile
    is written through; a file cut short is removed.
    """
    if path.is_symlink():
        raise refuse_link(path)
    path.unlink(missing_ok=True)
    # The name only labels the image (nothing is written there), and is new each time: an
    # image left open by an interrupt (Ctrl-C inside close) would refuse its name again.
    label = path.with_name(f"{path.name}.{uuid.uuid4().hex}")
    f = h5py.File(label, "w", driver="core", backing_store=False, locking=False)
    try:
        yield f
        f.flush()
        image = f.id.get_file_image()
    finally:
        f.close()
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
        )
    except FileExistsError:
        raise (
            refuse_link(path)
            if path.is_symlink()
            else LandscapeError(f"cannot create {path}: another process made it meanwhile")
        ) from None
    try:
        view = memoryview(image)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
