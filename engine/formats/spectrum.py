"""The Hessian's spectrum at a surface's centre: the ``hessian_spectrum`` group of a surface file.

Written once, when a Hessian run creates its file (``SurfaceWriter.create``'s ``extras``), and
copied unchanged by every checkpoint; ``docs/surface-format.md`` lists the datasets.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from engine.errors import LandscapeError
from engine.formats.constants import SPECTRUM_GROUP, SPECTRUM_NAMES

__all__ = ["group_datasets", "read_group", "read_spectrum", "spectrum_datasets"]


def spectrum_datasets(values: dict[str, object]) -> dict[str, np.ndarray]:
    """``values`` (keys among ``SPECTRUM_NAMES``) as extras for ``SurfaceWriter.create``."""
    return group_datasets(SPECTRUM_GROUP, SPECTRUM_NAMES, values)


def read_spectrum(path: str | Path) -> dict[str, object] | None:
    """The centre's spectrum of a surface file (scalars as float, ``params`` as text, the rest
    as float64 arrays), or None where the file holds none (not a Hessian run, or older)."""
    return read_group(path, SPECTRUM_GROUP, SPECTRUM_NAMES)


def group_datasets(
    group: str, names: tuple[str, ...], values: dict[str, object]
) -> dict[str, np.ndarray]:
    """``values`` (keys among ``names``) as the datasets of ``group``, for the extras of
    ``SurfaceWriter.create``: text as bytes, the rest as float64."""
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"Expected keys among {names}, but got {unknown}.")
    out = {}
    for k, v in values.items():
        # Text as bytes: h5py stores numpy's unicode arrays under no HDF5 type.
        a = np.bytes_(v.encode()) if isinstance(v, str) else np.asarray(v, dtype=np.float64)
        out[f"{group}/{k}"] = a
    return out


def read_group(path: str | Path, group: str, names: tuple[str, ...]) -> dict[str, object] | None:
    """The datasets ``names`` of ``group`` (scalars as float, text as str, the rest float64
    arrays), or None where the file has no such group; one line where it cannot be read."""
    p = Path(path)
    try:
        with h5py.File(p, "r", locking=False) as f:
            g = f.get(group)
            if not isinstance(g, h5py.Group):
                return None
            out: dict[str, object] = {}
            for k in names:
                if k not in g or not isinstance(g[k], h5py.Dataset):
                    continue
                v = g[k][()]
                if isinstance(v, bytes):
                    out[k] = v.decode("utf-8", "backslashreplace")
                elif np.ndim(v) == 0:
                    out[k] = float(v)
                else:
                    out[k] = np.asarray(v, dtype=np.float64)
            return out
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise LandscapeError(f"{p}: its {group} group cannot be read: {e}") from None
