"""Building what a run evaluates: the model with its checkpoint, the directions, the grid.

Each function takes the resolved config and checks what it builds against the model, so a
misfit fails before any file is written. ``make_directions`` covers every
``directions.kind`` through the kind registry (``engine.kinds``: a builder per kind is
here, ``@kind_builder``); a PCA run's result (explained variance, the projected path) is a field of
``Directions``, and ``fit_grid`` fits an automatic grid around that path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from engine.config import IN_MEMORY, Config, GridConfig, auto_points
from engine.data import check_dataset, load_splits
from engine.directions import (
    DirectionSet,
    has_batchnorm,
    interpolation_direction,
    random_direction,
)
from engine.errors import ConfigError, LandscapeError
from engine.formats import load_directions
from engine.grid import Axis, Grid, parse_axis
from engine.hessian import (
    MeanLossHVP,
    eigenvector_directions,
    extreme_eigenvalues,
    hessian_params,
)
from engine.imports import is_callable_spec
from engine.kinds import build_kind, kind_builder
from engine.models import build_model, create_model, list_models, load_checkpoint
from engine.models.hf import is_hf_spec
from engine.recipes import PREFIX as RECIPE_PREFIX
from engine.recipes import RECIPES, recipe_checkpoint
from engine.splits import Batches, Split

if TYPE_CHECKING:
    from engine.losses import Loss
    from engine.trajectory import PCAResult

log = logging.getLogger(__name__)

PATH_MARGIN = 0.25  # of the path's span, around a PCA path on an automatic grid

__all__ = ["Directions", "fit_grid", "load_model", "make_directions", "preflight"]


def _check_recipe(spec: str, arch: str, key: str) -> None:
    """A ``recipe:NAME`` checkpoint must be of ``model.arch``'s architecture."""
    recipe = RECIPES.get(spec.removeprefix(RECIPE_PREFIX))
    if recipe is not None and recipe.arch != arch:
        raise ConfigError(
            f"`{key}` = {spec!r} is a checkpoint of {recipe.arch!r}, but `model.arch` is {arch!r}."
        )


def _checkpoint_path(spec: str, arch: str, key: str) -> str:
    if not spec.startswith(RECIPE_PREFIX):
        return spec
    _check_recipe(spec, arch, key)
    return str(recipe_checkpoint(spec))


def preflight(cfg: Config) -> None:
    """The checks a run makes before its costly steps, made without them: the model's name,
    its checkpoints (a recipe of the same architecture, a file that exists), the data set's
    name and the direction file. Cheap (no model is built, no recipe trained, no data read,
    nothing written), so the app runs it on every change and ``prepare`` runs it first."""
    arch = cfg.model.arch
    if is_callable_spec(arch) and not is_hf_spec(arch):
        target = arch.rpartition(":")[0]
        if target.endswith(".py") and not Path(target).is_file():
            raise ConfigError(f"`model.arch`: file not found: {target}")
    elif not is_hf_spec(arch) and arch not in {m.name for m in list_models()}:
        create_model(arch)  # raises the registry's error, which lists the choices
    d = cfg.directions
    checkpoints = [("model.checkpoint", cfg.model.checkpoint)]
    if d.kind == "interpolate":
        checkpoints.append(("directions.target", d.target))
    for key, spec in checkpoints:
        if spec.startswith(RECIPE_PREFIX):
            if spec.removeprefix(RECIPE_PREFIX) not in RECIPES:
                recipe_checkpoint(spec)  # raises: an unknown recipe, with the known ones
            _check_recipe(spec, arch, key)
        elif spec and not Path(spec).exists():
            raise ConfigError(f"`{key}`: checkpoint not found: {spec}")
    if d.kind == "file" and not Path(d.file).is_file():
        raise ConfigError(f"`directions.file`: direction file not found: {d.file}")
    check_dataset(cfg.data)
    for key, spec in (("data.loss", cfg.data.loss), ("data.collate", cfg.data.collate)):
        target = spec.rpartition(":")[0]
        if target.endswith(".py") and not Path(target).is_file():
            raise ConfigError(f"`{key}`: file not found: {target}")


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


@dataclass(frozen=True)
class Directions:
    """What a run moves the model along: the direction set, the grid it spans and, for
    ``directions.kind = 'pca'``, the trajectory PCA that made them."""

    ds: DirectionSet
    grid: Grid
    pca: PCAResult | None = None  # explained variance and the path's coordinates on the plane


def make_directions(
    cfg: Config,
    model: nn.Module,
    grid: Grid | None = None,
    *,
    splits: dict[str, Split | Batches] | None = None,
    loss: Loss | None = None,
) -> Directions:
    """The directions the config asks for, checked against the model, on ``grid`` (default
    ``grid.x``/``grid.y``; a PCA run fits ``auto`` axes around its path). ``splits`` and
    ``loss`` (default: loaded from the config) are what Hessian directions are of."""
    grid = cfg.parsed_grid if grid is None else grid
    ds, pca = _direction_set(cfg, model, grid, splits, loss)
    if pca is not None:
        grid = fit_grid(pca.coords_cos, cfg.grid)
    return Directions(ds, grid, pca)


