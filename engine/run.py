"""Computing a surface: prepare everything, then evaluate the unfinished grid points.

``prepare`` validates the whole setup (model, checkpoint, data, directions, output)
before it writes anything, so a bad input never leaves a file behind; the returned
``Job`` evaluates points in flat-index order, records them, and flushes finished
points to the file at least every ``compute.flush_seconds``. Running the same
config against the same output again resumes: only unfinished points are computed.
"""

from __future__ import annotations

import logging
import os
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.config import (
    Config,
    GridConfig,
    HessianConfig,
    auto_points,
    config_from_dict,
    config_to_toml,
)
from engine.data import Split, load_splits
from engine.directions import (
    DirectionSet,
    Perturbation,
    has_batchnorm,
    interpolation_direction,
    random_direction,
)
from engine.errors import ConfigError, LandscapeError, describe
from engine.evaluate import evaluate, per_sample, segment_stats
from engine.formats import (
    HESSIAN_NAMES,
    SURFACE_NAMES,
    Surface,
    SurfaceWriter,
    direction_hash,
    load_directions,
    path_datasets,
    read_surface,
    save_directions,
)
from engine.grid import Axis, Grid, parse_axis
from engine.hessian import (
    MeanLossHVP,
    eigenvector_directions,
    extreme_eigenvalues,
    hessian_params,
    hutchinson_trace,
    snake_order,
)
from engine.models import build_model, load_checkpoint
from engine.pool import Outcome, Pool, WorkerSpec, evaluate_local
from engine.recipes import PREFIX as RECIPE_PREFIX
from engine.recipes import RECIPES, recipe_checkpoint

log = logging.getLogger(__name__)

PATH_MARGIN = 0.25  # of the path's span, around a PCA path on an automatic grid
ABORT_AFTER_FAILURES = 10  # a run whose first points all fail stops instead of trying them all

__all__ = [
    "Job",
    "Landscape",
    "PointResult",
    "Summary",
    "directions_path",
    "landscape_from_files",
    "load_model",
    "make_directions",
    "prepare",
    "resolve_device",
    "worker_devices",
]


@dataclass(frozen=True)
class PointResult:
    """One grid point's end, with the run's progress: what a live view needs.

    ``values`` is empty and ``error`` set for a point that failed on every try.
    """

    index: int
    coords: tuple[float, float]
    values: dict[str, float]
    done: int = 0
    total: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Summary:
    path: Path
    total: int
    done: int
    computed: int
    seconds: float
    min_name: str
    min_value: float
    min_coords: tuple[float, float]
    non_finite: int  # finished points whose first surface is NaN or inf (a result, kept as is)
    failed: dict[int, str]  # flat index -> error of points that failed on every try
    workers: int = 1


