"""Directions in parameter space: seeded random (filter-normalised), interpolation.

A direction is a list of tensors aligned with the model's *targets*:
``model.parameters()`` order for type ``weights``, ``state_dict()`` order for
``states`` (BN running statistics included), exactly as the reference's direction
files are laid out. Random directions are drawn on the CPU from their own
``torch.Generator``, so a seed gives the same numbers on every device; one
generator draws x then y, so the x direction of a 2D run equals that of a 1D run.
Direction files are read and written by ``engine.formats.directions``.

Choices, where the reference left one open: integer state entries (BN's
``num_batches_tracked``) never move (their direction is 0); with ``ignore='none'``
a 1-D tensor's direction is a copy of the tensor itself, as in the reference.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from engine.errors import LandscapeError
from engine.norms import NORMS, normalize_direction

__all__ = [
    "DirectionSet",
    "Perturbation",
    "has_batchnorm",
    "interpolation_direction",
    "normalize_direction",
    "random_direction",
    "targets",
]

DirType = Literal["weights", "states"]


def targets(model: nn.Module, dir_type: DirType) -> list[tuple[str, torch.Tensor]]:
    """The live tensors a direction moves, named, in the reference's order."""
    return [(n, t.detach()) for n, t in _live_tensors(model, dir_type)]


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def random_direction(
    model: nn.Module,
    dir_type: DirType,
    norm: str,
    ignore: Literal["biasbn", "none"],
    generator: torch.Generator,
) -> list[torch.Tensor]:
    """One Gaussian direction (float32, CPU) normalised against the model's tensors by the
    registered norm ``norm`` (``engine.norms``)."""
    normalize = NORMS.get(norm)  # an unknown norm raises before a tensor is drawn
    out = []
    for _, t in targets(model, dir_type):
        w = t.detach().float().cpu()
        # Always draw, even for tensors zeroed below, so options never shift the stream.
        d = torch.randn(w.shape, generator=generator, dtype=torch.float32)
        if not torch.is_floating_point(t):
            d.zero_()
        elif w.dim() <= 1:
            if ignore == "biasbn":
                d.zero_()
            else:
                d.copy_(w)
        else:
            normalize(d, w)
        out.append(d)
    return out


def interpolation_direction(
    model: nn.Module, other: nn.Module, dir_type: DirType
) -> list[torch.Tensor]:
    """``other - model`` per tensor (not normalised): model at 0, other at 1."""
    out = []
    for (_, a), (_, b) in zip(targets(model, dir_type), targets(other, dir_type), strict=True):
        if torch.is_floating_point(a):
            out.append((b.float().cpu() - a.float().cpu()).contiguous())
        else:
            out.append(torch.zeros(a.shape, dtype=torch.float32))
    return out


@dataclass
class DirectionSet:
    """The x (and for 2D, y) direction plus what describes them."""

    x: list[torch.Tensor]
    y: list[torch.Tensor] | None
    dir_type: DirType
    attrs: dict[str, Any] = field(default_factory=dict)

    def check_fits(self, model: nn.Module, source: str) -> None:
        """Refuse directions whose tensors do not fit the model, naming the first misfit."""
        named = targets(model, self.dir_type)
        for axis, dirs in (("xdirection", self.x), ("ydirection", self.y)):
            if dirs is None:
                continue
            what = "parameters" if self.dir_type == "weights" else "state_dict entries"
            if len(dirs) != len(named):
                raise LandscapeError(
                    f"direction file {source} does not fit the model: {axis} has {len(dirs)} "
                    f"tensors, the model has {len(named)} {what} (directions.type = "
                    f"'{self.dir_type}')"
                )
            for k, (d, (name, t)) in enumerate(zip(dirs, named, strict=True)):
                if tuple(d.shape) != tuple(t.shape):
                    raise LandscapeError(
                        f"direction file {source} does not fit the model: {axis}/{k} has shape "
                        f"{tuple(d.shape)}, the model's {name!r} has {tuple(t.shape)}"
                    )


