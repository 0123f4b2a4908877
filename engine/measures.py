"""Sharpness measures of a model at its own weights: adaptive worst-case sharpness, average-case
sharpness and a Monte Carlo basin volume (``docs/measures.md`` defines each).

Every measure is the mean loss over all of ``batches`` (sums in float64, as
``engine.evaluate.loss_sums`` takes them, so a user loss with ``count``, dict batches and BN
layers in eval mode all work) at moved weights, less the mean loss at the weights themselves.
The weights are never written: each point is a ``torch.func.functional_call`` with the moved
tensors, and the model (device, mode, tensors) comes back as it came (``preserved``).

- ``adaptive_sharpness`` (Kwon et al., ICML 2021; Andriushchenko et al., ICML 2023): the
  largest rise over ``delta = s * u`` with ``||u||_p <= rho``, ``s = |w| + eta`` per entry,
  found by ``steps`` of projected ascent on ``u`` from a random point on the ball's boundary.
  Each step has length ``step * rho`` along the steepest direction of the ball's norm (the
  normalised gradient for p = 2, its sign for p = inf), then projects back on the ball. The
  best point seen (over ``restarts`` starts) is reported: a lower bound on the true maximum,
  exact for a quadratic and p = 2 once the ascent has converged (for p = inf it may stop at a
  vertex that is only a local maximum).
- ``average_sharpness``: the mean rise over ``samples`` random ``u`` whose entries have size
  ``rho`` (Gaussian for p = 2, as Andriushchenko et al.; random signs times rho for p = inf),
  with its standard error.
- ``basin_volume``: the fraction of ``directions`` random directions, normalised as the
  surfaces' are (``engine.directions.random_direction``), along which the loss stays at most
  ``margin`` above its value at the weights for every ``t`` in ``radius * (1..points) / points``,
  with a 95% Wilson interval.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from engine.api import preserved
from engine.devices import resolve_device
from engine.directions import random_direction
from engine.errors import ConfigError, LandscapeError, describe
from engine.evaluate import loss_sums, read_sums
from engine.hessian import hessian_params
from engine.losses import (
    BatchCheck,
    Loss,
    LossFn,
    StateGuard,
    fused_entry,
    refuse_counts,
    resolve_loss,
)
from engine.norms import NORMS
from engine.splits import Batches, Split, batch_size_of, split_batches, to_device

__all__ = [
    "BALLS",
    "Measure",
    "adaptive_sharpness",
    "average_sharpness",
    "basin_volume",
    "table_values",
    "wilson_interval",
]

Z95 = statistics.NormalDist().inv_cdf(0.975)  # 1.959963984540054


@dataclass(frozen=True)
class Measure:
    """One number and how it was measured; ``low``/``high`` an interval where there is one."""

    name: str
    value: float
    params: dict[str, Any] = field(default_factory=dict)
    low: float | None = None
    high: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (``measures.json``): a non-finite value or bound as None, a non-finite
        parameter as its text (``p = inf`` stays readable)."""

        def num(v: float | None) -> float | None:
            return v if v is not None and math.isfinite(v) else None

        def param(v: Any) -> Any:
            return str(v) if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "name": self.name,
            "value": num(self.value),
            "low": num(self.low),
            "high": num(self.high),
            "params": {k: param(v) for k, v in self.params.items()},
        }


def table_values(
    measures: Iterable[Measure], intervals: Iterable[str] = ("basin_volume",)
) -> dict[str, float]:
    """A study table's ``values`` for some measures: each under its name, and for those named
    in ``intervals`` their interval as ``<name>_low`` and ``<name>_high`` (``docs/measures.md``)."""
    keep = set(intervals)
    out: dict[str, float] = {}
    for m in measures:
        out[m.name] = m.value
        if m.name in keep and m.low is not None and m.high is not None:
            out[f"{m.name}_low"], out[f"{m.name}_high"] = m.low, m.high
    return out


# --- the balls: how a random point is drawn and how a step moves, per norm p -----------------

Tensors = list[torch.Tensor]


@dataclass(frozen=True)
class Ball:
    """The ball ``||u||_p <= rho``: a random point on its boundary (the ascent's start), the
    steepest ascent direction of a gradient in its norm (unit length in that norm), the
    projection, and the average case's random perturbation (each entry of size ``rho``)."""

    boundary: Callable[[Tensors, float, torch.Generator], Tensors]
    ascent: Callable[[Tensors], Tensors | None]  # None where the gradient is zero
    project: Callable[[Tensors, float], Tensors]
    average: Callable[[Tensors, float, torch.Generator], Tensors]


