"""What a study would run, and a rough time for it (``tui-landscape study --dry-run``).

Nothing is written. Each surface stage is timed by ``engine.run.time_point`` (one grid point
at the centre, after a warm-up) on a model of the member's architecture with fresh weights
(the minimizer does not exist yet; a point costs the same), times its points; training by a
few timed batches, times the batches of its epochs (and of each learning rate of the grid);
the Hessian and the measures in units of one evaluation. Timings are shared between members
of one architecture and data, so a dry run of a large study takes seconds, not minutes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from engine.config import Config, config_from_dict, config_to_dict
from engine.study.runner import Task, plan, task_state
from engine.study.spec import Study

__all__ = ["Estimate", "estimate"]

# Rough costs in units of one timed grid point (a pass over the data), for what is not timed
# (timing a Hessian-vector product would cost minutes on a deep net: the dry run must stay
# cheap). Calibrated on the digits studies (2 CPU cores, 2026-12-06): one product costs 5 to
# 10 points (a point is a forward pass in inference mode; a product, a forward and two
# backward passes with the graph kept; the width study's centres, after the HVP mode probe:
# 5 for ResNet-20 at width 4, 10 at width 32); a map point takes about 60 products to the
# default tolerance, the centre 22 to 45 (there) plus its Hutchinson probes, top-k and
# density runs. With 15 and 90 the dry run said 1 to 3.4 hours for the width study's 25
# minutes. The measures cost about one pass per ascent step (with its gradient, two), random
# sample, and basin direction x radius.
PRODUCT = 8
MAP_PRODUCTS = 60
CENTRE_PRODUCTS = 40
TOP_K_PRODUCTS = 15  # each eigenvalue of the top k beyond the first
BASIN_POINTS_PER_DIRECTION = 8
TRAIN_BATCHES_TIMED = 3


@dataclass(frozen=True)
class Estimate:
    task: Task
    state: str  # 'done', 'resume' or 'todo'
    points: int  # grid points (0 for train and measures)
    seconds: float  # rough, for what is left


def _fresh(cfg: Config) -> Config:
    """The config with fresh weights and random directions: something to time before the
    minimizer and the training path exist."""
    d = config_to_dict(cfg)
    d["model"]["checkpoint"] = ""
    dirs = d["directions"]
    if dirs["kind"] in ("pca", "interpolate"):
        dirs.update(kind="random", checkpoints="", target="")
        for k in ("x", "y"):
            if d["grid"][k].startswith("auto"):
                n = d["grid"][k][5:] or "21"
                d["grid"][k] = f"-1:1:{n}"
    return config_from_dict(d)


def _key(cfg: Config, *parts: object) -> str:
    d = config_to_dict(cfg)
    return json.dumps([d["model"]["arch"], d["model"]["kwargs"], d["data"], *parts], default=str)


def _point(cfg: Config, cache: dict[str, float]) -> float:
    from engine.run import time_point

    k = _key(cfg)
    if k not in cache:
        plain = config_to_dict(_fresh(cfg))
        plain["hessian"] = {"enabled": False}
        if plain["grid"]["x"] == "0:0:1":  # a Hessian at the centre: time an ordinary point
            plain["grid"].update(x="-1:1:2", y="")
        cache[k] = time_point(config_from_dict(plain))[0]
    return cache[k]


def _train_seconds(cfg: Config, lrs: int, cache: dict[str, float]) -> float:
    """Seconds to train ``cfg``: a few timed batches times every batch of the run."""
    import torch
    import torch.nn.functional as F

    from engine.data import load_splits
    from engine.devices import resolve_device
    from engine.models import build_model

    tc = cfg.train
    k = _key(cfg, tc.batch_size, tc.optimizer)
    train = load_splits(cfg.data, ["train"])["train"]
    batches = math.ceil(len(train) / tc.batch_size)
    if k not in cache:
        device = resolve_device(cfg.compute.device)
        model = build_model(cfg.model.arch, cfg.model.kwargs, seed=0).to(device).train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        x, y = train.x[: tc.batch_size].to(device), train.y[: tc.batch_size].to(device)
        times = []
        for _ in range(TRAIN_BATCHES_TIMED + 1):  # the first is a warm-up
            t = time.perf_counter()
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            times.append(time.perf_counter() - t)
        cache[k] = min(times[1:])
    return cache[k] * batches * tc.epochs * max(1, lrs)


def _centre_products(cfg: Config) -> int:
    """Products at the centre beyond its eigenpair: Hutchinson probes, the extra top-k
    eigenvalues, the density's Lanczos runs."""
    h = cfg.hessian
    extra = h.trace_samples + TOP_K_PRODUCTS * max(0, h.top_k - 1)
    extra += h.density_probes * h.density_steps
    return CENTRE_PRODUCTS + extra


def estimate(study: Study, out: Path) -> list[Estimate]:
    """Each task's state and a rough time for what is left of it."""
    from engine.study.runner import surface_state

    cache: dict[str, float] = {}
    spec = study.spec
    rows = []
    for task in plan(study, out):
        state = task_state(task)
        cfg, name = task.cfg, task.stage.name
        points, seconds = 0, 0.0
        if task.stage.is_surface:
            points = _fresh(cfg).parsed_grid.size
        if state == "done":
            pass
        elif task.stage.is_surface:
            left = points
            st = surface_state(task.path) if state == "resume" else None
            if st is not None:
                left = st[1] - st[0]
            per = _point(cfg, cache)
            seconds = per * left
            if cfg.hessian.enabled:
                seconds = per * PRODUCT * (MAP_PRODUCTS * max(left - 1, 0) + _centre_products(cfg))
        elif name == "train":
            seconds = _train_seconds(cfg, len(spec.recipe.lr_grid), cache)
        elif name == "measures":
            m = spec.measures
            units = 2 * m.steps + m.samples + BASIN_POINTS_PER_DIRECTION * m.directions
            seconds = units * _point(cfg, cache)
        rows.append(Estimate(task, state, points, 0.0 if state == "done" else seconds))
    return rows