class Perturbation:
    """Moves a model's tensors in place to ``base + a * dx + b * dy``.

    The moved tensors are re-pointed into one flat buffer per dtype, with the base weights
    and the directions in flat buffers of the same layout beside it, all on the model's
    device. A point is then two fused ops over each buffer, with no model rebuilt, no file
    read and no per-tensor launch. Tensors keep their identity, shape and strides
    (channels-last included), and autograd still sees each move; but they now live in new
    memory, so an alias taken before (``p.detach()``) no longer follows the model. A tensor
    listed twice (tied weights in a ``state_dict``) moves by the sum of its directions, as
    the reference's ``set_states`` adds both to one tensor.
    """

    def __init__(self, model: nn.Module, ds: DirectionSet) -> None:
        live = _live_tensors(model, ds.dir_type)
        ys = ds.y if ds.y is not None else [None] * len(ds.x)
        self.names: list[str] = []
        merged: dict[int, list] = {}  # id(tensor) -> [tensor, dx, dy], tied entries summed
        slot: list[int] = []  # per name, the id of its tensor
        for (name, t), dx, dy in zip(live, ds.x, ys, strict=True):
            if not torch.is_floating_point(t):
                continue  # BN counters never move
            self.names.append(name)
            slot.append(id(t))
            if id(t) in merged:
                m = merged[id(t)]
                m[1] = m[1] + dx
                m[2] = None if dy is None else m[2] + dy
            else:
                merged[id(t)] = [t, dx, dy]
        items = list(merged.values())
        self._groups = [
            _FlatGroup([it for it in items if it[0].dtype == dtype])
            for dtype in dict.fromkeys(it[0].dtype for it in items)
        ]
        # Per name, views of its base and directions, for ``stacked``.
        views = {id(t): v for g in self._groups for t, v in zip(g.tensors, g.views, strict=True)}
        self._items = [views[k] for k in slot]

    @torch.no_grad()
    def set(self, a: float, b: float = 0.0) -> None:
        for g in self._groups:
            g.check()
            if a != 0.0:
                torch.add(g.base, g.dx, alpha=a, out=g.live)
            else:
                g.live.copy_(g.base)
            if b != 0.0 and g.dy is not None:
                g.live.add_(g.dy, alpha=b)
            # The writes went through the buffer, not the tensors: tell autograd they moved.
            torch.autograd.graph.increment_version(g.tensors)

    def reset(self) -> None:
        self.set(0.0, 0.0)

    @property
    def device(self) -> torch.device:
        """Where the moved tensors live (the model's device)."""
        return self._groups[0].live.device if self._groups else torch.device("cpu")

    def stacked(
        self, a: torch.Tensor, b: torch.Tensor, names: Collection[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """The moved tensors at K points at once, each of shape ``(K, *shape)``; only those
        in ``names`` when given."""
        out = {}
        for name, (base, dx, dy) in zip(self.names, self._items, strict=True):
            if names is not None and name not in names:
                continue
            shape = (-1,) + (1,) * base.dim()
            v = base + a.to(base).view(shape) * dx
            if dy is not None:
                v = v + b.to(base).view(shape) * dy
            out[name] = v
        return out


_ALIGN_BYTES = 256  # each tensor starts where the CUDA allocator would start it


class _FlatGroup:
    """Tensors of one dtype re-pointed into a flat buffer, with flat base and directions."""

    def __init__(self, items: list[list]) -> None:
        t0 = items[0][0]
        # Tensors keep their strides where those cover their memory without gaps (contiguous
        # or channels-last); any other gets contiguous ones (from a meta tensor: no memory).
        layouts = [
            (t.shape, t.stride() if _dense(t) else torch.empty(t.shape, device="meta").stride())
            for t, _, _ in items
        ]
        # Slots aligned as the allocator aligns tensors, so that kernels needing aligned
        # weights (vectorised loads, cuDNN) see the same alignment as before; gaps stay 0.
        align = max(1, _ALIGN_BYTES // t0.element_size())
        offsets, n = [], 0
        for t, _, _ in items:
            offsets.append(n)
            n += -(-t.numel() // align) * align
        self.live = torch.zeros(n, dtype=t0.dtype, device=t0.device)
        self.base = torch.zeros_like(self.live)
        self.dx = torch.zeros_like(self.live)
        self.dy = torch.zeros_like(self.live) if items[0][2] is not None else None

        def view(flat: torch.Tensor, k: int) -> torch.Tensor:
            shape, stride = layouts[k]
            return flat.as_strided(shape, stride, offsets[k])

        self.tensors, self.views = [], []
        with torch.no_grad():
            for k, (t, dx, dy) in enumerate(items):
                view(self.live, k).copy_(t)
                view(self.base, k).copy_(t)
                view(self.dx, k).copy_(dx)
                if self.dy is not None:
                    view(self.dy, k).copy_(dy)
                t.data = view(self.live, k)  # the model's tensor now lives in the buffer
                self.tensors.append(t)
                self.views.append(
                    (view(self.base, k), view(self.dx, k), None if dy is None else view(self.dy, k))
                )
        self._ptrs = [t.data_ptr() for t in self.tensors]

    def check(self) -> None:
        """Refuse to move a buffer the model no longer uses (e.g. after ``model.to()``)."""
        if any(t.data_ptr() != p for t, p in zip(self.tensors, self._ptrs, strict=True)):
            raise RuntimeError(
                "the model's tensors were replaced after the perturbation was set up; "
                "create the Perturbation again"
            )


def _live_tensors(model: nn.Module, dir_type: DirType) -> list[tuple[str, torch.Tensor]]:
    """The model's own tensors (not detached aliases) in the order of ``targets``."""
    if dir_type == "weights":
        return list(model.named_parameters())
    return list(model.state_dict(keep_vars=True).items())


def _dense(t: torch.Tensor) -> bool:
    """Contiguous in the default or a channels-last layout: no gaps, no overlap."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    return t.is_contiguous() or (
        t.dim() in formats and t.is_contiguous(memory_format=formats[t.dim()])
    )
