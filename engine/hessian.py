"""Hessian eigenvalue maps: Hessian-vector products of the mean loss and its extreme eigenvalues.

``MeanLossHVP`` multiplies a vector by the Hessian of the *mean* loss over a split (the
reference code sums per-batch Hessians, so its eigenvalues grow with the number of batches);
``extreme_eigenvalues`` finds lambda_max and lambda_min (and the top k) from those products.
Method ``warm`` is a thick-restart Lanczos in float64 (``engine.lanczos``) that takes both
ends from one Krylov space, tests convergence after every product, and starts from the
neighbouring grid point's eigenvectors; ``snake_order`` visits a grid so that each point's
neighbour comes just before it. Method ``cold`` is the reference's: ARPACK ``eigsh(k=1)`` for
the dominant eigenvalue from a random start, then again on ``H - 0.51 * lmax * I`` for the
other end. The Hessian is taken over tensors with 2+ dims by default (``hessian.params =
'2d'``, as the reference: biases and norm layers' weights are left out); ``'all'`` takes
every trainable tensor.

Tolerance (``hessian.tol``): each eigenvalue is accepted on its own, when the residual of its
unit eigenvector ``||H v - lambda v||`` is at most ``tol * max(|lambda|, FLOOR * radius)``,
radius = max(|lambda_max|, |lambda_min|) (lambda_max near a minimum). For a symmetric matrix the
residual bounds the distance to an eigenvalue, so an accepted eigenvalue is within ``tol`` of
itself, or within ``tol * FLOOR`` of the radius where it is near zero (``FLOOR`` = 1e-2). With
the default tol 1e-3 lambda_min is within 1% of itself wherever |lambda_min| >= 1e-3 lambda_max
(0.1% wherever |lambda_min| >= 1e-2 lambda_max). The residuals are stored beside the values; a
point whose eigenvalues did not pass within ``hessian.max_products`` products is kept with
``converged`` False (``hessian_converged`` = 0 in the file). Like ARPACK's, the test cannot see
an eigenvalue the Krylov space has not picked up yet: a minimum number of products (and noise
in warm starts) guards against stopping at the extreme eigenvalue's neighbour.

Models whose attention has no double backward (``scaled_dot_product_attention``'s fused CPU
and flash kernels) have a Hessian too: ``mode = 'auto'`` times forward-over-reverse and
reverse-over-reverse, each with the default kernels and under the math SDPA kernel
(``torch.nn.attention.sdpa_kernel``), on the first batch, and keeps the fastest that works
(on a busy 2-core CPU reverse-over-reverse was the faster for digits ResNet-20).

A point's products share one gradient graph (``reuse``, the default): the weights do not move
while Lanczos runs there, so reverse-over-reverse builds the gradient with ``create_graph``
once per batch and point, and each product is one backward pass through it (on a busy 2-core
CPU 1.5-1.7 gradients a product instead of 2.0-2.7 for the digits ResNets;
``benchmarks/bench_hessian.py --speed``). The graphs are dropped when any parameter or buffer
moves (its version counter), and kept only while an estimate of their size over all batches
fits ``REUSE_BYTES``; else each product rebuilds its own, as with ``reuse=False``.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn
from torch.func import functional_call, grad, jvp, vjp

from engine.directions import targets
from engine.errors import ConfigError, describe
from engine.evaluate import check_model_labels, loss_sums, read_sums
from engine.hvp_graph import gradient_graph, graph_product, math_kernel, no_hessian, saved_bytes
from engine.lanczos import FLOOR, NonFiniteProduct, accepted, lanczos  # the first 3: ours too
from engine.losses import Loss, LossFn, fused_entry, resolve_loss
from engine.splits import Batches, Split, split_batches

__all__ = [
    "DEFAULT_TOL",
    "FLOOR",
    "HVP_MODES",
    "MAX_PRODUCTS",
    "Extremes",
    "MeanLossHVP",
    "NonFiniteProduct",
    "accepted",
    "eigenvector_directions",
    "extreme_eigenvalues",
    "hessian_params",
    "snake_order",
]

log = logging.getLogger(__name__)

DEFAULT_TOL = 1e-3  # each eigenvalue to 0.1% of itself (``accepted``)
MAX_PRODUCTS = 1000  # per point, then the point is marked not converged
REFERENCE_SHIFT = 0.51  # the reference's shift for the smallest eigenvalue: H - 0.51 * lmax * I
_START_NOISE = 0.5  # weight of a random unit vector mixed into a warm start (see _start_vector)
# Fewest products before convergence is accepted. From a random start, as many as ARPACK's
# default basis (ncv = 20) builds before its first test: an eigenvalue close to the extreme one
# needs some steps to show up at all, and stopping earlier can return its neighbour.
_MIN_COLD = 20
_MIN_WARM = 8
# How a product is taken: forward-over-reverse or reverse-over-reverse, with the default
# attention kernels or under the math SDPA kernel (whose ops all have double derivatives).
HVP_MODES = ("fwd", "fwd-math", "rev", "rev-math")
# What ``auto`` tries, in order: the reverse modes, then forward-over-reverse where neither works.
AUTO_ORDER = ("rev", "rev-math", "fwd", "fwd-math")
# Reverse-over-reverse products at one point share the gradient's graph (``reuse``): kept for
# every batch while this estimate of its size (3x a first-order pass's saved tensors) fits.
REUSE_BYTES = 1 << 30


def hessian_params(model: nn.Module, which: str = "2d") -> list[str]:
    """Names of the parameters the Hessian is over: ``2d`` (2+ dims, the reference's) or ``all``."""
    if which not in ("2d", "all"):
        raise ConfigError(f"Expected `which` to be '2d' or 'all', but got {which!r}.")
    return [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (which == "all" or p.dim() > 1)
    ]


class _LossSum(nn.Module):
    """A loss function's summed ``loss`` on one batch, as a module of the model's weights."""

    def __init__(self, model: nn.Module, fn: LossFn) -> None:
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, batch: object) -> torch.Tensor:
        return self.fn(self.model, batch)["loss"].sum()


