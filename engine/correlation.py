"""Rank correlation of a measure with generalization across the members of a study (pure numpy).

- ``kendall_tau``: Kendall's tau-b, equal to ``scipy.stats.kendalltau`` (ties in either
  variable handled by tau-b's denominator).
- ``granulated_tau`` (Jiang et al., "Fantastic generalization measures and where to find
  them", ICLR 2020): per factor, the mean of tau over the groups of rows in which only that
  factor varies (the other factors and the replicate fixed); ``psi`` is the mean over factors.
- ``bootstrap_interval``: a percentile interval of any statistic of the rows, resampling the
  replicates (seeds) with replacement; a replicate drawn twice enters twice, under two labels,
  so it forms two groups of the granulated tau, as two seeds would.

Rows are the study table's (``docs/measures.md``): ``{"seed", "factors": {...}, "status",
"values": {...}}``, or flat dicts with the factors and values as keys. A row whose ``status``
is given and is not ``"ok"`` is left out (the caller should have left it out already); a row
missing the measure or the target, or holding a non-finite one, is left out of that one
correlation. Too few rows, or fewer than two distinct values, give NaN with a reason, never an
exception.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from engine.errors import ConfigError

__all__ = [
    "Granulated",
    "Interval",
    "Tau",
    "bootstrap",
    "bootstrap_interval",
    "column",
    "granulated",
    "granulated_tau",
    "kendall",
    "kendall_tau",
    "pooled",
    "usable_rows",
]


@dataclass(frozen=True)
class Tau:
    """Kendall's tau-b over ``n`` pairs of finite values; ``reason`` says why it is NaN."""

    value: float
    n: int
    reason: str = ""


def kendall(x: ArrayLike, y: ArrayLike) -> Tau:
    """Kendall's tau-b of ``x`` against ``y``, leaving out pairs where either is not finite."""
    xa = np.asarray(x, dtype=np.float64).reshape(-1)
    ya = np.asarray(y, dtype=np.float64).reshape(-1)
    if xa.shape != ya.shape:
        raise ConfigError(
            f"Expected `x` and `y` of one length, but got {xa.size} and {ya.size} values."
        )
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    if xa.size <= _SMALL:
        return _tau_b(xa.tolist(), ya.tolist())
    n = int(xa.size)
    for name, a in (("x", xa), ("y", ya)):
        if np.all(a == a[0]):
            return Tau(math.nan, n, f"all {n} values of {name} are equal")
    # Over pairs i < j: concordant minus discordant, and the pairs untied in x and in y.
    i, j = np.triu_indices(n, 1)
    dx = np.sign(xa[i] - xa[j])
    dy = np.sign(ya[i] - ya[j])
    s = float(np.sum(dx * dy))
    denom = math.sqrt(float(np.count_nonzero(dx)) * float(np.count_nonzero(dy)))
    return Tau(min(1.0, max(-1.0, s / denom)), n)


_SMALL = 24  # up to here plain Python beats numpy's per-call overhead (the bootstrap's groups)


def _tau_b(x: list[float], y: list[float]) -> Tau:
    """``kendall`` on short lists of finite floats, the same sums in plain Python."""
    n = len(x)
    if n < 2:
        return Tau(math.nan, n, f"{n} pair{'' if n == 1 else 's'} of finite values (need 2)")
    for name, a in (("x", x), ("y", y)):
        if all(v == a[0] for v in a):
            return Tau(math.nan, n, f"all {n} values of {name} are equal")
    s = nx = ny = 0
    for i in range(n):
        xi, yi = x[i], y[i]
        for j in range(i + 1, n):
            dx = (xi > x[j]) - (xi < x[j])
            dy = (yi > y[j]) - (yi < y[j])
            s += dx * dy
            nx += dx != 0
            ny += dy != 0
    return Tau(min(1.0, max(-1.0, s / math.sqrt(float(nx) * float(ny)))), n)