def _norm2(ts: Tensors) -> float:
    # One read of the device for all tensors (a deep net has hundreds).
    return math.sqrt(float(torch.stack([t.double().pow(2).sum() for t in ts]).sum()))


def _sphere(masks: Tensors, rho: float, gen: torch.Generator) -> Tensors:
    z = [torch.randn(m.shape, generator=gen, dtype=torch.float64) * m for m in masks]
    n = _norm2(z)
    return [t * (rho / n) for t in z] if n > 0 else z


def _gauss(masks: Tensors, rho: float, gen: torch.Generator) -> Tensors:
    # Andriushchenko et al.'s average case: delta ~ N(0, rho^2 diag(s^2)), each entry of size
    # rho (the uniform sphere of radius rho would give each entry rho / sqrt(n): n times less
    # rise, lost in the loss's rounding on a real network).
    return [torch.randn(m.shape, generator=gen, dtype=torch.float64) * rho * m for m in masks]


def _unit2(g: Tensors) -> Tensors | None:
    n = _norm2(g)
    return None if n == 0 or not math.isfinite(n) else [t / n for t in g]


def _project2(u: Tensors, rho: float) -> Tensors:
    n = _norm2(u)
    return u if n <= rho else [t * (rho / n) for t in u]


def _signs(masks: Tensors, rho: float, gen: torch.Generator) -> Tensors:
    # Rademacher signs: a random vertex of the cube, so ||u||_inf = rho exactly.
    return [(torch.randint(0, 2, m.shape, generator=gen).double() * 2 - 1) * rho * m for m in masks]


def _unit_inf(g: Tensors) -> Tensors | None:
    if not bool(torch.stack([t.ne(0).any() for t in g]).any()):
        return None
    return [t.sign() for t in g]


def _project_inf(u: Tensors, rho: float) -> Tensors:
    return [t.clamp(-rho, rho) for t in u]


BALLS: dict[float, Ball] = {
    2.0: Ball(_sphere, _unit2, _project2, _gauss),
    math.inf: Ball(_signs, _unit_inf, _project_inf, _signs),
}


def _ball(p: float) -> Ball:
    try:
        return BALLS[float(p)]
    except (KeyError, TypeError, ValueError):
        valid = ", ".join("inf" if k == math.inf else f"{k:g}" for k in BALLS)
        raise ConfigError(f"Expected `p` to be one of {valid}, but got {p!r}.") from None


# --- the objective: the mean loss over all batches at moved weights --------------------------


class _LossOut(nn.Module):
    """A loss function's output on one batch, as a module of the model's weights."""

    def __init__(self, model: nn.Module, fn: LossFn) -> None:
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, batch: Any) -> Any:
        return self.fn(self.model, batch)


