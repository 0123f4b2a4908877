"""engine.correlation against scipy and tables worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from engine.correlation import (
    bootstrap,
    bootstrap_interval,
    column,
    granulated,
    granulated_tau,
    kendall,
    kendall_tau,
    pooled,
)


def test_kendall_tau_equals_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(2, 60))  # both paths: plain Python up to 24, numpy beyond
        x = rng.integers(0, 4, n).astype(float)  # many ties
        y = rng.integers(0, 3, n) + rng.random() * (rng.random() < 0.5)
        want = stats.kendalltau(x, y).statistic
        got = kendall_tau(x, y)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-12)


def test_kendall_tau_by_hand_and_undefined_cases():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # 3 pairs: (1,2) concordant, (1,3) concordant, (2,3) tied in y: tau-b = 2 / sqrt(3 * 2)
    assert kendall_tau([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / math.sqrt(6))
    # Non-finite pairs are left out; fewer than 2 pairs or a constant variable give NaN + reason.
    assert kendall_tau([1, 2, math.nan, 3], [1, 2, 5, 3]) == 1.0
    one = kendall([1, math.nan], [1, 2])
    assert math.isnan(one.value) and one.n == 1 and "need 2" in one.reason
    flat = kendall([1, 2, 3], [5, 5, 5])
    assert math.isnan(flat.value) and "values of y are equal" in flat.reason
    assert math.isnan(kendall_tau([], []))


def row(seed, bs, wd, sharp, gap, status="ok"):
    return {
        "member": f"bs{bs}-wd{wd}",
        "seed": seed,
        "factors": {"batch_size": bs, "weight_decay": wd},
        "status": status,
        "values": {"sharp": sharp, "gap": gap},
    }


def test_granulated_tau_by_hand():
    # Seed 0: a 2 x 2 design. Along batch_size (wd fixed) the measure follows the gap in both
    # groups (+1, +1); along weight_decay it follows the gap for bs 16 (1.0 -> 1.5, 0.10 ->
    # 0.15: +1) and goes against it for bs 128 (2.0 -> 1.8, 0.20 -> 0.30: -1).
    # psi_bs = 1, psi_wd = 0, psi = 0.5.
    table = [
        row(0, 16, 0, 1.0, 0.10),
        row(0, 128, 0, 2.0, 0.20),
        row(0, 16, 1e-3, 1.5, 0.15),
        row(0, 128, 1e-3, 1.8, 0.30),
        row(0, 64, 1e-3, 9.0, 0.90, status="not_converged"),  # left out
    ]
    got = granulated_tau(table, "sharp", "gap", ["batch_size", "weight_decay"])
    # Pooled over the 4 ok rows: 5 of 6 pairs concordant, 1 discordant -> 4 / 6.
    assert pooled(table, "sharp", "gap").value == pytest.approx(4 / 6)
    assert got == {"batch_size": 1.0, "weight_decay": 0.0, "psi": 0.5}
    # Flat rows (factors and values as keys) give the same.
    flat = [
        {"seed": r["seed"], **r["factors"], **r["values"], "status": r["status"]} for r in table
    ]
    assert granulated_tau(flat, "sharp", "gap", ["batch_size", "weight_decay"]) == got


def test_granulated_tau_groups_by_replicate_and_drops_missing_values():
    # Two seeds of one factor: each seed is its own group (tau +1 in seed 0, -1 in seed 1).
    table = [row(0, 16, 0, 1.0, 0.1), row(0, 128, 0, 2.0, 0.2)]
    table += [row(1, 16, 0, 1.0, 0.2), row(1, 128, 0, 2.0, 0.1)]
    table += [row(2, 16, 0, None, 0.2), row(2, 128, 0, 2.0, 0.1)]  # seed 2 lacks a value
    g = granulated(table, "sharp", "gap", ["batch_size", "weight_decay"])
    assert g.per_factor["batch_size"] == 0.0 and g.groups["batch_size"] == 2
    # weight_decay never varies: NaN with a reason; psi is the mean over factors that have one.
    assert math.isnan(g.per_factor["weight_decay"])
    assert "only 'weight_decay' varies" in g.reasons["weight_decay"][0]
    assert g.psi == 0.0
    # A group whose measure is constant is left out with its reason.
    flat = [row(0, 16, 0, 1.0, 0.1), row(0, 128, 0, 1.0, 0.2)]
    g = granulated(flat, "sharp", "gap", ["batch_size"])
    assert math.isnan(g.psi) and "are equal" in g.reasons["batch_size"][0]


def tau_of(rows) -> float:
    return kendall_tau(column(rows, "sharp"), column(rows, "gap"))


def test_bootstrap_over_seeds_matches_scipy_when_each_seed_is_one_row():
    # One row per seed: resampling seeds is resampling rows (paired), which is what
    # scipy.stats.bootstrap does; two independent Monte Carlo runs agree to their noise.
    rng = np.random.default_rng(1)
    x = rng.normal(size=20)
    y = x + rng.normal(size=20)
    rows = [
        {"seed": i, "values": {"sharp": a, "gap": b}}
        for i, (a, b) in enumerate(zip(x, y, strict=True))
    ]
    lo, hi = bootstrap_interval(rows, tau_of, n=1500, seed=0)
    ref = stats.bootstrap(
        (x, y),
        kendall_tau,  # equal to scipy's (tested above), and 3x faster: the resampling is compared
        paired=True,
        vectorized=False,
        n_resamples=1500,
        method="percentile",
        random_state=np.random.default_rng(2),
    ).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.05)
    assert hi == pytest.approx(ref.high, abs=0.05)
    assert lo < kendall_tau(x, y) < hi
    # Deterministic by its seed.
    once = bootstrap_interval(rows, tau_of, n=100, seed=4)
    assert bootstrap_interval(rows, tau_of, n=100, seed=4) == once != (lo, hi)


def test_bootstrap_resamples_replicates_whole_and_relabels_them():
    # Two rows per seed, the granulated tau per resample: a seed drawn twice must form two
    # groups (else its rows would merge into one group with duplicated factor values).
    table = []
    for s, sign in enumerate([1, 1, -1, 1]):
        table += [row(s, 16, 0, 1.0, 0.1), row(s, 128, 0, 2.0, 0.1 + 0.1 * sign)]
    seen = []

    def stat(rows):
        seen.append(sorted({r["seed"] for r in rows}))
        assert len(rows) == 8
        return granulated(rows, "sharp", "gap", ["batch_size"]).psi

    iv = bootstrap(table, stat, n=200, seed=3)
    assert all(s == [0, 1, 2, 3] for s in seen)
    # Each resample's psi is the mean of 4 taus of +-1: a multiple of 0.5 in [-1, 1].
    assert -1.0 <= iv.low <= iv.high <= 1.0 and iv.valid == 200


def test_bootstrap_undefined_cases_give_nan_with_a_reason():
    one_seed = [row(0, 16, 0, 1.0, 0.1), row(0, 128, 0, 2.0, 0.2)]
    iv = bootstrap(one_seed, tau_of, n=50)
    assert math.isnan(iv.low) and "need 2" in iv.reason
    # A statistic that is NaN on most resamples (constant measure): NaN, saying why.
    flat = [row(s, 16, 0, 1.0, 0.1 * s) for s in range(4)]
    iv = bootstrap(flat, tau_of, n=50)
    assert math.isnan(iv.high) and "0 of 50" in iv.reason
    assert all(math.isnan(v) for v in bootstrap_interval(flat, tau_of, n=50))
