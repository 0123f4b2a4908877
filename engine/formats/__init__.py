"""The files tui-landscape reads and writes: surfaces, directions, projected paths.

One package owns every file format, as cooler keeps its names in one constants module:
``constants`` (dataset and attribute names, side-file suffixes, the format version),
``provenance`` (where a surface came from, typed), ``layout`` (which datasets are surfaces,
``surface_names``, and the checks made in order), ``reader`` (``read_surface``,
``surface_info``), ``writer`` (the journalled ``SurfaceWriter``), ``journal``, ``lock``
(``acquire_lock``, ``lock_holder``, ``check_output``), ``files`` (the side files' names,
``sidecars`` and ``removable_sidecars``: what to delete with a surface), ``directions``,
``projection``, ``spectrum`` (the Hessian's spectrum at the centre) and ``centre`` (the
directions' norms, an automatic range's probe).
``docs/surface-format.md`` is the written schema.
"""

from engine.errors import clean_text
from engine.formats.centre import centre_datasets, read_centre
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
from engine.formats.files import (
    directions_path,
    journal_path,
    log_path,
    removable_sidecars,
    run_config_path,
    sidecars,
)
from engine.formats.journal import read_journal
from engine.formats.layout import surface_names
from engine.formats.lock import LOCK_FD_ENV, Lock, acquire_lock, check_output, lock_holder
from engine.formats.projection import (
    Trajectory,
    has_trajectory,
    path_datasets,
    read_trajectory,
    write_projection,
)
from engine.formats.provenance import Provenance
from engine.formats.reader import Surface, SurfaceInfo, read_surface, surface_info
from engine.formats.spectrum import read_spectrum, spectrum_datasets
from engine.formats.writer import SurfaceWriter

__all__ = [
    "HESSIAN_NAMES",
    "LAYOUT_OURS",
    "LAYOUT_REFERENCE",
    "LOCK_FD_ENV",
    "SURFACE_FORMAT",
    "SURFACE_FORMAT_VERSION",
    "SURFACE_NAMES",
    "SURFACE_SPLITS",
    "Lock",
    "Provenance",
    "Surface",
    "SurfaceInfo",
    "SurfaceWriter",
    "Trajectory",
    "acquire_lock",
    "centre_datasets",
    "check_output",
    "clean_text",
    "direction_hash",
    "directions_path",
    "has_trajectory",
    "journal_path",
    "load_directions",
    "lock_holder",
    "log_path",
    "path_datasets",
    "read_centre",
    "read_explained_variance",
    "read_journal",
    "read_spectrum",
    "read_surface",
    "read_trajectory",
    "removable_sidecars",
    "run_config_path",
    "save_directions",
    "sidecars",
    "spectrum_datasets",
    "surface_info",
    "surface_names",
    "write_projection",
]
