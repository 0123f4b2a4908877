"""compute.points_per_batch: K points together give the numbers of one point at a time, on
CPU's path (forward passes in turn, statistics at once) and vmap's; 'auto' keeps its bounds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine import points_per_batch as ppb
from engine.config import load_config
from engine.directions import DirectionSet, random_direction
from engine.landscape import Landscape
from engine.points_per_batch import choose_points_per_batch
from engine.splits import Split

POINTS = [(-0.5, 0.25), (0.0, 0.0), (0.3, -1.0), (1.0, 0.5), (2.0, 2.0)]


def _landscape(sets: list[str], n: int = 150) -> Landscape:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 4, 4, generator=g)
    splits = {
        "train": Split(x[:100], torch.arange(100) % 3),
        "test": Split(x[100:], torch.arange(n - 100) % 3),
    }
    g = torch.Generator().manual_seed(0)
    dx = random_direction(model, "weights", "filter", "biasbn", g)
    dy = random_direction(model, "weights", "filter", "biasbn", g)
    cfg = load_config(None, ["data.splits=['train', 'test']", "data.batch_size=32", *sets])
    land = Landscape(model, splits, DirectionSet(dx, dy, "weights"), cfg, torch.device("cpu"))
    land.check(1000)
    return land


def test_k_points_in_turn_equal_one_at_a_time_exactly():
    one = _landscape(["compute.points_per_batch=1"]).evaluate_many(POINTS)
    land = _landscape(["compute.points_per_batch=4", "data.l2=0.01"])
    assert land.points_per_batch == 4 and not land._vmap
    reg = _landscape(["compute.points_per_batch=1", "data.l2=0.01"]).evaluate_many(POINTS)
    assert land.evaluate_many(POINTS[:4]) + land.evaluate_many(POINTS[4:]) == reg
    # Same forward passes, same per-sample math, the same float64 sums: bit for bit.
    plain = _landscape(["compute.points_per_batch=3"])
    assert plain.evaluate_many(POINTS[:3]) + plain.evaluate_many(POINTS[3:]) == one
    assert one[1]["train_loss"] != one[2]["train_loss"]  # the points differ


def test_vmap_path_equals_one_at_a_time():
    one = _landscape(["compute.points_per_batch=1"]).evaluate_many(POINTS)
    land = _landscape(["compute.points_per_batch=5"])
    land._vmap = True  # the GPU's path, run here on CPU
    for got, want in zip(land.evaluate_many(POINTS), one, strict=True):
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-6), k


def test_auto_k_keeps_its_bounds(monkeypatch):
    land = _landscape(["compute.points_per_batch=auto"])
    assert land.points_per_batch == 8  # cheap points on CPU: 8 share their statistics
    # No K whose logits pass the bound: 150 samples x 3 classes = 450 a point.
    monkeypatch.setattr(ppb, "MAX_LOGITS", 900)
    assert _landscape(["compute.points_per_batch=auto"]).points_per_batch == 2
    # No group longer than CPU_GROUP_S: here every point is longer.
    monkeypatch.setattr(ppb, "CPU_GROUP_S", 0.0)
    assert _landscape(["compute.points_per_batch=auto"]).points_per_batch == 1


def test_a_run_of_a_few_points_does_not_time_k(monkeypatch):
    land = _landscape(["compute.points_per_batch=auto"])
    monkeypatch.setattr(Landscape, "evaluate_many", lambda *a: pytest.fail("timed"))
    assert choose_points_per_batch(land, 4) == 1
    land._vmap = True
    assert choose_points_per_batch(land, 8) == 1
