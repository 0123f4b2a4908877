"""The files tui-landscape reads and writes: surfaces, directions, projected paths.

One package owns every file format, as cooler keeps its names in one constants module:
``constants`` (dataset and attribute names, side-file suffixes, the format version),
``surface`` (the journalled writer, the reader, ``surface_info``, ``sidecars`` and
``removable_sidecars``: what to delete with a surface, and ``surface_names``: which
datasets are surfaces, in which order),
``directions``, ``projection`` and ``spectrum`` (the Hessian's spectrum at the centre).
``docs/surface-format.md`` is the written schema.
"""

from engine.formats.constants import (
    HESSIAN_NAMES,
    LAYOUT_OURS,
    LAYOUT_REFERENCE,
    SURFACE_FORMAT,
    SURFACE_FORMAT_VERSION,
    SURFACE_NAMES,
    SURFACE_SPLITS,
)
from engine.formats.directions import (
    direction_hash,
    load_directions,
    read_explained_variance,
    save_directions,
)
from engine.formats.projection import (
    Trajectory,
    has_trajectory,
    path_datasets,
    read_trajectory,
    write_projection,
)
from engine.formats.spectrum import read_spectrum, spectrum_datasets
from engine.formats.surface import (
    Lock,
    Surface,
    SurfaceInfo,
    SurfaceWriter,
    acquire_lock,
    check_output,
    clean_text,
    directions_path,
    journal_path,
    lock_holder,
    read_journal,
    read_surface,
    removable_sidecars,
    sidecars,
    surface_info,
    surface_names,
)

__all__ = [
    "HESSIAN_NAMES",
    "LAYOUT_OURS",
    "LAYOUT_REFERENCE",
    "SURFACE_FORMAT",
    "SURFACE_FORMAT_VERSION",
    "SURFACE_NAMES",
    "SURFACE_SPLITS",
    "Lock",
    "Surface",
    "SurfaceInfo",
    "SurfaceWriter",
    "Trajectory",
    "acquire_lock",
    "check_output",
    "clean_text",
    "direction_hash",
    "directions_path",
    "has_trajectory",
    "journal_path",
    "load_directions",
    "lock_holder",
    "path_datasets",
    "read_explained_variance",
    "read_journal",
    "read_spectrum",
    "read_surface",
    "read_trajectory",
    "removable_sidecars",
    "save_directions",
    "sidecars",
    "spectrum_datasets",
    "surface_info",
    "surface_names",
    "write_projection",
]
