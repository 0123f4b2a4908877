"""Which layout a surface file has, validated in order, from attributes and shapes only.

``surface_names`` decides which datasets are surfaces and in which order; ``check`` says whose
layout a file has (ours or the reference's), which version, its grid's shape and surfaces,
refusing in one line what is not readable; ``Root`` reads an open file's root through h5py's
low-level API, which ``surface_info`` needs to look at hundreds of files quickly.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine import __version__
from engine.errors import ConfigError, LandscapeError
from engine.formats.constants import (
    ATTR_CONFIG,
    ATTR_FORMAT,
    ATTR_FORMAT_VERSION,
    DIR_FILE,
    FAILED_ERROR,
    FAILED_INDEX,
    HESSIAN_NAMES,
    MASK,
    METRIC_NAME,
    SURFACE_FORMAT,
    SURFACE_FORMAT_VERSION,
    SURFACE_NAMES,
    SURFACE_SPLITS,
    UNFINISHED,
    XCOORDS,
    YCOORDS,
)
from engine.formats.files import REAL_KINDS, text_of, unopenable

__all__ = ["Layout", "Root", "check", "surface_names"]

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


def writable_names(names: Sequence[str]) -> list[str]:
    """``names`` in ``surface_names`` order; anything else is a caller's bug (ValueError)."""
    ordered = list(surface_names(names))
    if not names or len(ordered) != len(names):
        raise ValueError(
            f"Expected `names` to be distinct surface names ({', '.join(_KNOWN)} or "
            f"'{METRIC_NAME}'), but got {list(names)!r}."
        )
    return ordered


@dataclass(frozen=True)
class Layout:
    """What validation found: whose layout, its version, the grid's shape, the surfaces."""

    ours: bool
    version: int | None
    shape: tuple[int, ...]
    names: tuple[str, ...]
    failed: tuple[int, ...] = ()  # the failed points' flat indices (ours), checked in range


def existing_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"surface file not found: {p}")
    if not p.is_file():
        raise ConfigError(f"not a file: {p}")
    return p


@contextmanager
def open_low(p: Path) -> Iterator[h5py.h5g.GroupID]:
    """``open_checked`` through the low-level API (no ``h5py.File``: a third of the cost)."""
    try:
        fid = h5py.h5f.open(os.fsencode(p), h5py.h5f.ACC_RDONLY, _fapl())
    except OSError as e:
        raise unopenable(p, e) from None
    try:
        yield h5py.h5g.open(fid, b"/")
    finally:
        fid.close()


@functools.cache
def _fapl() -> h5py.h5p.PropFAID:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_file_locking(False, True)  # as ``open_hdf5``: a run's writer may hold the file
    # HDF5 refuses to open a file a second time in one process with another close degree:
    # h5py.File uses 'weak', so a strong degree here failed while another thread (the app's
    # watch, a test) held the file open. 'default' matches whichever degree it is open with.
    fapl.set_fclose_degree(h5py.h5f.CLOSE_DEFAULT)
    return fapl


def damaged(p: Path, e: BaseException) -> LandscapeError:
    return LandscapeError(f"{p} is damaged or incomplete: {type(e).__name__}: {e}")


class Root:
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
        shape = h5py.h5d.open(self._g, name.encode()).shape
        return (0,) if shape is None else tuple(shape)  # None: a dataset with no dataspace

    def kind(self, name: str) -> str:
        """The numpy kind of dataset ``name`` (``f``, ``i``, ``S``, ``c``, ``V``, ``O``...);
        "" where ``name`` is no dataset (a group, a link to nothing)."""
        try:
            return h5py.h5d.open(self._g, name.encode()).dtype.kind
        except KeyError:
            return ""

    def size(self, name: str) -> int:
        return math.prod(self.shape(name))

    def numeric(self, name: str) -> bool:
        """Whether ``name`` is a dataset of numbers held in this file: a link (to another file
        or elsewhere in this one) is not followed, a group or text is not a surface."""
        b = name.encode()
        if self._g.links.get_info(b).type != h5py.h5l.TYPE_HARD:
            return False
        try:
            return h5py.h5d.open(self._g, b).dtype.kind in REAL_KINDS
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
VLEN_STR = h5py.string_dtype()


def check(p: Path, root: Root) -> Layout:
    """Validate in order, from attributes and shapes only: ours or the reference's, which
    version, the coordinates, at least one surface, every surface the grid's size."""
    try:
        ours = root.attr(ATTR_FORMAT, dtype=VLEN_STR) == SURFACE_FORMAT
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
        coords = (XCOORDS, YCOORDS) if len(shape) == 2 else (XCOORDS,)
        mask = (MASK,) if ours and root.has(MASK) else ()
        for n in (*coords, *names, *mask):
            # Complex values would lose their imaginary part, records or text would not convert.
            if root.kind(n) not in REAL_KINDS:
                raise unreadable(p, f"its {n} is not a dataset of real numbers")
        for n in names:
            if root.size(n) != math.prod(shape):
                raise LandscapeError(
                    f"{p}: '{n}' has shape {root.shape(n)}, the grid needs {shape}"
                )
        for name in coords:
            c = root.read(name).astype(np.float64, copy=False).reshape(-1)
            with np.errstate(over="ignore", invalid="ignore"):  # past float64's range: inf
                span = c[-1] - c[0] if c.size else np.nan
            if not (np.isfinite(c).all() and np.isfinite(span) and (np.diff(c) > 0).all()):
                raise unreadable(p, f"its {name} are not finite and strictly increasing")
        k = np.zeros(0, dtype=np.int64)
        if ours and root.has(FAILED_INDEX):
            k = root.read(FAILED_INDEX).reshape(-1)
            inside = k.size == 0 or (k.min() >= 0 and k.max() < math.prod(shape))
            if k.dtype.kind not in "iu" or not inside:
                raise unreadable(p, f"its {FAILED_INDEX} are not point indices of its grid")
            if not root.has(FAILED_ERROR) or root.size(FAILED_ERROR) != k.size:
                raise unreadable(p, f"its {FAILED_INDEX} and {FAILED_ERROR} do not pair up")
        if root.has(DIR_FILE) and (root.kind(DIR_FILE) not in tuple("SOU") or root.shape(DIR_FILE)):
            raise unreadable(p, f"its {DIR_FILE} is not text")
        config = root.attr(ATTR_CONFIG, "", VLEN_STR)
        if not isinstance(config, str):
            raise unreadable(p, f"its {ATTR_CONFIG} attribute is not text")
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise damaged(p, e) from None
    return Layout(ours, version, shape, names, tuple(int(i) for i in k))


def unreadable(p: Path, reason: str) -> LandscapeError:
    return LandscapeError(f"{p} is not a readable surface: {reason}")


def done_mask(root: Root, lay: Layout, raw: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Finished points: our ``completed`` mask, or where the reference's loss is not -1."""
    if lay.ours and root.has(MASK):
        return root.read(MASK).reshape(lay.shape).astype(bool)
    first = next((n for n in lay.names if n.endswith("_loss")), lay.names[0])
    a = raw[first] if raw is not None else root.read(first)
    return a.reshape(lay.shape) != UNFINISHED
