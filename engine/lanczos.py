"""Thick-restart Lanczos for both ends of a symmetric operator's spectrum, in float64.

``lanczos`` takes any product ``op(v) -> H v`` (for a Hessian map, ``engine.hessian``'s
``MeanLossHVP``) and finds the smallest and the ``top`` largest eigenpairs from one Krylov
space, testing convergence after every product: each eigenvalue on its own (``accepted``),
its residual against ``tol`` times itself, or times ``FLOOR * radius`` where it is near zero.
A product with a NaN or inf ends the run (``NonFiniteProduct``). numpy and scipy only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh

from engine.errors import LandscapeError

__all__ = ["FLOOR", "KEEP", "KRYLOV", "NonFiniteProduct", "Ritz", "accepted", "lanczos"]

log = logging.getLogger(__name__)

FLOOR = 1e-2  # near zero, the tolerance is relative to FLOOR * max(|lmax|, |lmin|) instead
KRYLOV = 40  # Lanczos basis size before a thick restart (float64, 40 x n numbers)
KEEP = 4  # Ritz vectors kept at each end on a restart


class NonFiniteProduct(LandscapeError):
    """A Hessian-vector product with a NaN or inf: a map records that point as failed."""


def accepted(value: float, residual: float, radius: float, tol: float, floor: float = FLOOR):
    """The convergence test of one eigenvalue: ``residual <= tol * max(|value|, floor * radius)``.

    ``radius`` is max(|lambda_max|, |lambda_min|), lambda_max near a minimum. For a symmetric
    matrix the residual bounds the distance to an eigenvalue, so an accepted eigenvalue is
    within ``tol`` of itself, or within ``tol * floor * radius`` where it is near zero.
    """
    return residual <= tol * max(abs(value), floor * radius)


@dataclass(frozen=True)
class Ritz:
    """What ``lanczos`` found: the Ritz values and residuals at both ends, and the end vectors."""

    values: list[float]  # ascending: the bottom one, then the top ``k`` (ascending too)
    residuals: list[float]
    vmax: np.ndarray
    vmin: np.ndarray
    converged: bool
    passed: tuple[int, int] = (0, 0)  # products after which the top, the bottom first passed


def lanczos(
    op: Callable[[np.ndarray], np.ndarray],
    n: int,
    v0: np.ndarray,
    tol: float,
    top: int = 1,
    floor: float = FLOOR,
    krylov: int = KRYLOV,
    keep: int = KEEP,
    *,
    max_products: int,
    min_products: int = 1,
) -> Ritz:
    """Thick-restart Lanczos in float64 for the smallest and the ``top`` largest eigenpairs.

    Full reorthogonalisation (twice, DGKS) keeps the basis orthonormal, so the projected
    matrix ``T = Q^T H Q`` is built from the Gram-Schmidt coefficients and the residual of a
    Ritz pair ``(theta, Q s)`` is ``|beta * s[-1]|`` (``H Q = Q T + beta q e^T``). The test
    (``accepted``, each eigenvalue against itself) runs after every product. On a full basis
    the Ritz vectors at each end (``keep``, and ``top + 2`` at the top) and the newest Lanczos
    vector become the new basis (Wu and Simon's thick restart; the Lanczos relation holds).
    """
    top = max(1, min(top, n))
    keep_top, keep_bot = max(keep, top + 2), keep
    krylov = min(max(krylov, keep_top + keep_bot + 8), n)
    q = np.zeros((krylov, n))
    t = np.zeros((krylov, krylov))
    q[0] = v0 / np.linalg.norm(v0)
    m, products = 1, 0  # basis size; the newest vector q[m - 1] is the one expanded
    passed = [0, 0]  # profile: the products after which the top, the bottom first passed
    tiny = np.finfo(np.float64).tiny
    while True:
        j = m - 1
        w = np.asarray(op(q[j]), dtype=np.float64).reshape(-1)
        products += 1
        if not np.isfinite(w).all():
            raise NonFiniteProduct("the Hessian-vector product is not finite here (NaN or inf)")
        h = q[:m] @ w
        w -= h @ q[:m]
        h2 = q[:m] @ w
        w -= h2 @ q[:m]
        h += h2
        t[:m, j] = h
        t[j, :m] = h
        beta = float(np.linalg.norm(w))
        theta, s = eigh(t[:m, :m])
        radius = max(abs(theta[0]), abs(theta[-1]), tiny)
        res = np.abs(beta * s[-1])
        wanted = [0, *range(max(1, m - top), m)] if m > 1 else [0]
        ok = [accepted(theta[i], res[i], radius, tol, floor) for i in wanted]
        for end, good in enumerate((ok[-1], ok[0])):  # wanted runs from 0 (bottom) to m-1 (top)
            if good and not passed[end]:
                passed[end] = products
        done = products >= min_products and m >= min(top + 1, n) and all(ok)
        # beta ~ 0: the basis spans an invariant subspace, its Ritz pairs are exact.
        exact = beta <= 1e-12 * radius or m == n
        if done or exact or products >= max_products:
            if not (done or exact):
                log.info("Lanczos stopped after %d products with residuals %s", products, res)
            ritz = s[:, [-1, 0]].T @ q[:m]
            vmax, vmin = (v / np.linalg.norm(v) for v in ritz)
            return Ritz(
                [float(theta[i]) for i in wanted],
                [float(res[i]) for i in wanted],
                vmax,
                vmin,
                bool(done or exact),
                (passed[0], passed[1]),
            )
        if m < krylov:
            q[m] = w / beta
            m += 1
            continue
        idx = [*range(keep_bot), *range(m - keep_top, m)]
        r = len(idx)
        q[:r] = s[:, idx].T @ q[:m]
        t[:] = 0.0
        t[range(r), range(r)] = theta[idx]
        q[r] = w / beta
        m = r + 1
