"""The difference of two surfaces over the same directions and the same grid: ``B - A``.

A difference is only meaningful point by point when both files evaluated the same models:
the same coordinates along the same directions. ``require_same_plane`` refuses, in one line
naming what differs, two files that do not (``surface_difference`` calls it first); the
difference is NaN wherever either file is missing the point (unfinished or failed).
"""

from __future__ import annotations

import numpy as np

from engine.errors import ConfigError
from engine.formats import Surface

__all__ = ["require_same_plane", "surface_difference"]


def _shape(s: Surface) -> str:
    return "x".join(str(n) for n in s.shape)


def _axis_text(s: Surface) -> str:
    g = s.grid
    return f"x {g.x.spec()}" + (f", y {g.y.spec()}" if g.y is not None else "")


def _same_coords(u: np.ndarray | None, v: np.ndarray | None) -> bool:
    if u is None or v is None:
        return u is None and v is None
    # Both are read from files written from the same 'min:max:num': equal up to rounding.
    return u.shape == v.shape and bool(np.allclose(u, v, rtol=1e-9, atol=1e-12))


def require_same_plane(a: Surface, b: Surface) -> None:
    """Refuse two surfaces that are not over the same grid and the same directions.

    The directions are the same when both files record the same content hash (ours), or,
    where either has none (the reference's files, files written without one), the same
    direction file; files that record neither cannot be told apart and are refused.
    """
    an, bn = a.path.name, b.path.name
    if (a.y is None) != (b.y is None):
        raise ConfigError(
            f"cannot take a difference: {an} is {len(a.shape)}D ({_shape(a)}), "
            f"{bn} is {len(b.shape)}D ({_shape(b)})"
        )
    if not (_same_coords(a.x, b.x) and _same_coords(a.y, b.y)):
        raise ConfigError(
            f"cannot take a difference: the grids differ ({an}: {_axis_text(a)}; "
            f"{bn}: {_axis_text(b)})"
        )
    pa, pb = a.provenance, b.provenance
    if pa.dir_hash and pb.dir_hash:
        if pa.dir_hash != pb.dir_hash:
            raise ConfigError(
                f"cannot take a difference: the directions differ ({an}: "
                f"{pa.dir_hash[:19]}..., {bn}: {pb.dir_hash[:19]}...)"
            )
    elif not (a.dir_file and a.dir_file == b.dir_file):
        missing = ", ".join(s.path.name for s in (a, b) if not s.provenance.dir_hash)
        raise ConfigError(
            f"cannot take a difference: the directions cannot be shown to be the same "
            f"({missing} records no direction hash, and the direction files differ: "
            f"{a.dir_file or '(none)'}, {b.dir_file or '(none)'})"
        )
    if pa.dir_type and pb.dir_type and pa.dir_type != pb.dir_type:
        # The same vectors applied to the weights or to the whole state are other planes.
        raise ConfigError(
            f"cannot take a difference: the directions differ in type "
            f"({an}: {pa.dir_type}, {bn}: {pb.dir_type})"
        )


def surface_difference(a: Surface, b: Surface, name: str) -> np.ndarray:
    """``B - A`` of surface ``name``, point by point, NaN where either is missing.

    Raises ``ConfigError`` when the files are not over the same grid and directions
    (``require_same_plane``) or when either lacks the surface.
    """
    require_same_plane(a, b)
    for s in (a, b):
        if name not in s.values:
            raise ConfigError(f"{s.path} has no surface {name!r}; it has: {', '.join(s.values)}")
    za = np.asarray(a.values[name], dtype=float)
    zb = np.asarray(b.values[name], dtype=float)
    both = a.completed.astype(bool) & b.completed.astype(bool)
    with np.errstate(invalid="ignore", over="ignore"):
        d = zb - za  # inf - inf is NaN: a diverged point in both is no number either
    return np.where(both & np.isfinite(d), d, np.nan)