def kendall_tau(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b (as ``scipy.stats.kendalltau``); NaN where it is undefined."""
    return kendall(x, y).value


# --- rows of a study table ------------------------------------------------------------------


def _get(row: Mapping[str, Any], section: str, key: str) -> Any:
    """``row[section][key]`` in a study table's row, else ``row[key]`` in a flat row."""
    inner = row.get(section)
    if isinstance(inner, Mapping) and key in inner:
        return inner[key]
    return row.get(key)


def _number(v: Any) -> float:
    """A finite float, else NaN (None, missing, text, bool, inf); numpy scalars count."""
    if type(v) is not float:  # the common case first: a float from JSON
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return math.nan
        v = float(v)
    return v if math.isfinite(v) else math.nan


def usable_rows(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows whose ``status`` is ``"ok"`` or not given."""
    return [r for r in rows if r.get("status", "ok") == "ok"]


def column(rows: Iterable[Mapping[str, Any]], key: str) -> np.ndarray:
    """One value per row (``values[key]`` or ``key``), NaN where missing or not finite."""
    return np.array([_number(_get(r, "values", key)) for r in rows], dtype=np.float64)


def pooled(rows: Iterable[Mapping[str, Any]], measure: str, target: str) -> Tau:
    """Kendall's tau of ``measure`` against ``target`` over all usable rows (every member and
    seed pooled)."""
    rows = usable_rows(rows)
    return kendall(column(rows, measure), column(rows, target))


def _key(v: Any) -> str:
    """A factor value as a hashable, order-stable key (lists and dicts included)."""
    return json.dumps(v, sort_keys=True, default=str)


@dataclass(frozen=True)
class Granulated:
    """The granulated tau: per factor its mean tau (``psi``) over ``groups[f]`` usable groups
    (of ``tried[f]``), why the others were left out, and ``psi`` the mean over factors."""

    per_factor: dict[str, float]
    psi: float
    groups: dict[str, int] = field(default_factory=dict)
    tried: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {**self.per_factor, "psi": self.psi}


def granulated(
    table: Sequence[Mapping[str, Any]],
    measure: str,
    target: str,
    factors: Sequence[str],
    *,
    groups_key: str | None = "seed",
) -> Granulated:
    """Jiang et al.'s granulated tau: for each factor, rows are grouped by the values of the
    other factors (and ``groups_key``, the replicate, unless None); tau of ``measure`` against
    ``target`` within each group where that factor takes 2+ values; the factor's psi is the
    mean over those groups, and ``psi`` the mean over the factors that have one."""
    if not factors:
        raise ConfigError("Expected at least one factor for the granulated tau, but got none.")
    rows = usable_rows(table)
    m, t = column(rows, measure), column(rows, target)
    keep = np.isfinite(m) & np.isfinite(t)
    rows = [r for r, k in zip(rows, keep, strict=True) if k]
    m, t = m[keep].tolist(), t[keep].tolist()
    # Each row's factor values and replicate as keys, once (the bootstrap calls this often).
    keys = [{f: _key(_get(r, "factors", f)) for f in factors} for r in rows]
    reps = [_key(r.get(groups_key)) if groups_key is not None else "" for r in rows]
    per, counts, tried, reasons = {}, {}, {}, {}
    for f in factors:
        others = [g for g in factors if g != f]
        groups: dict[tuple[str, ...], list[int]] = {}
        for k in range(len(rows)):
            key = (*(keys[k][g] for g in others), reps[k])
            groups.setdefault(key, []).append(k)
        taus, why = [], []
        for idx in groups.values():
            if len({keys[k][f] for k in idx}) < 2:
                continue  # this factor does not vary here: not a group of the factor
            tau = _tau_b([m[k] for k in idx], [t[k] for k in idx])
            if math.isnan(tau.value):
                why.append(tau.reason)
            else:
                taus.append(tau.value)
        tried[f] = len(taus) + len(why)
        counts[f] = len(taus)
        if not tried[f]:
            why.append(f"no group of rows in which only {f!r} varies")
        reasons[f] = why
        per[f] = math.fsum(taus) / len(taus) if taus else math.nan
    finite = [v for v in per.values() if not math.isnan(v)]
    psi = math.fsum(finite) / len(finite) if finite else math.nan
    return Granulated(per, psi, counts, tried, reasons)


def granulated_tau(
    table: list[dict], measure: str, target: str, factors: list[str]
) -> dict[str, float]:
    """Per factor the granulated tau of ``measure`` against ``target``, and ``psi`` their mean
    (``granulated`` gives the group counts and the reasons for NaN)."""
    return granulated(table, measure, target, factors).as_dict()


# --- the bootstrap over replicates ----------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A bootstrap percentile interval from ``valid`` of ``n`` resamples (the others gave NaN);
    ``reason`` says why it is NaN."""

    low: float
    high: float
    valid: int
    n: int
    reason: str = ""


def bootstrap(
    rows: Sequence[Mapping[str, Any]],
    stat_fn: Callable[[list[dict[str, Any]]], float],
    *,
    groups_key: str = "seed",
    n: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    min_valid: float = 0.5,
) -> Interval:
    """Percentile interval of ``stat_fn(rows)`` over ``n`` resamples of the replicates
    (distinct ``row[groups_key]``) drawn with replacement, each draw relabelled by its position
    so a replicate drawn twice counts as two. NaN when there are fewer than 2 replicates or
    fewer than ``min_valid`` of the resamples give a finite statistic."""
    if not 0 < level < 1:
        raise ConfigError(f"Expected `level` in (0, 1), but got {level!r}.")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"Expected `n` to be an integer >= 1, but got {n!r}.")
    rows = usable_rows(rows)
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by.setdefault(_key(r.get(groups_key)), []).append(r)
    reps = list(by.values())
    if len(reps) < 2:
        return Interval(math.nan, math.nan, 0, n, f"{len(reps)} replicate(s) (need 2)")
    rng = np.random.default_rng(seed)
    stats = np.full(n, math.nan)
    for b in range(n):
        draw = rng.integers(0, len(reps), len(reps))
        sample = [{**r, groups_key: pos} for pos, k in enumerate(draw) for r in reps[k]]
        try:
            stats[b] = float(stat_fn(sample))
        except (ValueError, ZeroDivisionError, FloatingPointError):
            continue  # a statistic undefined on this resample counts as NaN
    finite = stats[np.isfinite(stats)]
    if finite.size < max(1, min_valid * n):
        return Interval(
            math.nan, math.nan, int(finite.size), n,
            f"only {finite.size} of {n} resamples gave a finite value",
        )  # fmt: skip
    lo, hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(lo), float(hi), int(finite.size), n)


def bootstrap_interval(
    rows: Sequence[Mapping[str, Any]],
    stat_fn: Callable[[list[dict[str, Any]]], float],
    *,
    groups_key: str = "seed",
    n: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """``bootstrap``'s interval as ``(low, high)``; ``(nan, nan)`` where it is undefined."""
    iv = bootstrap(rows, stat_fn, groups_key=groups_key, n=n, level=level, seed=seed)
    return iv.low, iv.high
