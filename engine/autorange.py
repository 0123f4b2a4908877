"""An automatic grid range (``grid.x = "auto"`` for any direction kind but PCA, which fits
its path) and the directions' norms relative to the weights.

The range: from the centre, the train loss is probed along each direction at steps
``STEPS`` (0.05 doubling to 51.2, the last interval halved once in log scale) on both sides,
until it reaches
``RISE`` times its value at the centre plus ``OFFSET`` (a loss near zero at a minimum still
needs a visible rise). The axis spans +-r, with r the larger of the two sides' first steps past
that level, rounded up to a round number (``nice_ceil``): the basin and its rim, on both sides.
A side that never gets there is left out of that choice (it is flat over the range anyway),
and an axis where neither side does takes the last step; a warning says so either way.
Each probe costs one point; the probes and the threshold are stored with the file
(``engine.formats.centre``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.config import GridConfig, auto_points
from engine.directions import DirectionSet, targets
from engine.grid import Axis, Grid, parse_axis

__all__ = [
    "OFFSET",
    "RISE",
    "STEPS",
    "AutoRange",
    "auto_grid",
    "direction_ratios",
    "nice_ceil",
]

RISE = 3.0  # the edge: the loss reaches RISE x its centre value + OFFSET
OFFSET = 1.0
STEPS = tuple(0.05 * 2**k for k in range(11))  # 0.05 .. 51.2, refined by sqrt(2) at the edge
_NICE = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
log = logging.getLogger(__name__)


def nice_ceil(r: float) -> float:
    """The least of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten that is >= r."""
    if r <= 0 or not math.isfinite(r):
        raise ValueError(f"Expected a positive finite range, but got {r}.")
    e = math.floor(math.log10(r))
    m = r / 10**e
    nice = next(n for n in _NICE if n >= m - 1e-12)
    return round(nice * 10**e, 12)


@dataclass(frozen=True)
class AutoRange:
    """The grid an automatic range chose, and how: the centre's loss, the threshold and the
    probes (rows of axis 0/1, signed step, loss)."""

    grid: Grid
    loss_name: str
    centre: float
    threshold: float
    probes: np.ndarray
    notes: tuple[str, ...]


def _side(f: Callable[[float], float], sign: float, threshold: float, rows: list) -> float | None:
    """The first step (doubling, then one sqrt(2) refinement) where ``f`` reaches
    ``threshold`` (or is not finite) on one side, None if it never does."""

    def past(a: float) -> bool:
        v = f(sign * a)
        rows.append((sign * a, v))
        return not math.isfinite(v) or v >= threshold

    for k, a in enumerate(STEPS):
        if past(a):
            return a / math.sqrt(2) if k and past(a / math.sqrt(2)) else a
    return None


def auto_grid(
    grid_cfg: GridConfig, evaluate: Callable[[float, float], dict[str, float]], loss_name: str
) -> AutoRange:
    """The grid of ``grid_cfg`` with each ``auto`` / ``auto:N`` axis chosen by probing
    ``evaluate(a, b)`` (a point's values by name) for ``loss_name``."""
    centre = float(evaluate(0.0, 0.0)[loss_name])
    if not math.isfinite(centre):
        raise ValueError(f"the {loss_name} at the centre is {centre}: no range can be chosen")
    threshold = RISE * centre + OFFSET
    axes, rows, notes = [], [], []
    for k, (key, spec) in enumerate((("grid.x", grid_cfg.x), ("grid.y", grid_cfg.y))):
        n = auto_points(spec)
        if n is None:
            axes.append(parse_axis(spec, key) if spec else None)
            continue
        side_rows: list[tuple[float, float]] = []

        def f(a: float, k: int = k) -> float:
            return float(evaluate(a, 0.0)[loss_name] if k == 0 else evaluate(0.0, a)[loss_name])

        edges = [_side(f, s, threshold, side_rows) for s in (1.0, -1.0)]
        rows.extend((k, a, v) for a, v in side_rows)
        reached = [e for e in edges if e is not None]
        r = nice_ceil(max(reached) if reached else STEPS[-1])
        note = f"{key} = auto: -{r:g}:{r:g}:{n}"
        if len(reached) < 2:
            note += f" ({loss_name} stays under {threshold:.4g} to {STEPS[-1]:.3g} on a side)"
            log.warning("%s", note)
        notes.append(note)
        axes.append(Axis(-r, r, n))
    return AutoRange(
        Grid(axes[0], axes[1]), loss_name, centre, threshold, np.array(rows, dtype=np.float64),
        tuple(notes),
    )  # fmt: skip


def direction_ratios(model: nn.Module, ds: DirectionSet) -> dict[str, object]:
    """Each direction's norm over the weights' (the moved tensors together), and per tensor,
    as the ``centre`` group stores them."""
    named = targets(model, ds.dir_type)
    w = [t.detach().double().cpu() for _, t in named]
    out: dict[str, object] = {"tensor_names": "\n".join(n for n, _ in named)}
    total_w = math.sqrt(sum(float(t.pow(2).sum()) for t in w))
    ratios = []
    for axis, dirs in (("x", ds.x), ("y", ds.y)):
        if dirs is None:
            continue
        d = [t.detach().double().cpu() for t in dirs]
        norm_d = math.sqrt(sum(float(t.pow(2).sum()) for t in d))
        ratios.append(norm_d / total_w if total_w else math.nan)
        out[f"tensor_ratio_{axis}"] = [
            float(torch.linalg.vector_norm(a) / torch.linalg.vector_norm(b))
            if float(b.abs().sum()) else math.nan
            for a, b in zip(d, w, strict=True)
        ]  # fmt: skip
    out["dir_norm_ratio"] = ratios
    return out