@dataclass(frozen=True)
class KindContext:
    """What a direction kind's builder gets: the run's config and model, the grid, the
    resolved ``directions.type``, the attributes every direction file records, and the
    splits and loss (if given) that Hessian directions are of."""

    cfg: Config
    model: nn.Module
    grid: Grid
    dir_type: str
    attrs: dict[str, Any]
    splits: dict[str, Split | Batches] | None
    loss: Loss | None


def _direction_set(
    cfg: Config,
    model: nn.Module,
    grid: Grid,
    splits: dict[str, Split | Batches] | None,
    loss: Loss | None,
) -> tuple[DirectionSet, PCAResult | None]:
    d = cfg.directions
    dir_type = d.type
    if dir_type == "auto":
        # Moving the running statistics is pointless when each point re-estimates them.
        moves_stats = d.kind == "interpolate" and cfg.compute.bn == "keep"
        dir_type = "states" if moves_stats and has_batchnorm(model) else "weights"
    attrs = {"kind": d.kind, "norm": d.norm, "ignore": d.ignore, "seed": d.seed}
    return build_kind(d.kind, KindContext(cfg, model, grid, dir_type, attrs, splits, loss))


@kind_builder("file")
def _file(ctx: KindContext) -> tuple[DirectionSet, None]:
    d, model, grid = ctx.cfg.directions, ctx.model, ctx.grid
    ds = load_directions(d.file, None if d.type == "auto" else ctx.dir_type)
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
    return ds, None


@kind_builder("pca")
def _pca_kind(ctx: KindContext) -> tuple[DirectionSet, PCAResult]:
    pca = _pca(ctx.cfg, ctx.model, ctx.dir_type)
    return pca.direction_set(), pca


@kind_builder("hessian")
def _hessian_kind(ctx: KindContext) -> tuple[DirectionSet, None]:
    ds = _hessian_directions(ctx.cfg, ctx.model, ctx.dir_type, ctx.attrs, ctx.splits, ctx.loss)
    return ds, None


@kind_builder("interpolate")
def _interpolate(ctx: KindContext) -> tuple[DirectionSet, None]:
    other = load_model(ctx.cfg, ctx.cfg.directions.target, "directions.target")
    x = interpolation_direction(ctx.model, other, ctx.dir_type)
    return DirectionSet(x, None, ctx.dir_type, ctx.attrs), None


@kind_builder("random")
def _random(ctx: KindContext) -> tuple[DirectionSet, None]:
    d = ctx.cfg.directions
    g = torch.Generator().manual_seed(d.seed)
    x = random_direction(ctx.model, ctx.dir_type, d.norm, d.ignore, g)
    y = None
    if ctx.grid.ndim == 2:
        y = x if d.same else random_direction(ctx.model, ctx.dir_type, d.norm, d.ignore, g)
    return DirectionSet(x, y, ctx.dir_type, ctx.attrs), None


def _pca(cfg: Config, model: nn.Module, dir_type: str) -> PCAResult:
    """The PCA of the training path in ``directions.checkpoints``, with progress lines."""
    from engine.trajectory import find_checkpoints, pca_directions

    d = cfg.directions
    checkpoints = find_checkpoints(d.checkpoints)
    final = None
    if cfg.model.checkpoint and not cfg.model.checkpoint.startswith(RECIPE_PREFIX):
        final = Path(cfg.model.checkpoint)
    at_model = cfg.model.arch.startswith(IN_MEMORY)  # handed over in memory: no file of it
    step = [0]

    def progress(done: int, total: int) -> None:
        if done == total or done >= step[0]:  # about ten lines, whatever the length
            log.info("PCA: read %d of %d checkpoint files", done, total)
            step[0] = done + max(1, total // 10)

    log.info("PCA over %d checkpoints from %s", len(checkpoints), d.checkpoints)
    return pca_directions(
        model,
        checkpoints,
        final,
        dir_type=dir_type,
        ignore=d.ignore,
        progress=progress,
        at_model=at_model,
    )


def _hessian_directions(
    cfg: Config,
    model: nn.Module,
    dir_type: str,
    attrs: dict[str, Any],
    splits: dict[str, Split | Batches] | None,
    loss: Loss | None,
) -> DirectionSet:
    """Eigenvectors of the Hessian at the model: the axes on which saddles show."""
    h = cfg.hessian
    split = (splits or load_splits(cfg.data, [h.split]))[h.split]
    hvp = MeanLossHVP(
        model.eval(), split, cfg.data.fixed_batch, loss or cfg.data.loss,
        params=hessian_params(model, h.params), l2=cfg.data.l2,
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
