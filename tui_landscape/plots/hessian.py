"""What a Hessian file says of its eigenvalues: over which parameters, and how well known.

Every view of a Hessian map says the same three things, made here once: the ``hessian.params``
in force, the worst residual relative to the eigenvalue it belongs to, and how many points did
not converge. ``plot`` and the app put them in the title of every Hessian map (``max_eig``,
``min_eig``, their residuals, ``hessian_converged``, the ratio), ``info`` and the ``hessian``
command print them in full, and the ratio map masks and marks the points that did not converge.

The relative residual of an eigenvalue is ``||H v - lambda v|| / max(|lambda|, FLOOR * radius)``,
radius = max(|lambda_max|, |lambda_min|) at that point: the quantity ``hessian.tol`` bounds
(``engine.hessian.accepted``). For a symmetric matrix the residual bounds the distance to an
eigenvalue, so a relative residual of 1e-3 puts the eigenvalue within 0.1% of itself, or within
1e-3 * FLOOR of lambda_max where it is near zero. ``FLOOR`` is engine.hessian's (a test keeps
them equal): that module imports torch, which a command that only reads files must not.

No plotting package and no torch is imported here.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.formats import HESSIAN_NAMES

if TYPE_CHECKING:
    from engine.formats import Surface

__all__ = [
    "FLOOR",
    "Accuracy",
    "accuracy",
    "accuracy_lines",
    "flagged_points",
    "is_hessian",
    "not_converged",
    "params_text",
    "relative_residual",
    "spectrum_lines",
    "stored_params",
    "title_note",
]

FLOOR = 1e-2  # engine.hessian.FLOOR: near zero, residuals relative to FLOOR * lambda_max


def is_hessian(name: str) -> bool:
    """Whether surface ``name`` is one of a Hessian run's (or the ratio of its eigenvalues)."""
    return name == "ratio" or name in HESSIAN_NAMES


def params_text(params: str) -> str:
    """``hessian.params`` as shown beside every eigenvalue."""
    if params == "2d":
        return "hessian.params = '2d': tensors with 2+ dims, biases and norm weights left out"
    return f"hessian.params = {params!r}"