def _count(fn: LossFn | Loss, model: nn.Module, batches) -> float:
    """The summed ``count`` of a loss over some batches (samples, where it gives none)."""
    sums, samples = loss_sums(fn, model, batches, next(model.parameters()).device.type)
    got = read_sums(sums, getattr(fn, "name", getattr(fn, "__qualname__", "")), ["count"])
    return got["count"] if "count" in sums else float(samples)


class MeanLossHVP:
    """Hessian-vector products of the MEAN loss over a split (batches weighted by size).

    The model runs in eval mode (BN uses its running statistics) through
    ``torch.func.functional_call`` with the chosen parameters as inputs, read at call time: the
    products follow weights moved in place (``engine.directions.Perturbation``). ``mode``: ``fwd``
    is forward-over-reverse ``jvp(grad(f))``, ``rev`` reverse-over-reverse ``vjp(grad(f))``,
    ``-math`` either under the math SDPA kernel; ``auto`` times the reverse modes on the first
    batch and keeps the faster that works, and tries the forward ones only where neither does
    (fused attention without a double derivative, an op without one).
    """

    def __init__(
        self,
        model: nn.Module,
        split: Split | Batches,
        batch_size: int,
        loss: str | Loss = "crossentropy",
        params: list[str] | None = None,
        mode: str = "auto",
        l2: float = 0.0,
        count: float | None = None,
        reuse: bool = True,
    ) -> None:
        if mode != "auto" and mode not in HVP_MODES:
            raise ConfigError(
                f"Expected `mode` to be 'auto' or one of {', '.join(map(repr, HVP_MODES))}, "
                f"but got {mode!r}."
            )
        loss = resolve_loss(loss)
        if batch_size < 1 or len(split) == 0:
            raise ConfigError(
                f"Expected a non-empty split and `batch_size` >= 1, but got {len(split)} samples "
                f"and batch size {batch_size}."
            )
        self.model = model.eval()
        live = dict(model.named_parameters())
        self.names = hessian_params(model) if params is None else list(params)
        unknown = [k for k in self.names if k not in live]
        if not self.names and not unknown:
            raise ConfigError(
                "the model has no gradient to take a Hessian of: none of its parameters both "
                "requires grad and is selected (hessian.params = '2d' takes the tensors with 2+ "
                "dims, 'all' every one)"
            )
        if unknown or not self.names:
            raise ConfigError(
                f"Expected `params` to name parameters of the model, but got {unknown or '[]'}; "
                f"it has {list(live)}."
            )
        self.shapes = [live[k].shape for k in self.names]
        self.numels = [live[k].numel() for k in self.names]
        self.n = int(sum(self.numels))
        self.products = 0
        self.seconds = 0.0  # wall seconds inside products (a solver's overhead is the rest)
        self.device, self.dtype = live[self.names[0]].device, live[self.names[0]].dtype
        self.split = split.to(self.device)
        self.batch_size, self.loss, self.l2 = batch_size, loss, l2
        # The classifier losses on tensors: the fused per-batch sum, as before. Any other loss
        # is called on the model inside a wrapper module, so functional_call can swap weights.
        self.fused = loss.builtin is not None and isinstance(self.split, Split)
        self._wrapped = None if self.fused else _LossSum(model, loss.fn)
        self._fused = fused_entry(loss.builtin) if self.fused else None
        if self.fused:  # Hessian directions and hessian_at reach here unchecked
            check_model_labels(model, self.split, "Hessian's")
        self.count = float(len(self.split)) if self.fused else count
        if self.count is None:
            self.count = _count(loss, model, split_batches(self.split, batch_size))
        self.mode = "fwd" if mode == "auto" else mode
        self._auto = mode == "auto"
        self.reuse = reuse
        self._graphs: dict[tuple[str, int], tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self._at: tuple[tuple[int, int], ...] = ()  # the weights the graphs were built at
        self._fits: bool | None = None  # whether every batch's graph fits in REUSE_BYTES

    def params_flat(self) -> torch.Tensor:
        """The current values of the Hessian's parameters, flattened in ``names`` order."""
        live = dict(self.model.named_parameters())
        return torch.cat([live[k].detach().reshape(-1) for k in self.names])

    def unflatten(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """A flat vector as one tensor per Hessian parameter."""
        parts = v.split(self.numels)
        return {k: p.view(s) for k, p, s in zip(self.names, parts, self.shapes, strict=True)}

    def _batch_losses(self):
        """The current primals, and per batch a function of them: that batch's share of the
        mean loss (the passes add up to it)."""
        live = dict(self.model.named_parameters())
        primals = {k: live[k].detach() for k in self.names}
        # The other parameters enter as constants, so no autograd graph is built for them.
        fixed = {k: p.detach() for k, p in live.items() if k not in primals}
        total = self.count
        fs = []
        for batch in split_batches(self.split, self.batch_size):
            if self.fused:
                x, y = batch

                def f(p: dict[str, torch.Tensor], x=x, y=y) -> torch.Tensor:
                    logits = functional_call(self.model, {**p, **fixed}, (x,))
                    return self._fused.summed(logits, y) / total
            else:

                def f(p: dict[str, torch.Tensor], batch=batch) -> torch.Tensor:
                    inner = {f"model.{k}": v for k, v in {**p, **fixed}.items()}
                    return functional_call(self._wrapped, inner, (batch,)) / total

            fs.append(f)
        return primals, fs

    def __call__(self, v: np.ndarray | torch.Tensor) -> np.ndarray:
        """``H v`` for a flat vector ``v`` of length ``n``; float64 in and out."""
        vt = torch.as_tensor(v).reshape(-1)
        if vt.numel() != self.n:
            raise ValueError(f"Expected a vector of length {self.n}, but got {vt.numel()}.")
        t = time.perf_counter()
        tangents = self.unflatten(vt.to(self.device, self.dtype))
        primals, fs = self._batch_losses()
        self._sync(fs)
        out = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        for i, f in enumerate(fs):
            hv = self._hvp(i, f, primals, tangents)
            out += torch.cat([hv[k].reshape(-1) for k in self.names]).double()
        if self.l2:
            out += self.l2 * vt.to(out)  # the Hessian of l2/2 * ||params||^2
        self.products += 1
        hv = out.cpu().numpy()
        self.seconds += time.perf_counter() - t
        return hv

    def gradient(self) -> np.ndarray:
        """The gradient of the mean loss over the Hessian's parameters (float64), by the same
        batches and functional calls as the products: the unit their cost is measured in."""
        primals, fs = self._batch_losses()
        out = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        for f in fs:
            g = grad(f)(primals)
            out += torch.cat([g[k].reshape(-1) for k in self.names]).double()
        if self.l2:
            out += self.l2 * self.params_flat().to(out)
        return out.cpu().numpy()

    def _hvp(self, i: int, f, primals, tangents) -> dict[str, torch.Tensor]:
        """Batch ``i``'s product in ``self.mode``; under ``auto`` the mode is chosen on the first
        batch: of ``HVP_MODES``, the fastest that works (an op may lack forward AD, or fused
        attention a double derivative), each timed once after a warm-up (which, reusing, builds
        the graph: the time is then a product's at a point after its first)."""
        if self._auto:
            self._choose(i, f, primals, tangents)
        return self._product(self.mode, i, f, primals, tangents)

    def _choose(self, i: int, f, primals, tangents) -> None:
        failed: list[tuple[str, BaseException]] = []
        seconds: dict[str, float] = {}
        for mode in AUTO_ORDER:
            if mode.startswith("fwd") and seconds:
                # Forward-over-reverse only where no reverse mode works: it was the slower one
                # in every benchmark (docs/benchmarks.md), and torch 2.14's forward AD corrupted
                # the heap on a digits ResNet-20 of width 4 (an abort no except catches).
                break
            try:
                self._product(mode, i, f, primals, tangents)  # warm-up: allocations, the graph
                t = time.perf_counter()
                self._product(mode, i, f, primals, tangents)
                seconds[mode] = time.perf_counter() - t
            except (RuntimeError, NotImplementedError) as e:
                failed.append((mode, e))
        if not seconds:
            raise no_hessian(failed[0][1])
        self.mode, self._auto = min(seconds, key=seconds.__getitem__), False
        self._graphs = {k: g for k, g in self._graphs.items() if k[0] == self.mode}
        log.info(
            "HVP mode: %s (%s), the fastest of %s a batch%s",
            self.mode, _TEXT[self.mode], ", ".join(f"{k} {v:.3g} s" for k, v in seconds.items()),
            "".join(f"; {m} failed: {describe(e)}" for m, e in failed),
        )  # fmt: skip

    def _product(self, mode: str, i: int, f, primals, tangents) -> dict[str, torch.Tensor]:
        if not (mode.startswith("rev") and self.reuse and self._fits):
            return _product(mode, f, primals, tangents)
        if (mode, i) not in self._graphs:
            self._graphs[mode, i] = gradient_graph(mode, f, primals)
        leaves, grads = self._graphs[mode, i]
        return graph_product(leaves, grads, self.names, tangents)

    def _sync(self, fs) -> None:
        """Drop the kept graphs where the weights (or BN statistics) moved since they were
        built: in-place moves bump the tensors' version counters. Decide once whether they fit."""
        at = tuple((id(t), t._version) for t in itertools.chain(self.model.parameters(),
                                                                 self.model.buffers()))  # fmt: skip
        if at != self._at:
            self._graphs, self._at = {}, at
        if self._fits is None:  # once: also refuses a loss without a gradient, in one line
            saved = saved_bytes(fs[0], self._batch_losses()[0])
            self._fits = self.reuse and saved * 3 * len(fs) <= REUSE_BYTES
            if self.reuse and not self._fits:
                log.info("HVP: the graphs of %d batches would exceed %d bytes; not kept",
                         len(fs), REUSE_BYTES)  # fmt: skip

    def operator(self, shift: float = 0.0) -> LinearOperator:
        """``H - shift * I`` as a scipy operator in float64."""

        def matvec(v: np.ndarray) -> np.ndarray:
            v = np.asarray(v, dtype=np.float64).reshape(-1)
            return self(v) - shift * v if shift else self(v)

        return LinearOperator((self.n, self.n), matvec=matvec, dtype=np.float64)


_TEXT = {
    "fwd": "forward-over-reverse",
    "fwd-math": "forward-over-reverse under the math attention kernel",
    "rev": "reverse-over-reverse",
    "rev-math": "reverse-over-reverse under the math attention kernel",
}


def _product(mode: str, f, primals, tangents) -> dict[str, torch.Tensor]:
    """``H t`` of a scalar function of a dict of tensors, in one of ``HVP_MODES``."""
    with math_kernel(mode):
        if mode.startswith("fwd"):
            return jvp(grad(f), (primals,), (tangents,))[1]
        _, pullback = vjp(grad(f), primals)
        return pullback(tangents)[0]


@dataclass(frozen=True)
class Extremes:
    """The extreme eigenpairs at one point, how well they are known, and what they cost.

    ``rmax`` and ``rmin`` are the residuals ``||H v - lambda v||`` of the unit eigenvectors;
    ``converged`` says whether every eigenvalue asked for met the tolerance (``accepted``)
    within the product budget. ``top`` holds the ``top_k`` largest eigenvalues, largest first,
    with their residuals in ``top_residuals``. ``passed_max`` and ``passed_min`` profile the
    cost of each end: ``warm``, the products after which its residual first passed the test
    (before the minimum count; 0: never); ``cold``, the products of its own ARPACK run.
    """

    lmax: float
    lmin: float
    vmax: np.ndarray  # unit eigenvectors (float64), the next point's warm start
    vmin: np.ndarray
    products: int
    rmax: float = float("nan")
    rmin: float = float("nan")
    converged: bool = True
    top: tuple[float, ...] = ()
    top_residuals: tuple[float, ...] = ()
    passed_max: int = 0
    passed_min: int = 0


def extreme_eigenvalues(
    hvp: MeanLossHVP,
    tol: float = DEFAULT_TOL,
    start: Extremes | None = None,
    seed: int = 0,
    method: str = "warm",
    top_k: int = 1,
    max_products: int = MAX_PRODUCTS,
) -> Extremes:
    """lambda_max and lambda_min (and the ``top_k`` largest) at the model's current weights.

    ``warm``: one Lanczos run for both ends, started from ``start``'s eigenvectors when given
    (else from a seeded random vector), each eigenvalue to ``tol`` of itself (``accepted``),
    at most ``max_products`` products (else ``converged`` is False). ``cold``: the reference's
    two ``eigsh`` runs from seeded random starts (ARPACK's tolerance, relative to each
    eigenvalue too), plus two products for the residuals; it gives no top-k beyond lambda_max.
    """
    if method not in ("warm", "cold"):
        raise ConfigError(f"Expected `method` to be 'warm' or 'cold', but got {method!r}.")
    if not tol > 0:
        raise ConfigError(f"Expected `tol` > 0, but got {tol!r}.")
    if top_k < 1:
        raise ConfigError(f"Expected `top_k` >= 1, but got {top_k!r}.")
    before = hvp.products
    rng = np.random.default_rng(seed)
    if method == "cold":
        lmax, lmin, vmax, vmin, runs = _reference_extremes(hvp, tol, rng)
        rmax, rmin = (
            float(np.linalg.norm(hvp(v) - lam * v)) for v, lam in ((vmax, lmax), (vmin, lmin))
        )
        return Extremes(lmax, lmin, vmax, vmin, hvp.products - before, rmax, rmin, True,
                        (lmax,), (rmax,), *runs)  # fmt: skip
    v0 = _start_vector(hvp.n, start, rng)
    least = _MIN_COLD if start is None else _MIN_WARM
    r = lanczos(hvp, hvp.n, v0, tol, top=top_k, max_products=max_products, min_products=least)
    return Extremes(
        r.values[-1], r.values[0], r.vmax, r.vmin, hvp.products - before,
        r.residuals[-1], r.residuals[0], r.converged,
        tuple(r.values[::-1][:top_k]), tuple(r.residuals[::-1][:top_k]), *r.passed,
    )  # fmt: skip


def _reference_extremes(hvp: MeanLossHVP, tol: float, rng: np.random.Generator):
    """The reference's algorithm (``min_max_hessian_eigs``), with seeded start vectors.

    ``eigsh`` with its default ``which='LM'``: on ``H - 0.51 lmax I`` the largest magnitude
    is the smallest eigenvalue (``'LA'`` there would find lmax again). ARPACK's own start is
    uniform in [-1, 1); it is drawn here from ``rng`` so that a seed repeats a run.
    """
    n, first = hvp.n, hvp.products
    vals, vecs = eigsh(hvp.operator(), k=1, which="LM", tol=tol, v0=rng.uniform(-1, 1, n))
    lmax, vmax = float(vals[0]), vecs[:, 0]
    shift, second = REFERENCE_SHIFT * lmax, hvp.products
    vals, vecs = eigsh(hvp.operator(shift), k=1, which="LM", tol=tol, v0=rng.uniform(-1, 1, n))
    lmin, vmin = float(vals[0]) + shift, vecs[:, 0]
    runs = (second - first, hvp.products - second)  # each run's products
    if lmax <= 0 and lmin > 0:  # the first run found the negative end (the reference's swap)
        lmax, lmin, vmax, vmin, runs = lmin, lmax, vmin, vmax, runs[::-1]
    return lmax, lmin, vmax, vmin, runs


def _start_vector(n: int, start: Extremes | None, rng: np.random.Generator) -> np.ndarray:
    """A Lanczos start: both previous eigenvectors plus some noise, or noise alone.

    ``span{v0, H v0}`` holds both eigenvectors when they are exact, so a Krylov space grown
    from their sum converges fast while they change little between neighbours. The noise keeps
    every eigenvector in that space, so an eigenvalue that overtakes the previous extreme
    between points can still be found (0.1 to 1.0 cost the same products on the digits CNN).
    """
    r = rng.standard_normal(n)
    r /= np.linalg.norm(r)
    if start is None or start.vmax.shape != (n,):
        return r
    return start.vmax + start.vmin + _START_NOISE * r


def snake_order(nx: int, ny: int) -> list[int]:
    """Flat indices ``i * nx + j`` row by row, alternating direction: each step is a neighbour."""
    if nx < 1 or ny < 1:
        raise ConfigError(f"Expected nx, ny >= 1, but got {nx}, {ny}.")
    order = []
    for i in range(ny):
        cols = range(nx) if i % 2 == 0 else range(nx - 1, -1, -1)
        order.extend(i * nx + j for j in cols)
    return order


def eigenvector_directions(
    model: nn.Module,
    hvp: MeanLossHVP,
    ex: Extremes,
    dir_type: str = "weights",
    pair: str = "max_min",
    tol: float = 1e-4,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Directions (x, y) along Hessian eigenvectors, laid out as ``targets(model, dir_type)``.

    ``max_min``: the top and the most negative eigenvector from ``ex``; ``top2``: the two
    largest, from ``eigsh(k=2)`` at ``tol``. Each direction has unit norm in total (float32,
    CPU); tensors outside the Hessian's parameters get zeros.
    """
    if pair not in ("max_min", "top2"):
        raise ConfigError(f"Expected `pair` to be 'max_min' or 'top2', but got {pair!r}.")
    if dir_type not in ("weights", "states"):
        raise ConfigError(f"Expected `dir_type` to be 'weights' or 'states', but got {dir_type!r}.")
    if pair == "max_min":
        vx, vy = ex.vmax, ex.vmin
    else:
        vals, vecs = eigsh(hvp.operator(), k=2, which="LA", tol=tol, v0=ex.vmax)
        order = np.argsort(vals)[::-1]
        vx, vy = vecs[:, order[0]], vecs[:, order[1]]

    def layout(v: np.ndarray) -> list[torch.Tensor]:
        parts = hvp.unflatten(torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)))
        return [
            parts[name].clone() if name in parts else torch.zeros(t.shape, dtype=torch.float32)
            for name, t in targets(model, dir_type)  # type: ignore[arg-type]
        ]

    return layout(vx), layout(vy)
