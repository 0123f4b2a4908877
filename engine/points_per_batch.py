"""``compute.points_per_batch = "auto"``: how many grid points are evaluated together.

On CUDA the K points are stacked under ``torch.func.vmap`` and K is the fastest of a short
trial at the centre, within the batch-size probe's budget (``engine.autobatch``); elsewhere
the K points' forward passes run in turn and their losses and metrics are computed at once,
so K only shares those statistics' fixed cost, which matters for cheap points alone.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch

from engine.autobatch import FEW_POINTS, probe_budget

log = logging.getLogger(__name__)

__all__ = ["CPU_GROUP_S", "GROUP_S", "MAX_LOGITS", "choose_points_per_batch"]


def choose_points_per_batch(land: Any, points: int | None) -> int:
    """``compute.points_per_batch = 'auto'`` for ``engine.landscape.Landscape`` ``land``
    (checked): 1 for a run of a few points; on CUDA the fastest K of a trial
    (``_time_points_per_batch``); elsewhere K points in turn share their statistics' fixed
    cost (some 15 small ops, 0.1 to 0.3 ms a point on a 2-core VM), which matters for cheap
    points only: as many as keep a group under ``CPU_GROUP_S``, 8 at most (the digits MLP on
    one thread, in one trial: 1.33x a plain forward pass for K = 4, 1.30x for 8, 1.39x for 16,
    1.48x for 32, as its logits outgrow the caches; the digits CNN, 15 ms a point, the same
    for K = 1 and 4)."""
    if points is not None and points <= FEW_POINTS:
        return 1  # as the batch size: a run of a few points is not worth a trial
    if land._vmap:
        return _time_points_per_batch(land, points)
    one = torch.get_num_threads() == 1
    clock = time.process_time if one else time.perf_counter  # as the batch-size probe
    land.points_per_batch = 1
    per = math.inf
    try:
        land.evaluate_many([(0.0, 0.0)])  # warm-up
        for _ in range(2):
            t = clock()
            land.evaluate_many([(0.0, 0.0)])
            per = min(per, clock() - t)
    except RuntimeError as e:  # out of memory at a given size: the run reports its own
        log.info("points_per_batch: the centre failed (%s); 1", e)
        return 1
    held = max(1, len(land.all) * land._classes)
    k = 1
    while k < 8 and 2 * k * per <= CPU_GROUP_S and 2 * k * held <= MAX_LOGITS:
        k *= 2
    log.info("points_per_batch: %d (%.4f s a point)", k, per)
    return k


def _time_points_per_batch(
    land: Any, points: int | None, candidates: tuple[int, ...] = (1, 2, 4, 8, 16)
) -> int:
    """The K with the least time per point on a quick trial at the centre: each K timed a
    few times (the fastest kept: another process's load only adds), within the batch-size
    probe's bound, and no K whose group takes longer than ``GROUP_S`` (its points' results
    arrive together) or holds more than ``MAX_LOGITS`` logits."""
    clock = time.perf_counter
    held = max(1, len(land.all) * land._classes)
    best, best_t, t0, budget = 1, math.inf, clock(), None
    for k in candidates:
        if k * held > MAX_LOGITS and k > 1:
            break
        land.points_per_batch = k
        try:
            land.evaluate_many([(0.0, 0.0)] * k)  # warm-up
            per = math.inf
            for _ in range(_K_REPS):
                t = clock()
                land.evaluate_many([(0.0, 0.0)] * k)
                per = min(per, (clock() - t) / k)
        except RuntimeError as e:  # out of memory, an op without a batching rule
            log.info("points_per_batch=%d not usable: %s", k, e)
            break
        if per < best_t:
            best, best_t = k, per
        # The batch-size probe's bound, less what that probe took in this run.
        budget = budget or probe_budget(points or 0, per) - land.batch_choice.seconds
        nxt = 2 * k * best_t  # the next K's group
        if nxt > GROUP_S or clock() - t0 + (_K_REPS + 1) * nxt > budget:
            break
    land.points_per_batch = best
    log.info("points_per_batch: chose %d (%.4f s per point)", best, best_t)
    return best


GROUP_S = 0.25  # the longest a group of K points may take ('auto'): results stay frequent
CPU_GROUP_S = 0.02  # on CPU, K points share ~0.1-0.3 ms of statistics: worth it below this
MAX_LOGITS = 1 << 22  # the most logits K points hold at once ('auto'): 16 MB of float32
_K_REPS = 3
