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

__all__ = ["read_spectrum", "spectrum_datasets"]


def spectrum_datasets(values: dict[str, object]) -> dict[str, np.ndarray]:
    """``values`` (keys among ``SPECTRUM_NAMES``) as extras for ``SurfaceWriter.create``."""
    unknown = sorted(set(values) - set(SPECTRUM_NAMES))
    if unknown:
        raise ValueError(f"Expected keys among {SPECTRUM_NAMES}, but got {unknown}.")
    out = {}
    for k, v in values.items():
        # Text as bytes: h5py stores numpy's unicode arrays under no HDF5 type.
        a = np.bytes_(v.encode()) if isinstance(v, str) else np.asarray(v, dtype=np.float64)
        out[f"{SPECTRUM_GROUP}/{k}"] = a
    return out


def read_spectrum(path: str | Path) -> dict[str, object] | None:
    """The centre's spectrum of a surface file (scalars as float, ``params`` as text, the rest
    as float64 arrays), or None where the file holds none (not a Hessian run, or older)."""
    p = Path(path)
    try:
        with h5py.File(p, "r", locking=False) as f:
            g = f.get(SPECTRUM_GROUP)
            if not isinstance(g, h5py.Group):
                return None
            out: dict[str, object] = {}
            for k in SPECTRUM_NAMES:
                if k not in g:
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
        raise LandscapeError(f"{p}: its {SPECTRUM_GROUP} group cannot be read: {e}") from None