class _Objective:
    """The mean loss (``sum(loss) / sum(count)``, float64) over ``batches`` at weights
    ``w + moves``: only the tensors named in ``names`` move, through ``functional_call``."""

    def __init__(
        self,
        model: nn.Module,
        batches: Any,
        loss: str | LossFn | Loss | None,
        device: torch.device,
        batch_size: int,
        names: list[str],
    ) -> None:
        self.loss = resolve_loss(loss, "loss")
        self.model = model
        self.device = device
        self.batches = _batches(batches, device, batch_size)
        self.wrapper = _LossOut(model, self.loss.fn)
        self.guard = StateGuard(model, self.loss.name, "loss")
        self.fused = fused_entry(self.loss.builtin) if self.loss.builtin is not None else None
        live = dict(model.named_parameters())
        self.names = names
        self.base = {k: live[k].detach() for k in names}
        self.count = 1.0
        self.count, self.base_loss = self._count_and_value({})

    def _call(self, moved: dict[str, torch.Tensor]) -> Loss:
        inner = {f"model.{k}": v for k, v in moved.items()}
        wrapper = self.wrapper

        def fn(_model: nn.Module, batch: Any) -> Any:
            return functional_call(wrapper, inner, (batch,))

        return Loss(fn, self.loss.name)

    def _count_and_value(self, moved: dict[str, torch.Tensor]) -> tuple[float, float]:
        self.guard.before()
        try:
            sums, samples = loss_sums(
                self._call(moved), self.wrapper, self.batches, self.device.type
            )
            if "loss" not in sums or samples == 0:
                raise ConfigError("Expected `batches` to hold at least one sample, but got none.")
            got = read_sums(sums, self.loss.name, ["loss", "count"])
        finally:
            self.guard.after()
        count = got["count"] if "count" in sums else float(samples)
        return count, got["loss"] / count

    def value(self, moved: dict[str, torch.Tensor]) -> float:
        """The mean loss at ``w + moved`` (a missing name stays at ``w``)."""
        return self._count_and_value(moved)[1]

    def rise_and_grad(self, scale: Tensors, u: Tensors) -> tuple[float, Tensors]:
        """The rise ``L(w + scale * u) - L(w)`` and its gradient in ``u``, in one pass."""
        leaves = [t.detach().clone().requires_grad_(True) for t in u]
        grads = [torch.zeros_like(t) for t in u]
        check = BatchCheck(self.loss.name, "loss")
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        self.guard.before()
        try:
            for batch in self.batches:
                moved = {
                    k: (w.double() + s * v).to(w.dtype)
                    for (k, w), s, v in zip(self.base.items(), scale, leaves, strict=True)
                }
                part, value = self._summed(moved, batch, check)
                for g, d in zip(grads, self._grad(part, leaves), strict=True):
                    if d is not None:  # None: a tensor this loss does not use
                        g += d
                total += value
        finally:
            self.guard.after()
        refuse_counts(self.loss.name, [float(v) for v in check.extremes()], "loss")
        return float(total) - self.base_loss, grads

    def _grad(self, part: torch.Tensor, leaves: Tensors) -> tuple[torch.Tensor | None, ...]:
        """The gradient of one batch's share in ``leaves``; a loss without one is refused."""
        why = "its value does not depend on the weights through autograd"
        if part.requires_grad:
            try:
                return torch.autograd.grad(part, leaves, allow_unused=True)
            except RuntimeError as e:
                why = describe(e)
        raise LandscapeError(
            f"`loss` {self.loss.name} has no gradient in the weights ({why}); adaptive "
            "sharpness needs a differentiable loss"
        )

    def _summed(
        self, moved: dict[str, torch.Tensor], batch: Any, check: BatchCheck
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch's share of the mean loss at ``w + moved``: differentiable, and its value
        summed per sample in float64 (as ``loss_sums`` sums it). A fused built-in loss takes
        its differentiable sum for the gradient (its per-sample math writes in place)."""
        if self.fused is None:
            out = self._call(moved).fn(self.wrapper, batch)
            check.batch(out, batch_size_of(batch))
            part = out["loss"].double().sum() / self.count
            return part, part.detach()
        x, y = batch[0], batch[1]
        logits = functional_call(self.model, moved, (x,)).float()
        part = self.fused.summed(logits, y).double() / self.count
        with torch.no_grad():
            value = self.fused.fused(logits.detach(), y)[0].double().sum() / self.count
        return part, value

    def rise(self, scale: Tensors, u: Tensors) -> float:
        moved = {
            k: (w.double() + s * v).to(w.dtype)
            for (k, w), s, v in zip(self.base.items(), scale, u, strict=True)
        }
        return self.value(moved) - self.base_loss


def _batches(batches: Any, device: torch.device, batch_size: int) -> Any:
    """Re-iterable batches on ``device``: a ``Split`` cut into ``batch_size`` slices, a
    ``Batches`` as it is, any other iterable of batches read once into a list."""
    if isinstance(batches, Split):
        split = batches.to(device)
        return list(split_batches(split, batch_size))
    if isinstance(batches, Batches):
        return batches.to(device)
    if not isinstance(batches, Iterable):
        raise ConfigError(
            f"Expected `batches` to be a Split, a Batches or an iterable of batches, but got "
            f"{type(batches).__name__}."
        )
    return [to_device(b, device) for b in batches]


def _check_number(name: str, value: float, low: float = 0.0, *, strict: bool = True) -> float:
    ok = isinstance(value, int | float) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low)
    if not ok:
        sign = ">" if strict else ">="
        raise ConfigError(
            f"Expected `{name}` to be a finite number {sign} {low:g}, but got {value!r}."
        )
    return float(value)


def _check_count(name: str, value: int, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"Expected `{name}` to be an integer >= {least}, but got {value!r}.")
    return value


def _setup(model: nn.Module, device: str | torch.device) -> torch.device:
    """Check the model, move it to ``device`` and into eval mode (``preserved`` undoes both)."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"Expected `model` to be a torch nn.Module, but got {type(model)}.")
    dev = resolve_device(str(device))
    model.to(dev).eval()
    return dev


def _names(model: nn.Module, params: str) -> list[str]:
    """The tensors a sharpness measure moves: every trainable one, or those with 2+ dims."""
    if params not in ("all", "2d"):
        raise ConfigError(f"Expected `params` to be 'all' or '2d', but got {params!r}.")
    names = hessian_params(model, params)
    if not names:
        what = "trainable tensors" if params == "all" else "trainable tensors with 2+ dims"
        raise ConfigError(f"`params` = {params!r}: the model has no {what} to move.")
    return names


def _scales(obj: _Objective, eta: float) -> tuple[Tensors, Tensors]:
    """Per moved tensor, ``|w| + eta`` (float64, on the model's device) and where it is non-zero
    (1.0 / 0.0, on the CPU): an entry whose scale is 0 cannot move, so it takes no share of the
    ball either."""
    scale = [w.detach().double().abs() + eta for w in obj.base.values()]
    masks = [(s > 0).double().cpu() for s in scale]  # on the CPU, with the random draws
    return scale, masks


# --- the measures ---------------------------------------------------------------------------


def adaptive_sharpness(
    model: nn.Module,
    batches: Any,
    loss: str | LossFn | Loss | None = None,
    *,
    rho: float = 0.05,
    p: float = 2.0,
    steps: int = 10,
    seed: int = 0,
    device: str | torch.device = "cpu",
    eta: float = 0.0,
    step: float = 1.0,
    params: str = "all",
    batch_size: int = 256,
    restarts: int = 1,
) -> Measure:
    """Adaptive worst-case sharpness: ``max L(w + delta) - L(w)`` over ``||delta / s||_p <= rho``
    (``s = |w| + eta``), by ``steps`` steps of projected ascent of length ``step * rho`` from a
    random boundary point (``seed``); the best point seen, over ``restarts`` ascents from
    different starts. ``params``: 'all' trainable tensors or '2d' (tensors with 2+ dims)."""
    ball = _ball(p)
    rho = _check_number("rho", rho)
    step = _check_number("step", step)
    eta = _check_number("eta", eta, strict=False)
    steps = _check_count("steps", steps, 0)
    restarts = _check_count("restarts", restarts, 1)
    with preserved(model):
        dev = _setup(model, device)
        obj = _Objective(model, batches, loss, dev, batch_size, _names(model, params))
        if not math.isfinite(obj.base_loss):
            return _undefined("adaptive_sharpness", obj.base_loss)
        scale, masks = _scales(obj, eta)
        scale = [s.to(dev) for s in scale]
        gen = torch.Generator().manual_seed(seed)
        best, done = -math.inf, 0
        for _ in range(restarts):
            u = [t.to(dev) for t in ball.boundary(masks, rho, gen)]
            for _ in range(steps):
                rise, g = obj.rise_and_grad(scale, u)
                best = _max(best, rise)
                d = ball.ascent([t.double() for t in g])
                if d is None:
                    break  # a stationary point: no step moves it
                u = ball.project([a + step * rho * b for a, b in zip(u, d, strict=True)], rho)
                done += 1
            best = _max(best, obj.rise(scale, u))
    info = {"rho": rho, "p": float(p), "steps": steps, "steps_taken": done, "step": step,
            "restarts": restarts, "eta": eta, "seed": seed, "params": params,
            "base_loss": obj.base_loss}  # fmt: skip
    return Measure("adaptive_sharpness", best, info)


def _undefined(name: str, base: float) -> Measure:
    """NaN, saying why: no rise is defined from a loss that is not finite (a diverged model)."""
    note = f"the loss at the weights is {base}: no rise is defined from it"
    return Measure(name, math.nan, {"base_loss": base, "note": note})


def _max(a: float, b: float) -> float:
    """The larger, where a non-finite rise (a diverged point) is the largest."""
    if not math.isfinite(b):
        return math.inf
    return max(a, b)


def average_sharpness(
    model: nn.Module,
    batches: Any,
    loss: str | LossFn | Loss | None = None,
    *,
    rho: float = 0.05,
    p: float = 2.0,
    samples: int = 20,
    seed: int = 0,
    device: str | torch.device = "cpu",
    eta: float = 0.0,
    params: str = "all",
    batch_size: int = 256,
) -> Measure:
    """Average-case sharpness: the mean of ``L(w + s * u) - L(w)`` over ``samples`` random ``u``
    (``s = |w| + eta``) whose entries have size ``rho``: Gaussian ``N(0, rho^2)`` for p = 2
    (Andriushchenko et al.'s definition), random signs times ``rho`` for p = inf (a vertex of
    the cube ``||u||_inf = rho``). Both have ``E[u u^T] = rho^2 I``. With its standard error
    (``params['se']``) and ``low``/``high`` = mean -+ 1.96 SE."""
    ball = _ball(p)
    rho = _check_number("rho", rho)
    eta = _check_number("eta", eta, strict=False)
    samples = _check_count("samples", samples, 2)
    with preserved(model):
        dev = _setup(model, device)
        obj = _Objective(model, batches, loss, dev, batch_size, _names(model, params))
        if not math.isfinite(obj.base_loss):
            return _undefined("average_sharpness", obj.base_loss)
        scale, masks = _scales(obj, eta)
        scale = [s.to(dev) for s in scale]
        gen = torch.Generator().manual_seed(seed)
        rises = []
        for _ in range(samples):
            u = [t.to(dev) for t in ball.average(masks, rho, gen)]
            rises.append(obj.rise(scale, u))
    mean = math.fsum(rises) / samples
    se = (
        statistics.stdev(rises) / math.sqrt(samples) if all(map(math.isfinite, rises)) else math.nan
    )
    info = {"rho": rho, "p": float(p), "samples": samples, "seed": seed, "eta": eta,
            "params": params, "se": se, "base_loss": obj.base_loss}  # fmt: skip
    return Measure("average_sharpness", mean, info, mean - Z95 * se, mean + Z95 * se)


def basin_volume(
    model: nn.Module,
    batches: Any,
    loss: str | LossFn | Loss | None = None,
    *,
    directions: int = 50,
    radius: float = 1.0,
    margin: float = 0.1,
    norm: str = "filter",
    ignore: str = "biasbn",
    seed: int = 0,
    device: str | torch.device = "cpu",
    points: int = 10,
    batch_size: int = 256,
) -> Measure:
    """Monte Carlo basin volume: the fraction of ``directions`` random directions (normalised by
    ``norm``, ``ignore`` as for surfaces, drawn in turn from one generator seeded ``seed``) along
    which ``L(w + t d) - L(w) <= margin`` at every ``t = radius * j / points``, j = 1..points;
    ``low``/``high`` its 95% Wilson interval. The point at ``radius`` is tried first: most rays
    that leave the basin leave it by then, and cost one evaluation (``params['evaluations']``)."""
    directions = _check_count("directions", directions, 1)
    points = _check_count("points", points, 1)
    radius = _check_number("radius", radius)
    margin = _check_number("margin", margin, strict=False)
    if norm not in NORMS.names():
        valid = ", ".join(map(repr, NORMS.names()))
        raise ConfigError(f"Expected `norm` to be one of {valid}, but got {norm!r}.")
    if ignore not in ("biasbn", "none"):
        raise ConfigError(f"Expected `ignore` to be 'biasbn' or 'none', but got {ignore!r}.")
    with preserved(model):
        dev = _setup(model, device)
        names = [k for k, _ in model.named_parameters()]
        obj = _Objective(model, batches, loss, dev, batch_size, names)
        if not math.isfinite(obj.base_loss):
            return _undefined("basin_volume", obj.base_loss)
        gen = torch.Generator().manual_seed(seed)
        inside = evaluations = 0
        order = [points, *range(1, points)]  # the far end first, then outwards from w
        for _ in range(directions):
            d = random_direction(model, "weights", norm, ignore, gen)  # type: ignore[arg-type]
            d = [t.to(dev) for t in d]
            for j in order:
                t = radius * j / points
                moved = {
                    k: (w.double() + t * v.double()).to(w.dtype)
                    for (k, w), v in zip(obj.base.items(), d, strict=True)
                }
                evaluations += 1
                if not obj.value(moved) - obj.base_loss <= margin:  # NaN is out of the basin
                    break
            else:
                inside += 1
    low, high = wilson_interval(inside, directions)
    info = {"directions": directions, "radius": radius, "margin": margin, "norm": norm,
            "ignore": ignore, "points": points, "seed": seed, "inside": inside,
            "evaluations": evaluations, "base_loss": obj.base_loss}  # fmt: skip
    return Measure("basin_volume", inside / directions, info, low, high)


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``k / n`` at ``level`` (two-sided)."""
    if n < 1 or not 0 <= k <= n:
        raise ConfigError(f"Expected 0 <= k <= n and n >= 1, but got k = {k}, n = {n}.")
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
