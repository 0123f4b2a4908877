"""What a run records about its centre and directions (the ``centre`` group of a surface):
each direction's norm relative to the weights, over all moved tensors and per tensor, and,
for an automatic range (``grid.x = "auto"``), the loss at the centre and the probe that chose
the range. Written once with the file (``SurfaceWriter.create``'s extras); older files and the
reference's have none (``read_centre`` gives None).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.formats.constants import CENTRE_GROUP, CENTRE_NAMES
from engine.formats.spectrum import group_datasets, read_group

__all__ = ["centre_datasets", "read_centre"]


def centre_datasets(values: dict[str, object]) -> dict[str, np.ndarray]:
    """``values`` (keys among ``CENTRE_NAMES``) as extras for ``SurfaceWriter.create``."""
    return group_datasets(CENTRE_GROUP, CENTRE_NAMES, values)


def read_centre(path: str | Path) -> dict[str, object] | None:
    """The ``centre`` group (scalars as float, text as str, the rest float64 arrays), or None
    where the file holds none."""
    return read_group(path, CENTRE_GROUP, CENTRE_NAMES)
