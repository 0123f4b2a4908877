"""Direction files (HDF5): the reference's layout, read and written.

Groups ``xdirection`` and, for 2D, ``ydirection`` hold one float32 dataset per tensor,
named ``'0'``..``'N-1'``, in the order of ``engine.directions.targets``. Our files add the
attributes ``format`` and ``type`` and how the directions were made; PCA direction files
hold the reference's ``explained_variance_ratio_``, ``singular_values_`` and
``explained_variance_`` beside the groups. The math lives in ``engine.directions``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from engine.errors import ConfigError, LandscapeError
from engine.formats.constants import (
    ATTR_FORMAT,
    ATTR_TYPE,
    DIRECTIONS_FORMAT,
    EXPLAINED_VARIANCE_RATIO,
    XDIRECTION,
    YDIRECTION,
)
from engine.formats.files import (
    REAL_KINDS,
    fresh_hdf5,
    open_checked,
    real_dataset,
    refuse_link,
    text_of,
    writing,
)

if TYPE_CHECKING:  # torch loads where directions are read: `info` and `plot` never need it
    import torch

    from engine.directions import DirectionSet, DirType

__all__ = [
    "direction_hash",
    "load_directions",
    "ratio_pair",
    "read_explained_variance",
    "save_directions",
]


def direction_hash(x: Sequence[torch.Tensor], y: Sequence[torch.Tensor] | None) -> str:
    """Content hash of the directions (shapes and float32 bytes), independent of the file.

    A surface file stores it (``dir_file_sha256``) so a resume can tell that its direction
    file is the one the surface was computed with.
    """
    h = hashlib.sha256()
    for axis, dirs in (("x", x), ("y", y)):
        for d in dirs or ():
            a = np.ascontiguousarray(d.detach().cpu().numpy().astype(np.float32))
            h.update(f"{axis}{a.shape}".encode())
            h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


def save_directions(
    path: str | Path,
    ds: DirectionSet,
    *,
    extras: Mapping[str, np.ndarray] | None = None,
    replace: bool = False,
) -> None:
    """Write a direction file in the reference layout (groups of datasets '0'..'N-1').

    ``extras`` become root datasets beside the groups, as the reference's PCA direction
    files hold ``explained_variance_ratio_``, ``singular_values_`` and ``explained_variance_``;
    ``load_directions`` reads only the groups, so it ignores them. A file already at ``path``
    is replaced only with ``replace`` or when it holds these very directions (a run that
    stopped before its surface file was made); a symbolic link there is never written through.
    """
    p = Path(path)
    if p.is_symlink():
        raise refuse_link(p)
    if p.exists() and not replace and not _holds(p, ds):
        raise LandscapeError(
            f"{p} exists and does not hold this run's directions (another surface's, or not a "
            "direction file); pass --overwrite to replace it, or choose another --out"
        )
    try:
        with writing(p), fresh_hdf5(p) as f:
            for axis, dirs in ((XDIRECTION, ds.x), (YDIRECTION, ds.y)):
                if dirs is None:
                    continue
                g = f.create_group(axis)
                for k, d in enumerate(dirs):
                    g.create_dataset(str(k), data=d.detach().cpu().numpy().astype(np.float32))
            for name, value in (extras or {}).items():
                if name in (XDIRECTION, YDIRECTION):
                    raise ValueError(f"Expected an extra dataset name other than {name!r}.")
                f.create_dataset(name, data=np.asarray(value))
            f.attrs[ATTR_FORMAT] = DIRECTIONS_FORMAT
            f.attrs[ATTR_TYPE] = ds.dir_type
            for k, v in ds.attrs.items():
                f.attrs[k] = v
            f.flush()
    except BaseException:
        if not p.is_symlink():  # half a direction file would refuse the rerun
            p.unlink(missing_ok=True)
        raise


def _holds(p: Path, ds: DirectionSet) -> bool:
    try:
        old = load_directions(p)
    except LandscapeError:
        return False
    return direction_hash(old.x, old.y) == direction_hash(ds.x, ds.y)


def load_directions(path: str | Path, dir_type: DirType | None = None) -> DirectionSet:
    """Read a direction file, ours or the reference's; ``dir_type`` overrides the stored one."""
    import torch

    from engine.directions import DirectionSet

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"`directions.file`: direction file not found: {p}")
    try:
        with h5py.File(p, "r") as f:
            if XDIRECTION not in f:
                raise LandscapeError(f"{p} is not a direction file (no '{XDIRECTION}' group)")

            def read(axis: str) -> list[torch.Tensor] | None:
                if axis not in f:
                    return None
                g = f[axis]
                n = len(g) if isinstance(g, h5py.Group) else 0
                if not n or sorted(g.keys()) != sorted(str(k) for k in range(n)):
                    raise LandscapeError(f"{p}: {axis} must hold datasets '0'..'N-1', one a tensor")
                ds = [g.get(str(k)) for k in range(n)]
                for k, d in enumerate(ds):  # a group, text or complex numbers: a traceback
                    if not real_dataset(d):
                        raise LandscapeError(f"{p}: {axis}/{k} is not a dataset of real numbers")
                return [torch.from_numpy(np.asarray(d[()], dtype=np.float32)) for d in ds]

            x, y = read(XDIRECTION), read(YDIRECTION)
            attrs = {k: text_of(v) for k, v in f.attrs.items() if k not in (ATTR_FORMAT, ATTR_TYPE)}
            stored = text_of(f.attrs.get(ATTR_TYPE))
    except OSError as e:
        raise LandscapeError(f"{p} is not a readable HDF5 file ({e})") from None
    assert x is not None  # checked above
    known = isinstance(stored, str) and stored in ("weights", "states")  # not an array
    t = dir_type or (stored if known else "weights")
    return DirectionSet(x, y, t, attrs)  # type: ignore[arg-type]


def read_explained_variance(path: str | Path) -> tuple[float, float] | None:
    """A PCA direction file's ``explained_variance_ratio_``, or None (absent or unreadable)."""
    try:
        with open_checked(Path(path)) as f:
            if EXPLAINED_VARIANCE_RATIO not in f:
                return None
            return ratio_pair(f[EXPLAINED_VARIANCE_RATIO][()])
    except (LandscapeError, OSError, KeyError, ValueError, TypeError):
        return None


def ratio_pair(value: object) -> tuple[float, float] | None:
    """An ``explained_variance_ratio_`` as read: two finite real numbers, else None."""
    a = np.asarray(value)
    if a.dtype.kind not in REAL_KINDS or a.size != 2 or not np.isfinite(a).all():
        return None
    first, second = a.astype(np.float64).reshape(-1)
    return float(first), float(second)
