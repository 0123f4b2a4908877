"""The stages of a study, by name (a registry): what each writes and the config keys it sets.

Every surface stage is an ordinary ``compute`` job on the member's config with a few keys
set (directions, grid, Hessian), writing an ordinary surface file, so each opens in ``info``,
``plot``, ``compare`` and the app. ``train`` and ``measures`` are the two that are not
surfaces: the first writes a run folder and its ``outcome.json``, the second ``measures.json``.
Direction seeds are the replicate's seed: within a replicate every member is mapped along
directions drawn from the same generator (then normalised against its own weights).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.registry import Registry

__all__ = ["STAGES", "Stage", "StageContext", "stage_names"]


@dataclass(frozen=True)
class StageContext:
    """What a stage's keys depend on: the replicate's seed and the member's files."""

    seed: int
    run_dir: Path  # the training run folder (its checkpoints are the PCA path)
    checkpoint: Path  # the minimizer
    target: Path | None = None  # a pair's second minimizer


# A stage's keys from the study spec (an ``engine.study.spec.StudySpec``: not imported here,
# since the spec checks its stage names against this registry) and the stage's context.
StudySpec = Any
Keys = Callable[[StudySpec, StageContext], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    name: str
    scope: Literal["member", "pair"]
    file: str  # what it writes, in the member's (or pair's) folder
    doc: str
    keys: Keys | None = None  # config keys of a surface stage; None: train or measures

    @property
    def is_surface(self) -> bool:
        return self.keys is not None


STAGES: Registry[Stage] = Registry("stage", "stages")


def _add(stage: Stage) -> None:
    STAGES.add(stage.name, stage)


def _random(spec: StudySpec, ctx: StageContext, norm: str, ndim: int) -> dict[str, Any]:
    g = spec.grid
    return {
        "directions.kind": "random",
        "directions.norm": norm,
        "directions.seed": ctx.seed,
        "directions.same": False,
        "directions.file": "",
        "directions.target": "",
        "directions.checkpoints": "",
        "grid.x": g.x1d if ndim == 1 else g.x2d,
        "grid.y": "" if ndim == 1 else g.y2d,
        "hessian.enabled": False,
    }


def _surface(norm: str, ndim: int) -> Keys:
    return lambda spec, ctx: _random(spec, ctx, norm, ndim)


def _hessian(spec: StudySpec, ctx: StageContext) -> dict[str, Any]:
    keys = {**_random(spec, ctx, "filter", 2), "hessian.enabled": True}
    g = spec.grid
    if not g.hessian_map or (g.hessian_map_seeds and ctx.seed not in g.hessian_map_seeds):
        keys.update({"grid.x": "0:0:1", "grid.y": ""})
    elif g.hessian_grid:  # a Hessian point costs ~100 surface points: a coarser map
        keys.update({"grid.x": g.hessian_grid, "grid.y": g.hessian_grid})
    return keys


def _pca(spec: StudySpec, ctx: StageContext) -> dict[str, Any]:
    return {
        **_random(spec, ctx, "filter", 2),
        "directions.kind": "pca",
        "directions.norm": "filter",
        "directions.checkpoints": str(ctx.run_dir),
        "grid.x": spec.grid.pca,
        "grid.y": spec.grid.pca,
    }


def _interpolation(spec: StudySpec, ctx: StageContext) -> dict[str, Any]:
    return {
        **_random(spec, ctx, "filter", 1),
        "directions.kind": "interpolate",
        "directions.target": str(ctx.target),
        "grid.x": spec.grid.interpolation,
        # Past its ends the line moves BN running variances below zero (NaN losses from
        # alpha = 1.05 on for the digits CNNs): each point re-estimates them instead.
        "compute.bn": "recalibrate" if _has_bn(ctx.checkpoint) else "keep",
    }


def _has_bn(checkpoint: Path) -> bool:
    """Whether a minimizer keeps BN running statistics (the stage's keys are refreshed once
    it is trained; before, the answer does not matter)."""
    from engine.errors import LandscapeError
    from engine.models.checkpoint import read_state_dict

    if not checkpoint.is_file():
        return False
    try:
        return any(k.endswith("running_var") for k in read_state_dict(checkpoint))
    except LandscapeError:
        return False


_add(Stage("train", "member", "train", "train to a minimizer (engine.minimizer), if not done"))
_add(Stage("surface_1d", "member", "surface_1d.h5", "1D, filter-normalized", _surface("filter", 1)))
_add(Stage("surface_2d", "member", "surface_2d.h5", "2D, filter-normalized", _surface("filter", 2)))
_add(Stage("surface_1d_raw", "member", "surface_1d_raw.h5", "1D, norm none", _surface("none", 1)))
_add(Stage("surface_2d_raw", "member", "surface_2d_raw.h5", "2D, norm none", _surface("none", 2)))
_add(Stage("hessian", "member", "hessian.h5", "Hessian at the centre (or map)", _hessian))
_add(Stage("pca", "member", "pca.h5", "PCA plane of the training path", _pca))
_add(Stage("measures", "member", "measures.json", "generalization and sharpness measures"))
_add(Stage("interpolation", "pair", "interpolation.h5", "between two minimizers", _interpolation))


def stage_names(spec: StudySpec) -> list[str]:
    """The stages a study runs, in the registry's order (train first, measures after the
    surfaces it reads); ``stages = []`` means all. Train is always run: the rest need it."""
    chosen = set(spec.stages) if spec.stages else set(STAGES.names())
    return [n for n in STAGES.names() if n in chosen or n == "train"]
