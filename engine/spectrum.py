"""The Hessian's spectrum at one point: top-k eigenvalues, the trace, the eigenvalue density.

``hutchinson_trace`` estimates ``tr H`` from Rademacher probes ``z' H z`` with the standard
error of their mean. ``slq_density`` is stochastic Lanczos quadrature (Ghorbani, Krishnan and
Xiao, ICML 2019): for each of ``probes`` random unit vectors v, ``steps`` Lanczos steps give a
tridiagonal T whose eigenvalues (nodes) and squared first eigenvector components (weights)
make a Gauss quadrature of the spectral measure seen from v, ``v' f(H) v ~ sum_j w_j f(t_j)``.
Averaged over the probes that is an estimate of ``(1/n) tr f(H)``: the density
``rho(t) = (1/n) sum_i delta(t - lambda_i)``, here drawn with a Gaussian of width ``sigma`` on
a grid. Its moments are exact quadratures: ``int t rho = (1/n) tr H`` and
``int t^2 rho = (1/n) tr H^2`` in expectation (the drawn density adds ``sigma^2`` to the
second). ``center_spectrum`` computes all of it at the model's current weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import eigh_tridiagonal

from engine.errors import ConfigError
from engine.hessian import (
    DEFAULT_TOL,
    MAX_PRODUCTS,
    MeanLossHVP,
    NonFiniteProduct,
    extreme_eigenvalues,
)

__all__ = ["Spectrum", "center_spectrum", "hutchinson_trace", "slq_density"]

SIGMA = 0.01  # the density's Gaussian width, as a fraction of the nodes' span
GRID_POINTS = 401  # density values, from the lowest node - 5 sigma to the highest + 5 sigma


def hutchinson_trace(hvp: MeanLossHVP, samples: int = 100, seed: int = 0) -> tuple[float, float]:
    """Hutchinson's estimate of ``tr H`` from ``samples`` Rademacher vectors, and its standard
    error (the sample standard deviation of ``z' H z`` over sqrt(samples))."""
    if samples < 2:
        raise ConfigError(f"Expected `samples` >= 2, but got {samples}.")
    rng = np.random.default_rng(seed)
    vals = np.empty(samples)
    for k in range(samples):
        z = rng.integers(0, 2, hvp.n).astype(np.float64) * 2.0 - 1.0
        vals[k] = z @ _finite(hvp(z))
    return float(vals.mean()), float(vals.std(ddof=1) / np.sqrt(samples))


def _finite(w: np.ndarray) -> np.ndarray:
    if not np.isfinite(w).all():
        raise NonFiniteProduct("the Hessian-vector product is not finite here (NaN or inf)")
    return w


def _tridiagonal(hvp: MeanLossHVP, v: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` Lanczos steps from unit ``v`` (full reorthogonalisation): T's diagonal and
    off-diagonal, shorter where the Krylov space closes early."""
    q = np.zeros((steps, hvp.n))
    q[0] = v
    alpha, beta = [], []
    for j in range(steps):
        w = _finite(hvp(q[j])).copy()
        alpha.append(float(q[j] @ w))
        for _ in range(2):  # twice is enough (DGKS)
            w -= (q[: j + 1] @ w) @ q[: j + 1]
        b = float(np.linalg.norm(w))
        if j == steps - 1 or b <= 1e-12 * max(abs(a) for a in alpha):
            break
        beta.append(b)
        q[j + 1] = w / b
    return np.array(alpha), np.array(beta)


def slq_density(
    hvp: MeanLossHVP, probes: int = 5, steps: int = 40, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: nodes and weights, each of shape ``(probes, steps)``.

    Each probe is a Rademacher vector over sqrt(n); a Krylov space that closes before
    ``steps`` leaves its row's last nodes at 0 with weight 0. Each row's weights sum to 1.
    """
    if probes < 1 or steps < 2:
        raise ConfigError(f"Expected `probes` >= 1 and `steps` >= 2, but got {probes}, {steps}.")
    steps = min(steps, hvp.n)
    rng = np.random.default_rng(seed)
    nodes = np.zeros((probes, steps))
    weights = np.zeros((probes, steps))
    for k in range(probes):
        v = (rng.integers(0, 2, hvp.n).astype(np.float64) * 2.0 - 1.0) / np.sqrt(hvp.n)
        a, b = _tridiagonal(hvp, v, steps)
        theta, s = eigh_tridiagonal(a, b)
        nodes[k, : len(a)] = theta
        weights[k, : len(a)] = s[0] ** 2
    return nodes, weights


def density_on_grid(nodes: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The SLQ density drawn with Gaussians: grid ``t``, ``rho(t)``, and the width ``sigma``."""
    used = weights > 0
    lo, hi = float(nodes[used].min()), float(nodes[used].max())
    sigma = SIGMA * max(hi - lo, abs(hi), abs(lo), np.finfo(np.float64).tiny)
    t = np.linspace(lo - 5 * sigma, hi + 5 * sigma, GRID_POINTS)
    g = np.exp(-0.5 * ((t[:, None] - nodes[used][None, :]) / sigma) ** 2)
    rho = (g * weights[used][None, :]).sum(1) / (nodes.shape[0] * sigma * np.sqrt(2 * np.pi))
    return t, rho, sigma


@dataclass(frozen=True)
class Spectrum:
    """The Hessian's spectrum at one point (the centre of a map, or a model's own weights).

    ``params`` is ``hessian.params`` (``2d``: tensors with 2+ dims, biases left out; ``all``),
    ``n`` the parameter count. ``top`` are the ``top_k`` largest eigenvalues, largest first,
    with the residuals ``||H v - lambda v||`` of their unit eigenvectors; ``converged`` says
    whether each eigenvalue met ``tol`` (``engine.hessian.accepted``). ``trace`` is Hutchinson's
    estimate from ``trace_probes`` Rademacher probes, ``trace_se`` its standard error (NaN with
    no probes). ``density`` is the SLQ density on the grid ``density_t`` (Gaussians of width
    ``density_sigma``), from ``nodes`` and ``weights`` (one row per probe).
    """

    params: str
    n: int
    tol: float
    lmax: float
    lmin: float
    rmax: float
    rmin: float
    converged: bool
    top: np.ndarray
    top_residuals: np.ndarray
    trace: float = float("nan")
    trace_se: float = float("nan")
    trace_probes: int = 0
    density_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    density: np.ndarray = field(default_factory=lambda: np.zeros(0))
    density_sigma: float = float("nan")
    nodes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    products: int = 0

    def moments(self) -> tuple[float, float]:
        """The density's quadrature moments ``int t rho`` and ``int t^2 rho`` (no sigma)."""
        if self.nodes.size == 0:
            return float("nan"), float("nan")
        m1 = (self.weights * self.nodes).sum(1).mean()
        m2 = (self.weights * self.nodes**2).sum(1).mean()
        return float(m1), float(m2)

    def file_values(self) -> dict[str, object]:
        """The values under the file's names (``formats.SPECTRUM_NAMES``); unset parts left out."""
        out: dict[str, object] = {
            "params": self.params, "n": self.n, "tol": self.tol,
            "lmax": self.lmax, "lmin": self.lmin, "lmax_residual": self.rmax,
            "lmin_residual": self.rmin, "converged": float(self.converged),
            "top_k": self.top, "top_k_residual": self.top_residuals,
        }  # fmt: skip
        if self.trace_probes:
            out.update(trace=self.trace, trace_se=self.trace_se, trace_probes=self.trace_probes)
        if self.nodes.size:
            out.update(
                density_grid=self.density_t, density=self.density,
                density_sigma=self.density_sigma, slq_nodes=self.nodes, slq_weights=self.weights,
            )  # fmt: skip
        return out

    def as_dict(self) -> dict[str, object]:
        """Every field by name (arrays as numpy), for the API's result."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def center_spectrum(
    hvp: MeanLossHVP,
    params: str,
    tol: float = DEFAULT_TOL,
    top_k: int = 1,
    trace_probes: int = 0,
    density_probes: int = 0,
    density_steps: int = 40,
    max_products: int = MAX_PRODUCTS,
    seed: int = 0,
) -> Spectrum:
    """Top-k and extreme eigenvalues, the trace (``trace_probes`` >= 2) and the SLQ density
    (``density_probes`` >= 1) of ``hvp`` at the model's current weights."""
    before = hvp.products
    ex = extreme_eigenvalues(hvp, tol, seed=seed, top_k=top_k, max_products=max_products)
    extra: dict[str, object] = {}
    if trace_probes:
        tr, se = hutchinson_trace(hvp, trace_probes, seed=seed)
        extra.update(trace=tr, trace_se=se, trace_probes=trace_probes)
    if density_probes:
        nodes, weights = slq_density(hvp, density_probes, density_steps, seed=seed + 1)
        t, rho, sigma = density_on_grid(nodes, weights)
        extra.update(nodes=nodes, weights=weights, density_t=t, density=rho, density_sigma=sigma)
    return Spectrum(
        params, hvp.n, tol, ex.lmax, ex.lmin, ex.rmax, ex.rmin, ex.converged,
        np.array(ex.top), np.array(ex.top_residuals), **extra,  # type: ignore[arg-type]
        products=hvp.products - before,
    )  # fmt: skip
