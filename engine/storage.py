"""The surface file format (HDF5): one module owns names, versions, writing and reading.

The layout is the reference code's, so its plotting scripts read our files, plus
a completion mask and provenance attributes (see ``docs/surface-format.md``):

- ``xcoordinates`` (nx,) float64; ``ycoordinates`` (ny,) float64 for 2D
- ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``: (nx,) or (ny, nx)
  float64 with ``Z[i, j]`` at ``(x[j], y[i])``; -1 at unfinished points
- ``completed``: uint8 mask of the same shape (1 = finished; a loss of 0 is finished)
- ``dir_file``: scalar string, the direction file's path
- root attributes: ``format``, ``format_version``, ``tool_version``, ``created``,
  ``updated``, ``config`` (resolved TOML), ``dir_file_sha256``
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
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
    "SURFACE_NAMES",
    "Surface",
    "SurfaceWriter",
    "read_surface",
]

FORMAT = "tui-landscape-surface"
FORMAT_VERSION = 1
SURFACE_NAMES = ("train_loss", "train_acc", "test_loss", "test_acc")
UNFINISHED = -1.0  # what the reference writes at points not computed yet
MASK = "completed"


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
            return _read_open(p, f)
    except (OSError, KeyError, ValueError) as e:
        raise LandscapeError(f"{p} is damaged or incomplete: {type(e).__name__}: {e}") from None


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
    names = [n for n in SURFACE_NAMES if n in f] + [n for n in ("max_eig", "min_eig") if n in f]
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
    return Surface(p, "tui-landscape" if ours else "reference", x, y, values, done, attrs, dir_file)


class SurfaceWriter:
    """The one writer of a surface file: holds the arrays and flushes them to disk.

    ``create`` starts a fresh file; ``resume`` reopens one of ours. ``record`` stores a
    finished point in memory; ``flush`` opens the file, writes the arrays and the mask, and
    closes it again, so ``info`` can read the file while a run goes on. A sidecar
    ``FILE.lock`` (``flock``) is held for the writer's life: a second writer is refused.
    """

    def __init__(self, path: Path, grid: Grid, names: list[str]) -> None:
        self.path, self.grid, self.names = path, grid, names
        self._lock = _acquire_lock(path)
        try:
            with _open(path, "r") as f:
                self.completed = np.asarray(f[MASK][()]).astype(bool).reshape(grid.shape)
                self.arrays = {
                    n: np.asarray(f[n][()], dtype=np.float64).reshape(grid.shape) for n in names
                }
        except BaseException:
            self._lock.close()
            raise
        self._dirty = False

    @classmethod
    def create(
        cls,
        path: str | Path,
        grid: Grid,
        names: list[str],
        attrs: dict[str, Any],
        dir_file: str,
        on_locked: Callable[[], None] | None = None,
    ) -> SurfaceWriter:
        """Build a fresh file; ``on_locked`` runs first, once the lock is held (files beside)."""
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
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["tool_version"] = __version__
                f.attrs["created"] = _now()
                f.attrs["updated"] = f.attrs["created"]
                for k, v in attrs.items():
                    f.attrs[k] = v
            os.replace(tmp, p)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            lock.close()
        return cls(p, grid, names)

    @classmethod
    def resume(cls, surface: Surface) -> SurfaceWriter:
        names = [n for n in SURFACE_NAMES if n in surface.values]
        return cls(surface.path, surface.grid, names)

    def record(self, index: int, values: dict[str, float]) -> None:
        cell = np.unravel_index(index, self.grid.shape)
        for n in self.names:
            self.arrays[n][cell] = values[n]
        self.completed[cell] = True
        self._dirty = True

    def flush(self) -> None:
        if not self._dirty:
            return
        with _open(self.path, "r+") as f:
            for n in self.names:
                f[n][...] = self.arrays[n]
            f[MASK][...] = self.completed.astype(np.uint8)
            f.attrs["updated"] = _now()
        self._dirty = False

    def close(self) -> None:
        if not self._lock.closed:
            try:
                self.flush()
            finally:
                self._lock.close()

    def __enter__(self) -> SurfaceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
