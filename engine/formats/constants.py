"""Every name our files use, in one place: datasets, attributes, side files, versions.

The layouts are the reference code's (tomgoldstein/loss-landscape) plus our additions;
``docs/surface-format.md`` is the written schema of all three file kinds. Change a name
here only together with that page and its change log: files on users' disks keep the old one.
"""

from __future__ import annotations

__all__ = [
    "ATTR_BATCH_SIZE",
    "ATTR_CONFIG",
    "ATTR_CREATED",
    "ATTR_DEVICE",
    "ATTR_DIR_SHA256",
    "ATTR_DIR_TYPE",
    "ATTR_FORMAT",
    "ATTR_FORMAT_VERSION",
    "ATTR_ID",
    "ATTR_TOOL_VERSION",
    "ATTR_TYPE",
    "ATTR_UPDATED",
    "CENTRE_GROUP",
    "CENTRE_NAMES",
    "CONFIG_SUFFIX",
    "DIRECTIONS_FORMAT",
    "DIRECTIONS_SUFFIX",
    "DIR_FILE",
    "EXPLAINED_VARIANCE",
    "EXPLAINED_VARIANCE_RATIO",
    "FAILED_ERROR",
    "FAILED_INDEX",
    "HESSIAN_NAMES",
    "JOURNAL_SUFFIX",
    "LAYOUT_OURS",
    "LAYOUT_REFERENCE",
    "LOCK_SUFFIX",
    "LOG_SUFFIX",
    "MASK",
    "METRIC_NAME",
    "PCA_NAMES",
    "PROJECTION_FORMAT",
    "PROJ_X",
    "PROJ_X_LSQ",
    "PROJ_Y",
    "PROJ_Y_LSQ",
    "SINGULAR_VALUES",
    "SPECTRUM_GROUP",
    "SPECTRUM_NAMES",
    "SURFACE_FORMAT",
    "SURFACE_FORMAT_VERSION",
    "SURFACE_NAMES",
    "SURFACE_SPLITS",
    "TMP_SUFFIX",
    "UNFINISHED",
    "XCOORDS",
    "XDIRECTION",
    "YCOORDS",
    "YDIRECTION",
]

# Format tags (root attribute ``format``) and the surface format's version.
SURFACE_FORMAT = "tui-landscape-surface"
SURFACE_FORMAT_VERSION = 2
DIRECTIONS_FORMAT = "tui-landscape-directions"
PROJECTION_FORMAT = "tui-landscape-projection"

# What ``Surface.layout`` and ``SurfaceInfo.layout`` say.
LAYOUT_OURS = "tui-landscape"
LAYOUT_REFERENCE = "reference"

# Surface file datasets (the reference's names, then ours).
XCOORDS = "xcoordinates"
YCOORDS = "ycoordinates"
SURFACE_NAMES = ("train_loss", "train_acc", "test_loss", "test_acc")
# A loss function's other metrics are surfaces too, one per split: ``train_abs_err``. Only this
# prefix makes a dataset a surface, so ours for other things (``proj_xcoord``) never are.
SURFACE_SPLITS = ("train", "test")
METRIC_NAME = rf"({'|'.join(SURFACE_SPLITS)})_[A-Za-z][A-Za-z0-9_]*"  # matched whole
# Hessian runs: the reference's eigenvalue names, their residuals ||Hv - lambda v||, whether
# both met hessian.tol (1) or the product budget ran out first (0), and the products per point.
HESSIAN_NAMES = (
    "max_eig",
    "min_eig",
    "max_eig_residual",
    "min_eig_residual",
    "hessian_converged",
    "hvp_products",
)
# The Hessian's spectrum at the centre (the model's own weights), datasets in this group:
# parameter count and hessian.params, top-k eigenvalues and residuals, the Hutchinson trace,
# the stochastic-Lanczos-quadrature density (grid, values, width) with its nodes and weights.
SPECTRUM_GROUP = "hessian_spectrum"
SPECTRUM_NAMES = (
    "params",
    "n",
    "tol",
    "lmax",
    "lmin",
    "lmax_residual",
    "lmin_residual",
    "converged",
    "top_k",
    "top_k_residual",
    "trace",
    "trace_se",
    "trace_probes",
    "density_grid",
    "density",
    "density_sigma",
    "slq_nodes",
    "slq_weights",
)
# What a run records about its centre and directions (engine/formats/centre.py): each
# direction's norm over the weights' (all moved tensors; per tensor with their names), and for
# an automatic range the centre's loss (and which surface), the threshold and the probes
# (rows of axis, step, loss).
CENTRE_GROUP = "centre"
CENTRE_NAMES = (
    "dir_norm_ratio",
    "tensor_names",
    "tensor_ratio_x",
    "tensor_ratio_y",
    "loss_name",
    "loss",
    "auto_threshold",
    "auto_probes",
)
DIR_FILE = "dir_file"
MASK = "completed"
FAILED_INDEX = "failed_index"
FAILED_ERROR = "failed_error"
UNFINISHED = -1.0  # what the reference writes at points not computed yet

# Projected training path: the reference's cosine projection, and our least-squares one.
PROJ_X = "proj_xcoord"
PROJ_Y = "proj_ycoord"
PROJ_X_LSQ = "proj_xcoord_lsq"
PROJ_Y_LSQ = "proj_ycoord_lsq"

# Direction file groups (one dataset per tensor, '0'..'N-1') and the PCA root datasets.
XDIRECTION = "xdirection"
YDIRECTION = "ydirection"
EXPLAINED_VARIANCE_RATIO = "explained_variance_ratio_"
SINGULAR_VALUES = "singular_values_"
EXPLAINED_VARIANCE = "explained_variance_"
PCA_NAMES = (EXPLAINED_VARIANCE_RATIO, SINGULAR_VALUES, EXPLAINED_VARIANCE)

# Root attributes.
ATTR_FORMAT = "format"
ATTR_FORMAT_VERSION = "format_version"
ATTR_TOOL_VERSION = "tool_version"
ATTR_CREATED = "created"
ATTR_UPDATED = "updated"
ATTR_ID = "id"  # ties a surface file's journal to it
ATTR_CONFIG = "config"
ATTR_DIR_SHA256 = "dir_file_sha256"
ATTR_DIR_TYPE = "dir_type"
ATTR_DEVICE = "device"
ATTR_BATCH_SIZE = "batch_size"  # the evaluation batch size, and whether "auto" chose it
ATTR_TYPE = "type"  # a direction file's ``weights`` or ``states``

# Side files of a surface ``FILE.h5``: ``FILE.h5.journal`` etc., and ``FILE.directions.h5``
# (``engine.formats.files`` builds the paths and lists them: ``sidecars``).
JOURNAL_SUFFIX = ".journal"
LOCK_SUFFIX = ".lock"
TMP_SUFFIX = ".tmp"
DIRECTIONS_SUFFIX = ".directions.h5"
# A run started detached from the app: its output, and the config it runs when the setup was
# not saved (``tui_landscape.detach``). A delete takes both with the surface.
LOG_SUFFIX = ".log"
CONFIG_SUFFIX = ".toml"
