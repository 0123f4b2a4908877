"""Export a loss surface as a VTK XML PolyData file (``.vtp``) for ParaView.

This does what the reference code's ``h52vtp.py`` (tomgoldstein/loss-landscape) offered,
optional upsampling, clipping at ``zmax`` and a log scale, with these fixes:

- non-square grids work (the reference assumed ``nx == ny``); ``z[i, j]`` is at ``(x[j], y[i])``
- upsampling uses ``scipy.interpolate.RegularGridInterpolator`` (``interp2d`` is gone from scipy)
  and refuses a surface with missing points instead of interpolating NaNs into it
- missing points (NaN) are left out: only finite points are written, cells refer to them by
  their index among the written points, and a cell is written only when all its corners are
  finite. No NaN or made-up value (such as z = 0) ever reaches the file, so ParaView's bounds,
  colour ranges and filters see only real data.
- a 1D curve (``y`` None) is written as polylines in the plane y = 0, one per run of
  consecutive finite points (one line cell for a finished curve)

Each point is ``(x, y, value)`` and the value is also point data named ``name``. ``binary``
uses VTK's inline "binary" format: per array, base64 of one UInt64 byte count followed by the
little-endian data, encoded as one stream as VTK's own writer does. Coordinates and values are
Float64, connectivity and offsets Int64.
"""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from engine.errors import ConfigError, LandscapeError

_LOG_SHIFT = 0.1  # the reference's log(z + 0.1): keeps a loss of 0 finite


def write_vtp(
    path: str | os.PathLike[str],
    x: np.ndarray,
    y: np.ndarray | None,
    z: np.ndarray,
    *,
    zmax: float = -1.0,
    log: bool = False,
    interp: int = -1,
    binary: bool = True,
    name: str = "train_loss",
) -> tuple[int, int]:
    """Write the surface to ``path``; returns (number of points, number of cells).

    ``z`` is (ny, nx) with ``z[i, j]`` at ``(x[j], y[i])``, or (nx,) when ``y`` is None;
    NaN marks a missing point. Steps, in the reference's order: ``interp > 0`` resamples to
    ``interp`` points along each axis (cubic where an axis has at least 4 points, else linear;
    results are clipped to the input's value range so cubic overshoot cannot invent e.g. a
    negative loss); ``zmax > 0`` clips values above ``zmax`` to ``zmax``; ``log`` writes
    ``log(z + 0.1)``. Cells are quads (2D) or polylines (1D) over finite points only.
    """
    xs, ys, zs = _validate(x, y, z, name=name, interp=interp)
    if interp > 0:
        xs, ys, zs = _resample(xs, ys, zs, interp)
    zs = _transform(zs, zmax=zmax, log=log)

    finite = np.isfinite(zs)
    if not finite.any():
        raise LandscapeError("nothing to export: the surface has no finished (finite) point")
    # Index of each grid node among the written (finite) points; -1 where not written.
    new_index = np.where(finite, np.cumsum(finite, axis=None).reshape(finite.shape) - 1, -1)

    if ys is None:
        points = np.column_stack([xs[finite], np.zeros(int(finite.sum())), zs[finite]])
        connectivity, offsets = _polylines(finite, new_index)
        cell_tag = "Lines"
    else:
        gx, gy = np.meshgrid(xs, ys)  # (ny, nx) each, matching z's layout
        points = np.column_stack([gx[finite], gy[finite], zs[finite]])
        connectivity, offsets = _quads(finite, new_index)
        cell_tag = "Polys"

    values = zs[finite]
    text = _document(points, values, connectivity, offsets, cell_tag, name=name, binary=binary)
    _write_atomic(Path(path), text.encode("ascii"))
    return len(points), len(offsets)