def relative_residual(value: Any, residual: Any, lmax: Any, lmin: Any) -> np.ndarray:
    """``residual / max(|value|, FLOOR * max(|lmax|, |lmin|))`` elementwise: what
    ``hessian.tol`` bounds (NaN where any input is missing)."""
    v, r = np.asarray(value, dtype=float), np.asarray(residual, dtype=float)
    radius = np.fmax(np.abs(np.asarray(lmax, dtype=float)), np.abs(np.asarray(lmin, dtype=float)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return r / np.maximum(np.abs(v), FLOOR * radius)


def not_converged(s: Surface) -> np.ndarray:
    """The finished points whose eigenvalues did not converge (``hessian_converged`` 0), as a
    boolean array of the grid's shape; all False in a file without the flag."""
    flag = s.values.get("hessian_converged")
    if flag is None:
        return np.zeros(s.completed.shape, dtype=bool)
    return s.completed & (np.asarray(flag) == 0)


def flagged_points(s: Surface) -> tuple[np.ndarray, np.ndarray] | None:
    """The coordinates ``(xs, ys)`` of a 2D map's points that did not converge (marked '?' on
    every Hessian map), or None."""
    bad = not_converged(s)
    if not bad.any() or s.y is None:
        return None
    i, j = np.nonzero(bad)
    return s.x[j], s.y[i]


@dataclass(frozen=True)
class Accuracy:
    """How well a map's eigenvalues are known, over its finished points.

    ``worst_max``: the largest residual of lambda_max relative to lambda_max; ``worst_min``:
    of lambda_min relative to itself (floored at ``FLOOR`` lambda_max); ``worst`` the larger,
    NaN where the file stores no residuals (a file from before they were). ``worst_abs``: the
    largest ``||H v - lambda v||`` itself. ``bad`` of ``points`` did not converge.
    """

    params: str
    tol: float | None
    worst_max: float
    worst_min: float
    worst_abs: float
    bad: int
    points: int

    @property
    def worst(self) -> float:
        return float(np.fmax(self.worst_max, self.worst_min))

    @property
    def has_residuals(self) -> bool:
        return bool(np.isfinite(self.worst))


def _nanmax(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else float("nan")


def stored_params(s: Surface, spectrum: Mapping[str, Any] | None = None) -> str:
    """``hessian.params`` of a file: its spectrum's, else its stored config's ('2d' where
    neither says: the default, and the reference's)."""
    if spectrum and spectrum.get("params"):
        return str(spectrum["params"])
    try:
        section = tomllib.loads(s.provenance.config).get("hessian", {})
        return str(section.get("params", "2d"))
    except (tomllib.TOMLDecodeError, AttributeError):
        return "2d"


def _stored_tol(s: Surface, spectrum: Mapping[str, Any] | None) -> float | None:
    if spectrum and "tol" in spectrum:
        return float(spectrum["tol"])
    try:
        tol = tomllib.loads(s.provenance.config).get("hessian", {}).get("tol")
    except (tomllib.TOMLDecodeError, AttributeError):
        return None
    return None if tol is None else float(tol)


def accuracy(s: Surface, spectrum: Mapping[str, Any] | None = None) -> Accuracy:
    """The accuracy of a Hessian file's map (``spectrum``: its ``read_spectrum``, for the
    params and tol; else they come from the stored config)."""
    v, done = s.values, s.completed
    nan = float("nan")
    worst_max = worst_min = worst_abs = nan
    if {"max_eig", "min_eig", "max_eig_residual", "min_eig_residual"} <= v.keys():
        lmax, lmin = v["max_eig"][done], v["min_eig"][done]
        rmax, rmin = v["max_eig_residual"][done], v["min_eig_residual"][done]
        worst_max = _nanmax(relative_residual(lmax, rmax, lmax, lmin))
        worst_min = _nanmax(relative_residual(lmin, rmin, lmax, lmin))
        worst_abs = _nanmax(np.fmax(rmax, rmin))
    return Accuracy(
        stored_params(s, spectrum),
        _stored_tol(s, spectrum),
        worst_max,
        worst_min,
        worst_abs,
        int(not_converged(s).sum()),
        int(done.sum()),
    )


def title_note(a: Accuracy) -> str:
    """The accuracy in a few words for a plot's title: points not converged first (the
    terminal cuts a long title at its end), then the worst residual, then the params."""
    parts = []
    if a.bad:
        parts.append(f"{a.bad}/{a.points} NOT converged (?)")
    if a.has_residuals:
        parts.append(f"worst residual {a.worst:.1e} x |lambda|")
    else:  # an older file, or the reference's: nothing says how well they are known
        parts.append("no residuals stored")
    parts.append(f"params {a.params}")
    return " | ".join(parts)


def accuracy_lines(a: Accuracy) -> list[str]:
    """The accuracy in full, for ``info``."""
    if not a.has_residuals:
        return ["  no residuals stored (a file from before they were)"]
    tol = f" (hessian.tol {a.tol:g} bounds these)" if a.tol is not None else ""
    conv = f"{a.bad} of {a.points} points NOT converged" if a.bad else "all converged"
    return [
        f"  worst residual ||Hv - lambda v|| over the map: {a.worst_max:.2g} of lambda_max "
        f"(relative to lambda_max), {a.worst_min:.2g} of lambda_min (relative to "
        f"max(|lambda_min|, {FLOOR:g} |lambda_max|)){tol}; {a.worst_abs:.2g} absolute",
        f"  convergence: {conv}",
    ]


def spectrum_lines(sp: Mapping[str, Any]) -> list[str]:
    """The centre's spectrum (a file's ``hessian_spectrum`` values) as a few lines of text."""
    if "lmax" not in sp:
        return []
    lines = [f"At the center ({int(sp['n']):,} parameters; {params_text(str(sp['params']))}):"]
    worst = max(float(sp["lmax_residual"]), float(sp["lmin_residual"]))
    conv = "" if sp.get("converged", 1.0) else "; NOT converged within hessian.max_products"
    lines.append(
        f"  lambda_max {float(sp['lmax']):.6g}, lambda_min {float(sp['lmin']):.6g} (worst "
        f"residual ||Hv - lambda v|| {worst:.2g}, hessian.tol {float(sp['tol']):g}{conv})"
    )
    top = sp.get("top_k")
    if top is not None and len(top) > 1:
        lines.append(f"  top {len(top)}: " + ", ".join(f"{v:.5g}" for v in top))
    if "trace" in sp:
        lines.append(
            f"  trace {float(sp['trace']):.5g} +- {float(sp['trace_se']):.2g} (Hutchinson, "
            f"{int(sp['trace_probes'])} Rademacher probes, +- one standard error)"
        )
    if "slq_nodes" in sp:
        probes, steps = np.shape(sp["slq_nodes"])
        lines.append(
            f"  eigenvalue density: stochastic Lanczos quadrature, {probes} probes x {steps} "
            "steps (in the file's hessian_spectrum group; plot --kind density draws it)"
        )
    return lines
