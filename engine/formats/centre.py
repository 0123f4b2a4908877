"""What a run records about its centre and directions (the ``centre`` group of a surface):
each direction's norm relative to the weights, over all moved tensors and per tensor, and,
for an automatic range (``grid.x = "auto"``), the loss at the centre and the probe that chose
the range. Written once with the file (``SurfaceWriter.create``'s extras); older files and the
reference's have none (``read_centre`` gives None).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from engine.errors import LandscapeError
from engine.formats.constants import CENTRE_GROUP, CENTRE_NAMES

__all__ = ["centre_datasets", "read_centre"]


def centre_datasets(values: dict[str, object]) -> dict[str, np.ndarray]:
    """``values`` (keys among ``CENTRE_NAMES``) as extras for ``SurfaceWriter.create``."""
    unknown = sorted(set(values) - set(CENTRE_NAMES))
    if unknown:
        raise ValueError(f"Expected keys among {CENTRE_NAMES}, but got {unknown}.")
    out = {}
    for k, v in values.items():
        if isinstance(v, str):  # text as bytes: h5py stores numpy's unicode under no HDF5 type
            out[f"{CENTRE_GROUP}/{k}"] = np.bytes_(v.encode())
        else:
            out[f"{CENTRE_GROUP}/{k}"] = np.asarray(v, dtype=np.float64)
    return out


def read_centre(path: str | Path) -> dict[str, object] | None:
    """The ``centre`` group (scalars as float, text as str, the rest float64 arrays), or None
    where the file holds none."""
    p = Path(path)
    try:
        with h5py.File(p, "r", locking=False) as f:
            g = f.get(CENTRE_GROUP)
            if not isinstance(g, h5py.Group):
                return None
            out: dict[str, object] = {}
            for k in CENTRE_NAMES:
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
        raise LandscapeError(f"{p}: its {CENTRE_GROUP} group cannot be read: {e}") from None