def _validate(
    x: np.ndarray, y: np.ndarray | None, z: np.ndarray, *, name: str, interp: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Check shapes, coordinates and options; return float64 copies of x, y, z."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("vtp export: the array name must be a non-empty string")
    if isinstance(interp, bool) or not isinstance(interp, int | np.integer):
        raise ConfigError(f"vtp export: interp must be an integer, got {interp!r}")
    if interp == 1:
        raise ConfigError("vtp export: interp must be at least 2 (or <= 0 for no resampling)")
    try:
        xs = np.asarray(x, dtype=np.float64)
        ys = None if y is None else np.asarray(y, dtype=np.float64)
        zs = np.array(z, dtype=np.float64)  # a copy: clipping below must not touch the caller's
    except (TypeError, ValueError) as e:
        raise ConfigError(f"vtp export: coordinates and values must be numeric ({e})") from None

    _check_axis(xs, "x")
    if ys is None:
        if zs.shape != xs.shape:
            raise ConfigError(
                f"vtp export: a 1D surface needs z of shape (nx,) = {xs.shape}, got {zs.shape}"
            )
    else:
        _check_axis(ys, "y")
        expected = (len(ys), len(xs))
        if zs.shape != expected:
            raise ConfigError(
                f"vtp export: z must have shape (ny, nx) = {expected}, got {zs.shape}"
            )
    return xs, ys, zs


def _check_axis(a: np.ndarray, label: str) -> None:
    """A grid axis: 1D, at least 2 finite coordinates, strictly monotonic."""
    if a.ndim != 1 or len(a) < 2:
        raise ConfigError(f"vtp export: {label} must be 1D with at least 2 coordinates")
    if not np.isfinite(a).all():
        raise ConfigError(f"vtp export: {label} coordinates must be finite")
    step = np.diff(a)
    if not ((step > 0).all() or (step < 0).all()):
        raise ConfigError(f"vtp export: {label} coordinates must be strictly monotonic")


def _resample(
    xs: np.ndarray, ys: np.ndarray | None, zs: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Resample onto ``n`` evenly spaced points per axis spanning the input's extent."""
    if not np.isfinite(zs).all():
        # Interpolating across NaNs would spread them (or invent values) without notice.
        raise LandscapeError(
            "vtp export: interpolation needs a finished surface (it has missing points); "
            "export without interp"
        )
    axes = [xs] if ys is None else [ys, xs]
    # Ascending axes, flipping z to match, so every scipy version accepts the grid.
    for dim, a in enumerate(axes):
        if a[0] > a[-1]:
            axes[dim] = a[::-1]
            zs = np.flip(zs, axis=dim)
    method = "cubic" if min(len(a) for a in axes) >= 4 else "linear"
    f = RegularGridInterpolator(tuple(axes), zs, method=method)
    new_axes = [np.linspace(a[0], a[-1], n) for a in axes]
    mesh = np.meshgrid(*new_axes, indexing="ij")
    out = f(np.stack([m.ravel() for m in mesh], axis=-1)).reshape(mesh[0].shape)
    out = np.clip(out, zs.min(), zs.max())
    if ys is None:
        return new_axes[0], None, out
    return new_axes[1], new_axes[0], out


def _transform(zs: np.ndarray, *, zmax: float, log: bool) -> np.ndarray:
    """The reference's value options: clip at zmax (when > 0), then log(z + 0.1)."""
    if zmax > 0:
        zs = np.where(zs > zmax, zmax, zs)  # NaN compares False and stays missing
    if log:
        low = zs[np.isfinite(zs)]
        if low.size and low.min() <= -_LOG_SHIFT:
            raise LandscapeError(
                f"vtp export: log scale writes log(z + {_LOG_SHIFT}) and needs values above "
                f"-{_LOG_SHIFT}; the smallest is {low.min():g}"
            )
        with np.errstate(invalid="ignore"):  # only NaN (missing) can reach here invalid
            zs = np.log(zs + _LOG_SHIFT)
    return zs


def _quads(finite: np.ndarray, new_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connectivity and offsets of the quads whose 4 corners are all finite."""
    # Corners counter-clockwise seen from +z for ascending axes: (i,j) (i,j+1) (i+1,j+1) (i+1,j).
    corners = [
        new_index[:-1, :-1],
        new_index[:-1, 1:],
        new_index[1:, 1:],
        new_index[1:, :-1],
    ]
    keep = finite[:-1, :-1] & finite[:-1, 1:] & finite[1:, 1:] & finite[1:, :-1]
    connectivity = np.stack([c[keep] for c in corners], axis=-1).ravel().astype(np.int64)
    offsets = 4 * np.arange(1, int(keep.sum()) + 1, dtype=np.int64)
    return connectivity, offsets


def _polylines(finite: np.ndarray, new_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One polyline per run of at least 2 consecutive finite points (a gap breaks the line)."""
    edges = np.diff(np.concatenate([[0], finite.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    runs = [(a, b) for a, b in zip(starts, stops, strict=True) if b - a >= 2]
    if not runs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    connectivity = np.concatenate([new_index[a:b] for a, b in runs]).astype(np.int64)
    offsets = np.cumsum([b - a for a, b in runs]).astype(np.int64)
    return connectivity, offsets


def _data_array(
    a: np.ndarray, *, name: str, binary: bool, components: int = 1, extra: str = ""
) -> str:
    """One DataArray element; the declared type follows the array's dtype."""
    vtk_type, dtype = ("Float64", "<f8") if a.dtype.kind == "f" else ("Int64", "<i8")
    data = np.ascontiguousarray(a, dtype=dtype)
    attrs = f'type="{vtk_type}" Name={quoteattr(name)}'
    if components > 1:
        attrs += f' NumberOfComponents="{components}"'
    if extra:
        attrs += f" {extra}"
    if binary:
        # VTK's uncompressed inline binary: the byte count and the data in one base64 stream.
        raw = np.array([data.nbytes], dtype="<u8").tobytes() + data.tobytes()
        body = base64.b64encode(raw).decode("ascii")
        fmt = "binary"
    else:
        # repr() is the shortest text that reads back to the same float64.
        body = " ".join(map(repr, data.ravel().tolist()))
        fmt = "ascii"
    return f'<DataArray {attrs} format="{fmt}">{body}</DataArray>'


def _document(
    points: np.ndarray,
    values: np.ndarray,
    connectivity: np.ndarray,
    offsets: np.ndarray,
    cell_tag: str,
    *,
    name: str,
    binary: bool,
) -> str:
    """The whole .vtp file as text."""
    n_cells = len(offsets)
    counts = {"Verts": 0, "Lines": 0, "Strips": 0, "Polys": 0}
    counts[cell_tag] = n_cells
    piece = " ".join(f'NumberOf{k}="{v}"' for k, v in counts.items())
    # Range attributes let ParaView show the data range before reading the array.
    value_range = f'RangeMin="{float(values.min())!r}" RangeMax="{float(values.max())!r}"'
    scalars = _data_array(values, name=name, binary=binary, extra=value_range)
    coords = _data_array(points, name="Points", binary=binary, components=3)
    lines = [
        '<?xml version="1.0"?>',
        '<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">',
        "  <PolyData>",
        f'    <Piece NumberOfPoints="{len(points)}" {piece}>',
        f"      <PointData Scalars={quoteattr(name)}>",
        f"        {scalars}",
        "      </PointData>",
        "      <Points>",
        f"        {coords}",
        "      </Points>",
    ]
    if n_cells:  # VTK treats an absent cell element as zero cells of that kind
        lines += [
            f"      <{cell_tag}>",
            f"        {_data_array(connectivity, name='connectivity', binary=binary)}",
            f"        {_data_array(offsets, name='offsets', binary=binary)}",
            f"      </{cell_tag}>",
        ]
    lines += ["    </Piece>", "  </PolyData>", "</VTKFile>", ""]
    return "\n".join(lines)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target, fsync, then rename over it: readers never see a torn file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # os.open with 0o666 keeps the user's umask for the final file (mkstemp would force 0600).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise LandscapeError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise LandscapeError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