def resolve_device(spec: str) -> torch.device:
    """'auto' is the first CUDA device when there is one, else the CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise ConfigError(
            f"Expected `compute.device` to be 'auto', 'cpu', 'cuda' or 'cuda:N', but got {spec!r}."
        ) from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError(f"`compute.device` = {spec!r}, but no CUDA device is available.")
        if dev.index is not None and dev.index >= n:
            raise ConfigError(
                f"`compute.device` = {spec!r}, but only {n} CUDA device(s) exist (cuda:0..{n - 1})."
            )
    elif dev.type != "cpu" and dev.type != "mps":
        raise ConfigError(f"`compute.device` = {spec!r} is not supported; use 'cpu' or 'cuda'.")
    return dev


def _checkpoint_path(spec: str, arch: str, key: str) -> str:
    if not spec.startswith(RECIPE_PREFIX):
        return spec
    recipe = RECIPES.get(spec.removeprefix(RECIPE_PREFIX))
    if recipe is not None and recipe.arch != arch:
        raise ConfigError(
            f"`{key}` = {spec!r} is a checkpoint of {recipe.arch!r}, but `model.arch` is {arch!r}."
        )
    return str(recipe_checkpoint(spec))


def load_model(
    cfg: Config, checkpoint: str | None = None, key: str = "model.checkpoint"
) -> nn.Module:
    """Build ``model.arch`` and load ``checkpoint`` (default ``model.checkpoint``) into it."""
    model = build_model(cfg.model.arch, cfg.model.kwargs, seed=cfg.model.seed)
    ckpt = cfg.model.checkpoint if checkpoint is None else checkpoint
    if not ckpt and checkpoint is None and cfg.directions.kind == "pca":
        from engine.trajectory import find_checkpoints

        ckpt = str(find_checkpoints(cfg.directions.checkpoints)[-1])  # the path's end
    if ckpt:
        load_checkpoint(model, _checkpoint_path(ckpt, cfg.model.arch, key), key)
    return model.eval()


def directions_path(out: Path) -> Path:
    """Where a run writes its directions: ``surface.h5`` -> ``surface.directions.h5``."""
    return out.with_name(out.name.removesuffix(".h5") + ".directions.h5")


def make_directions(cfg: Config, model: nn.Module, grid: Grid) -> DirectionSet:
    """The directions the config asks for, checked against the model."""
    d = cfg.directions
    dir_type = d.type
    if dir_type == "auto":
        dir_type = "states" if d.kind == "interpolate" and has_batchnorm(model) else "weights"
    if d.kind == "file":
        ds = load_directions(d.file, None if d.type == "auto" else dir_type)
        n_weights = sum(1 for _ in model.parameters())
        # A reference file carries no type: it is 'states' when it counts state entries.
        if d.type == "auto" and len(ds.x) != n_weights and len(ds.x) == len(model.state_dict()):
            ds.dir_type = "states"
        ds.check_fits(model, d.file)
        if grid.ndim == 2 and ds.y is None:
            if not d.same:
                raise LandscapeError(
                    f"direction file {d.file} has no ydirection; a 2D grid needs one "
                    "(or set directions.same = true)"
                )
            ds.y = ds.x
        if grid.ndim == 1:
            ds.y = None
        return ds
    attrs = {"kind": d.kind, "norm": d.norm, "ignore": d.ignore, "seed": d.seed}
    if d.kind == "pca":
        return _pca_directions(cfg, model, dir_type)
    if d.kind == "hessian":
        return _hessian_directions(cfg, model, dir_type, attrs)
    if d.kind == "interpolate":
        other = load_model(cfg, d.target, "directions.target")
        return DirectionSet(interpolation_direction(model, other, dir_type), None, dir_type, attrs)
    g = torch.Generator().manual_seed(d.seed)
    x = random_direction(model, dir_type, d.norm, d.ignore, g)
    y = None
    if grid.ndim == 2:
        y = x if d.same else random_direction(model, dir_type, d.norm, d.ignore, g)
    return DirectionSet(x, y, dir_type, attrs)


def _pca_directions(cfg: Config, model: nn.Module, dir_type: str) -> DirectionSet:
    """The trajectory's two principal directions; the result rides along as ``ds.pca``."""
    from engine.trajectory import find_checkpoints, pca_directions

    d = cfg.directions
    checkpoints = find_checkpoints(d.checkpoints)
    final = None
    if cfg.model.checkpoint and not cfg.model.checkpoint.startswith(RECIPE_PREFIX):
        final = Path(cfg.model.checkpoint)
    step = [0]

    def progress(done: int, total: int) -> None:
        if done == total or done >= step[0]:  # about ten lines, whatever the length
            log.info("PCA: read %d of %d checkpoint files", done, total)
            step[0] = done + max(1, total // 10)

    log.info("PCA over %d checkpoints from %s", len(checkpoints), d.checkpoints)
    res = pca_directions(
        model, checkpoints, final, dir_type=dir_type, ignore=d.ignore, progress=progress
    )
    ds = res.direction_set()
    ds.pca = res  # type: ignore[attr-defined]
    return ds


def _hessian_directions(
    cfg: Config, model: nn.Module, dir_type: str, attrs: dict[str, Any]
) -> DirectionSet:
    """Eigenvectors of the Hessian at the model: the axes on which saddles show."""
    h = cfg.hessian
    split = load_splits(cfg.data, [h.split])[h.split]
    hvp = MeanLossHVP(
        model.eval(), split, cfg.data.batch_size, cfg.data.loss,
        params=hessian_params(model, h.params),
    )  # fmt: skip
    ex = extreme_eigenvalues(hvp, h.tol)
    log.info("Hessian at the model: lambda_max %.5g, lambda_min %.5g", ex.lmax, ex.lmin)
    x, y = eigenvector_directions(model, hvp, ex, dir_type, pair=cfg.directions.pair)
    attrs = {**attrs, "pair": cfg.directions.pair, "lmax": ex.lmax, "lmin": ex.lmin}
    return DirectionSet(x, y if cfg.parsed_grid.ndim == 2 else None, dir_type, attrs)


def fit_grid(coords: np.ndarray, grid_cfg: GridConfig, margin: float = PATH_MARGIN) -> Grid:
    """A grid covering the projected path with ``margin`` of its span on each side, for each
    axis given as ``auto`` / ``auto:N``; the other axis keeps its range."""
    axes = []
    for k, spec in enumerate((grid_cfg.x, grid_cfg.y)):
        n = auto_points(spec)
        if n is None:
            axes.append(parse_axis(spec, ("grid.x", "grid.y")[k]))
            continue
        lo, hi = float(coords[:, k].min()), float(coords[:, k].max())
        span = hi - lo if hi > lo else max(abs(lo), 1.0)
        axes.append(Axis(lo - margin * span, hi + margin * span, n))
    return Grid(axes[0], axes[1])


PRECISION = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def worker_devices(cfg: Config) -> list[str]:
    """One device per worker: ``compute.devices`` cycled, or every GPU, or the one device."""
    c = cfg.compute
    devices = []
    for d in c.devices:
        try:
            devices.append(str(resolve_device(d)))
        except ConfigError as e:
            raise ConfigError(f"in `compute.devices`: {e}") from None
    if not devices:
        dev = resolve_device(c.device)
        if c.device in ("auto", "cuda") and dev.type == "cuda":
            devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        else:
            devices = [str(dev)]
    n = len(devices) if c.workers == "auto" else int(c.workers)
    return [devices[i % len(devices)] for i in range(n)]


def landscape_from_files(config_toml: str, dir_file: str, dir_type: str, device: str) -> Landscape:
    """Rebuild a run's evaluation from its resolved config and direction file (in a worker)."""
    cfg = config_from_dict(tomllib.loads(config_toml))
    model = load_model(cfg)
    ds = load_directions(dir_file, dir_type)
    if cfg.parsed_grid.ndim == 1:
        ds.y = None
    elif ds.y is None:
        ds.y = ds.x  # directions.same with a file that holds one direction
    land = Landscape(model, load_splits(cfg.data), ds, cfg, torch.device(device))
    land.check()
    return land


class Landscape:
    """A model on its device, its data there once, and the directions that move it.

    ``evaluate(a, b)`` moves the model's tensors in place and runs one pass over each split;
    ``evaluate_many`` evaluates K points in one pass with ``torch.func.functional_call`` under
    ``vmap`` (K stacked copies of the moved tensors), which fills a GPU better for small models.
    """

    def __init__(
        self,
        model: nn.Module,
        splits: dict[str, Split],
        ds: DirectionSet,
        cfg: Config,
        device: torch.device,
    ) -> None:
        c = cfg.compute
        self.model = model.to(device).eval()
        self.ds = ds
        self.splits = {k: Split(s.x.to(device), s.y.to(device)) for k, s in splits.items()}
        four_d = all(s.x.dim() == 4 for s in self.splits.values())
        has_conv = any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        # Channels-last made the digits CNN 2x and ResNet-20 1.5x faster on CPU (max pooling
        # and mkldnn convolutions in NCHW are slow there); 'auto' turns it on for conv nets
        # and check() turns it off again for a model that cannot run in it.
        self._layout_auto = c.channels_last == "auto"
        self._place(four_d and (c.channels_last is True or (self._layout_auto and has_conv)))
        self.batch_size, self.loss = cfg.data.batch_size, cfg.data.loss
        self.precision = PRECISION[c.precision]
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        self.compile = c.compile
        self.points_per_batch = 1 if c.points_per_batch == "auto" else int(c.points_per_batch)
        # vmap over convolutions was slower than a loop on CPU; 'auto' times it on a GPU only.
        self._auto = c.points_per_batch == "auto" and device.type == "cuda"
        self.hessian = cfg.hessian if cfg.hessian.enabled else None
        self._previous = None  # the last point's eigenvectors: the next point's warm start
        if self.hessian is not None:
            self.points_per_batch, self._auto = 1, False  # one point at a time, warm-started

    def _place(self, channels_last: bool) -> None:
        """Lay out the model and data, join the splits, and set up the perturbation."""
        self.channels_last = channels_last
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=fmt)
        self.splits = {
            k: Split(s.x.contiguous(memory_format=fmt) if s.x.dim() == 4 else s.x, s.y)
            for k, s in self.splits.items()
        }
        # All splits in one pass per point (eval mode: each sample's logits are independent of
        # its batch), then summed per split: fewer, fuller forward calls.
        self.counts = tuple(len(s) for s in self.splits.values())
        if len(self.splits) == 1:
            self.all = next(iter(self.splits.values()))
        else:
            self.all = Split(
                torch.cat([s.x for s in self.splits.values()]),
                torch.cat([s.y for s in self.splits.values()]),
            )
        self.perturbation = Perturbation(self.model, self.ds)

    def names(self) -> list[str]:
        """Surface names in the file's order: train before test, loss before accuracy."""
        names = [n for n in SURFACE_NAMES if n.split("_")[0] in self.splits]
        return names + (list(HESSIAN_NAMES) if self.hessian is not None else [])

    def hvp(self) -> MeanLossHVP:
        """Hessian-vector products of the mean loss of ``hessian.split``, at the current weights."""
        h = self.hessian or HessianConfig()
        return MeanLossHVP(
            self.model,
            self.splits[h.split],
            self.batch_size,
            self.loss,
            params=hessian_params(self.model, h.params),
        )

    def eigenvalues(self, a: float, b: float) -> dict[str, float]:
        """lambda_max and lambda_min at (a, b), warm-started from the previous point."""
        self.perturbation.set(a, b)
        ex = extreme_eigenvalues(self.hvp(), self.hessian.tol, start=self._previous)
        self._previous = ex
        return {"max_eig": ex.lmax, "min_eig": ex.lmin, "hvp_products": float(ex.products)}

    def center_summary(self, samples: int) -> dict[str, float]:
        """lambda_max, lambda_min and the Hutchinson trace (with its standard error) at 0."""
        self.perturbation.reset()
        hvp = self.hvp()
        ex = extreme_eigenvalues(hvp, (self.hessian or HessianConfig()).tol)
        out = {"lmax": ex.lmax, "lmin": ex.lmin}
        if samples:
            out["trace"], out["trace_se"] = hutchinson_trace(hvp, samples)
        return out

    def check(self) -> None:
        """Run two samples through the model so a misfit fails before any file is written."""
        if self.channels_last and self._layout_auto:
            try:
                evaluate(self.model, self._head(next(iter(self.splits))), 2, self.loss)
            except Exception as e:  # e.g. a .view() that needs NCHW strides
                log.info("channels-last layout failed (%s); using the default", describe(e))
                self._place(False)
        for name, split in self.splits.items():
            head = self._head(name)
            try:
                with torch.inference_mode():
                    classes = self.model(head.x).shape[-1]
                low, top = (int(split.y.min()), int(split.y.max())) if len(split) else (0, -1)
                if top >= classes:
                    raise LandscapeError(
                        f"the model gives {classes} outputs per sample, but the {name} split "
                        f"has labels up to {top}: the model does not fit the data's classes"
                    )
                if low < 0:
                    raise LandscapeError(
                        f"the {name} split has a negative label ({low}); labels must be class "
                        f"indices 0..{classes - 1}"
                    )
                evaluate(self.model, head, 2, self.loss)
            except LandscapeError:
                raise
            except Exception as e:
                raise LandscapeError(
                    f"the model cannot evaluate the {name} split (inputs of shape "
                    f"{tuple(split.x.shape[1:])}): {describe(e)}"
                ) from e
        if self.compile:
            try:
                compiled = torch.compile(self.model)
                evaluate(compiled, self._head(next(iter(self.splits))), 2, self.loss)
                self.forward = compiled
            except Exception as e:  # torch.compile fails in many environment-specific ways
                log.warning("torch.compile failed (%s); running eager", describe(e))
        if self._auto:
            self.points_per_batch = self._time_points_per_batch()

    def _head(self, name: str) -> Split:
        s = self.splits[name]
        return Split(s.x[:2], s.y[:2])

    def _pass(self, forward: Callable[[torch.Tensor], torch.Tensor]):
        """One pass over all splits; per split a ``Stats`` (or a list of K of them)."""
        losses, correct = per_sample(
            forward, self.all.x, self.all.y, self.batch_size, self.loss, self.precision
        )
        return dict(zip(self.splits, segment_stats(losses, correct, self.counts), strict=True))

    def evaluate(self, a: float, b: float) -> dict[str, float]:
        self.perturbation.set(a, b)
        out = {}
        for name, st in self._pass(self.forward).items():
            out[f"{name}_loss"], out[f"{name}_acc"] = st.loss, st.acc
        return out

    def evaluate_many(self, coords: list[tuple[float, float]]) -> list[dict[str, float]]:
        """Evaluate K points; one batched pass when ``points_per_batch`` > 1."""
        if self.hessian is not None:
            return [self.evaluate(a, b) | self.eigenvalues(a, b) for a, b in coords]
        if len(coords) == 1 or self.points_per_batch == 1:
            return [self.evaluate(a, b) for a, b in coords]
        from torch.func import functional_call, vmap

        self.perturbation.reset()
        dev = next(iter(self.splits.values())).x.device
        a = torch.tensor([c[0] for c in coords], device=dev)
        b = torch.tensor([c[1] for c in coords], device=dev)
        moved = self.perturbation.stacked(a, b)
        fixed = {k: v for k, v in self.model.state_dict(keep_vars=True).items() if k not in moved}

        def one(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.model, {**params, **fixed}, (x,))

        batched = vmap(one, in_dims=(0, None))
        out: list[dict[str, float]] = [{} for _ in coords]
        for name, stats in self._pass(lambda x: batched(moved, x)).items():
            for d, st in zip(out, stats, strict=True):
                d[f"{name}_loss"], d[f"{name}_acc"] = st.loss, st.acc
        return out

    def _time_points_per_batch(self, candidates: tuple[int, ...] = (1, 2, 4, 8, 16)) -> int:
        """The K with the least time per point on a quick trial at the center."""
        best, best_t = 1, float("inf")
        for k in candidates:
            self.points_per_batch = k
            try:
                self.evaluate_many([(0.0, 0.0)] * k)  # warm-up
                t = time.perf_counter()
                self.evaluate_many([(0.0, 0.0)] * k)
                per = (time.perf_counter() - t) / k
            except RuntimeError as e:  # out of memory, an op without a batching rule
                log.info("points_per_batch=%d not usable: %s", k, e)
                break
            if per < best_t:
                best, best_t = k, per
        log.info("points_per_batch: chose %d (%.4f s per point)", best, best_t)
        return best


