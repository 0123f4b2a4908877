"""Computing a surface: prepare everything, then evaluate the unfinished grid points.

``prepare`` validates the whole setup (model, checkpoint, data, directions, output)
before it writes anything, so a bad input never leaves a file behind; the returned
``Job`` evaluates points in flat-index order, records them, and flushes finished
points to the file at least every ``compute.flush_seconds``. Running the same
config against the same output again resumes: only unfinished points are computed.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.config import Config, config_from_dict, config_to_toml
from engine.data import Split, load_splits
from engine.directions import (
    DirectionSet,
    Perturbation,
    direction_hash,
    has_batchnorm,
    interpolation_direction,
    load_directions,
    random_direction,
    save_directions,
)
from engine.errors import ConfigError, LandscapeError
from engine.evaluate import evaluate
from engine.grid import Grid
from engine.models import build_model, load_checkpoint
from engine.recipes import PREFIX as RECIPE_PREFIX
from engine.recipes import recipe_checkpoint
from engine.storage import SURFACE_NAMES, Surface, SurfaceWriter, read_surface

__all__ = [
    "Job",
    "Landscape",
    "PointResult",
    "Summary",
    "directions_path",
    "load_model",
    "make_directions",
    "prepare",
    "resolve_device",
]


@dataclass(frozen=True)
class PointResult:
    """One finished grid point: flat index, coordinates and its values."""

    index: int
    coords: tuple[float, float]
    values: dict[str, float]


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


def _checkpoint_path(spec: str) -> str:
    return str(recipe_checkpoint(spec)) if spec.startswith(RECIPE_PREFIX) else spec


def load_model(
    cfg: Config, checkpoint: str | None = None, key: str = "model.checkpoint"
) -> nn.Module:
    """Build ``model.arch`` and load ``checkpoint`` (default ``model.checkpoint``) into it."""
    model = build_model(cfg.model.arch, cfg.model.kwargs, seed=cfg.model.seed)
    ckpt = cfg.model.checkpoint if checkpoint is None else checkpoint
    if ckpt:
        load_checkpoint(model, _checkpoint_path(ckpt), key)
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
    if d.kind == "interpolate":
        other = load_model(cfg, d.target, "directions.target")
        return DirectionSet(interpolation_direction(model, other, dir_type), None, dir_type, attrs)
    g = torch.Generator().manual_seed(d.seed)
    x = random_direction(model, dir_type, d.norm, d.ignore, g)
    y = None
    if grid.ndim == 2:
        y = x if d.same else random_direction(model, dir_type, d.norm, d.ignore, g)
    return DirectionSet(x, y, dir_type, attrs)


class Landscape:
    """A model on its device, its data there once, and the directions that move it."""

    def __init__(
        self,
        model: nn.Module,
        splits: dict[str, Split],
        ds: DirectionSet,
        cfg: Config,
        device: torch.device,
    ) -> None:
        self.model = model.to(device).eval()
        self.splits = {k: s.to(device) for k, s in splits.items()}
        self.perturbation = Perturbation(self.model, ds)
        self.batch_size, self.loss = cfg.data.batch_size, cfg.data.loss

    def names(self) -> list[str]:
        """Surface names in the file's order: train before test, loss before accuracy."""
        return [n for n in SURFACE_NAMES if n.split("_")[0] in self.splits]

    def check(self) -> None:
        """Run two samples through the model so a misfit fails before any file is written."""
        for name, split in self.splits.items():
            try:
                evaluate(self.model, Split(split.x[:2], split.y[:2]), 2, self.loss)
            except Exception as e:
                first = str(e).splitlines()[0] if str(e) else ""
                raise LandscapeError(
                    f"the model cannot evaluate the {name} split (inputs of shape "
                    f"{tuple(split.x.shape[1:])}): {type(e).__name__}: {first}"
                ) from e

    def evaluate(self, a: float, b: float) -> dict[str, float]:
        self.perturbation.set(a, b)
        out = {}
        for name, split in self.splits.items():
            st = evaluate(self.model, split, self.batch_size, self.loss)
            out[f"{name}_loss"], out[f"{name}_acc"] = st.loss, st.acc
        return out


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
    """A prepared run: call ``run`` to evaluate the unfinished points."""

    def __init__(
        self, writer: SurfaceWriter, landscape: Landscape, grid: Grid, cfg: Config
    ) -> None:
        self.writer, self.landscape, self.grid, self.cfg = writer, landscape, grid, cfg
        self.resumed = bool(writer.completed.any())

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
        return [int(k) for k in np.flatnonzero(~self.writer.completed.ravel())]

    def points(self) -> Iterator[PointResult]:
        """Evaluate and record each unfinished point; the file is flushed as they go."""
        last = time.monotonic()
        try:
            for k in self.todo():
                a, b = self.grid.point(k)
                values = self.landscape.evaluate(a, b)
                self.writer.record(k, values)
                now = time.monotonic()
                if now - last >= self.cfg.compute.flush_seconds:
                    self.writer.flush()
                    last = now
                yield PointResult(k, (a, b), values)
        finally:
            self.landscape.perturbation.reset()
            self.writer.close()

    def run(self, on_point: Callable[[PointResult], None] | None = None) -> Summary:
        t0 = time.perf_counter()
        computed = 0
        for r in self.points():
            computed += 1
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
            self.path, self.total, self.done, computed, seconds, name, value, coords, non_finite
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
    existing = _existing(out, cfg, overwrite)
    model = load_model(cfg)
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
        if direction_hash(ds.x, ds.y) != existing.attrs.get("dir_file_sha256"):
            raise LandscapeError(
                f"direction file {dir_file} changed since {out} was started; "
                "pass --overwrite to start again"
            )
        ds.check_fits(model, str(dir_file))
    else:
        ds = make_directions(cfg, model, grid)
    landscape = Landscape(model, splits, ds, cfg, device)
    landscape.check()
    if existing is not None:
        return Job(SurfaceWriter.resume(existing), landscape, grid, cfg)
    if cfg.directions.kind == "file":
        dir_file = Path(cfg.directions.file).resolve()
    else:
        dir_file = directions_path(out)
        save_directions(dir_file, ds)
    stored = (
        dir_file.name
        if dir_file.resolve().parent == out.resolve().parent
        else str(dir_file.resolve())
    )
    attrs = {
        "config": config_to_toml(cfg),
        "dir_file_sha256": direction_hash(ds.x, ds.y),
        "dir_type": ds.dir_type,
        "device": str(device),
    }
    writer = SurfaceWriter.create(out, grid, landscape.names(), attrs, stored)
    return Job(writer, landscape, grid, cfg)