def _existing(out: Path, cfg: Config, overwrite: bool) -> Surface | None:
    """The surface to resume, or None for a fresh start; refuses to clobber other work."""
    if not out.exists():
        return None
    if overwrite:
        return None  # replaced atomically once everything else has been checked
    s = read_surface(out)
    hint = "pass --overwrite to replace it, or choose another --out"
    if s.layout != "tui-landscape":
        raise LandscapeError(f"{out} exists and is not a tui-landscape surface; {hint}")
    try:
        stored = config_from_dict(tomllib.loads(str(s.attrs.get("config", ""))))
    except (tomllib.TOMLDecodeError, LandscapeError):
        raise LandscapeError(f"{out} exists but its stored config cannot be read; {hint}") from None
    mine, theirs = cfg.identity(), stored.identity()
    if "auto" in (mine["directions"]["type"], theirs["directions"]["type"]):
        # 'auto' resolves from the model and kind, which are compared too: compare the result.
        mine["directions"]["type"] = theirs["directions"]["type"] = s.attrs.get("dir_type")
    if mine != theirs:
        diff = next(
            f"{sec}.{k}: {theirs[sec].get(k)!r} in the file vs {mine[sec].get(k)!r} now"
            for sec in mine
            for k in mine[sec]
            if mine[sec].get(k) != theirs[sec].get(k)
        )
        raise LandscapeError(f"{out} holds a surface from a different config ({diff}); {hint}")
    return s


class Job:
    """A prepared run: call ``run`` (or iterate ``points``) to evaluate the unfinished points.

    With one worker the points are evaluated in this process; with more, a ``Pool`` of
    spawned workers evaluates them and this process only records results.
    """

    def __init__(
        self,
        writer: SurfaceWriter,
        landscape: Landscape,
        grid: Grid,
        cfg: Config,
        dir_file: Path | None = None,
        devices: list[str] | None = None,
    ) -> None:
        self.writer, self.landscape, self.grid, self.cfg = writer, landscape, grid, cfg
        self.dir_file = dir_file
        self.devices = devices or [str(next(iter(landscape.splits.values())).x.device)]
        self.resumed = bool(writer.completed.any())
        self.pool: Pool | None = None
        self.quiet_workers = False  # a TUI sets it: workers' output must not reach the screen

    @property
    def path(self) -> Path:
        return self.writer.path

    @property
    def total(self) -> int:
        return self.grid.size

    @property
    def done(self) -> int:
        return int(self.writer.completed.sum())

    def todo(self) -> list[int]:
        """Unfinished flat indices, in the order they will be computed.

        With ``compute.preview`` the coarse sub-grid (every 4th index along each axis) comes
        first, so a live view shows the whole shape early; the values do not depend on order.
        """
        todo = [int(k) for k in np.flatnonzero(~self.writer.completed.ravel())]
        if self.cfg.hessian.enabled:
            # Snake order: each point is its predecessor's neighbour, for warm starts.
            left = set(todo)
            ny = 1 if self.grid.y is None else self.grid.y.num
            return [k for k in snake_order(self.grid.x.num, ny) if k in left]
        if not self.cfg.compute.preview:
            return todo
        nx = self.grid.x.num

        def coarse(k: int) -> bool:
            i, j = divmod(k, nx)
            return j % 4 == 0 and (self.grid.ndim == 1 or i % 4 == 0)

        return [k for k in todo if coarse(k)] + [k for k in todo if not coarse(k)]

    def _outcomes(self, todo: list[int]) -> Iterator[Outcome]:
        c = self.cfg.compute
        if len(self.devices) == 1:
            return evaluate_local(
                self.landscape.evaluate_many,
                self.grid.point,
                todo,
                self.landscape.points_per_batch,
                c.retries,
            )
        if self.dir_file is None:
            raise LandscapeError("a worker pool needs the run's direction file")
        cpu_workers = sum(1 for d in self.devices if d == "cpu")
        threads = max(1, torch.get_num_threads() // max(1, cpu_workers))
        specs = [
            WorkerSpec(
                config_toml=config_to_toml(self.cfg),
                dir_file=str(self.dir_file),
                dir_type=self.landscape.ds.dir_type,
                device=d,
                threads=threads if d == "cpu" else 1,
                quiet=self.quiet_workers,
            )
            for d in self.devices
        ]
        self.pool = Pool(specs, self.grid.point, c.retries, c.restarts)
        return self.pool.run(todo)

    def points(self, outcomes: Iterator[Outcome] | None = None) -> Iterator[PointResult]:
        """Evaluate and record each unfinished point, yielding each as it finishes.

        Recorded points are appended to the journal (durable) at least every
        ``compute.flush_seconds`` and folded into the HDF5 file every
        ``compute.checkpoint_seconds`` and at the end, also on an error or Ctrl-C.
        ``outcomes`` replaces this job's own evaluation (a distributed run's gathered results).
        """
        c = self.cfg.compute
        last_flush = last_checkpoint = time.monotonic()
        ok = bad = 0
        if outcomes is None:
            outcomes = self._outcomes(self.todo())
        try:
            for o in outcomes:
                coords = self.grid.point(o.index)
                if o.values is None:
                    bad += 1
                    self.writer.record_failure(o.index, o.error or "unknown error")
                    if ok == 0 and bad >= ABORT_AFTER_FAILURES:
                        raise LandscapeError(
                            f"evaluating the point at {coords} failed: {o.error} "
                            f"(and the {bad - 1} points before it; finished points are saved "
                            f"in {self.path})"
                        )
                else:
                    ok += 1
                    self.writer.record(o.index, o.values)
                yield PointResult(o.index, coords, o.values or {}, self.done, self.total, o.error)
                now = time.monotonic()
                if now - last_checkpoint >= c.checkpoint_seconds:
                    self.writer.checkpoint()
                    last_flush = last_checkpoint = now
                elif now - last_flush >= c.flush_seconds:
                    self.writer.flush()
                    last_flush = now
        finally:
            close = getattr(outcomes, "close", None)
            if close is not None:
                close()  # stops the pool's workers
            self.landscape.perturbation.reset()
            self.writer.close()

    def run(
        self,
        on_point: Callable[[PointResult], None] | None = None,
        outcomes: Iterator[Outcome] | None = None,
    ) -> Summary:
        t0 = time.perf_counter()
        computed = 0
        for r in self.points(outcomes):
            computed += r.error is None
            if on_point is not None:
                on_point(r)
        return self.summary(computed, time.perf_counter() - t0)

    def summary(self, computed: int, seconds: float) -> Summary:
        names = self.writer.names
        name = names[0]
        z = np.where(self.writer.completed, self.writer.arrays[name], np.nan)
        finite = np.isfinite(z)
        non_finite = int((self.writer.completed & ~finite).sum())
        if finite.any():
            k = int(np.nanargmin(np.where(finite, z, np.nan)))
            value, coords = float(z.ravel()[k]), self.grid.point(k)
        else:
            value, coords = float("nan"), (float("nan"), float("nan"))
        return Summary(
            self.path,
            self.total,
            self.done,
            computed,
            seconds,
            name,
            value,
            coords,
            non_finite,
            dict(self.writer.failed),
            len(self.devices),
        )


def prepare(cfg: Config, out: str | Path, *, overwrite: bool = False) -> Job:
    """Check everything, then create (or reopen to resume) the surface file."""
    out = Path(out)
    if out.suffix not in (".h5", ".hdf5"):
        raise ConfigError(f"Expected the output to end in .h5, but got {str(out)!r}.")
    if not out.parent.exists():
        raise ConfigError(f"output folder does not exist: {out.parent}")
    grid = cfg.parsed_grid
    device = resolve_device(cfg.compute.device)
    devices = worker_devices(cfg)
    if len(devices) > 1:
        device = torch.device("cpu")  # the parent only checks the setup; workers evaluate
    if not os.access(out.parent, os.W_OK):
        raise ConfigError(f"cannot write to the output folder {out.parent} (permission denied)")
    model = load_model(cfg)
    existing = _existing(out, cfg, overwrite)
    splits = load_splits(cfg.data)
    if existing is not None:
        dir_file = Path(existing.dir_file)
        if not dir_file.is_absolute():
            dir_file = out.parent / dir_file
        if not dir_file.is_file():
            raise LandscapeError(
                f"direction file {dir_file} named by {out} is missing; restore it, "
                "or pass --overwrite to start again"
            )
        ds = load_directions(dir_file)
        ds.y = ds.y if grid.ndim == 2 else None
        if auto_points(cfg.grid.x) is not None or auto_points(cfg.grid.y) is not None:
            grid = existing.grid  # the range fitted to the path when the file was made
        if direction_hash(ds.x, ds.y) != existing.attrs.get("dir_file_sha256"):
            raise LandscapeError(
                f"direction file {dir_file} changed since {out} was started; "
                "pass --overwrite to start again"
            )
        ds.check_fits(model, str(dir_file))
    else:
        ds = make_directions(cfg, model, grid)
    pca = getattr(ds, "pca", None)
    if pca is not None and existing is None:
        grid = fit_grid(pca.coords_cos, cfg.grid)
    landscape = Landscape(model, splits, ds, cfg, device)
    landscape.check()
    if existing is not None:
        return Job(SurfaceWriter.resume(existing), landscape, grid, cfg, dir_file, devices)
    save = None
    if cfg.directions.kind == "file":
        dir_file = Path(cfg.directions.file).resolve()
    else:
        dir_file = directions_path(out)

        def save() -> None:  # under the output's lock: never rewrite another run's directions
            save_directions(dir_file, ds, extras=pca.extras() if pca is not None else None)

    stored = (
        dir_file.name
        if dir_file.resolve().parent == out.resolve().parent
        else str(dir_file.resolve())
    )
    attrs = {
        "config": config_to_toml(cfg),
        "dir_file_sha256": direction_hash(ds.x, ds.y),
        "dir_type": ds.dir_type,
        "device": ", ".join(devices) if len(devices) > 1 else str(device),
    }
    extras = {}
    if pca is not None:  # the path on the plane, in the reference's names, and our exact ones
        extras = {**path_datasets(pca.coords_cos, pca.coords_lsq), **pca.extras()}
    writer = SurfaceWriter.create(
        out, grid, landscape.names(), attrs, stored, on_locked=save, extras=extras
    )
    return Job(writer, landscape, grid, cfg, dir_file, devices)
