"""A study's table read, correlated with generalization, and judged against the poster's claims.

The table (docs/studies.md: one row per member and seed, its factors, status and measures) is
read by ``engine.study.table.read_table``, which refuses a foreign or corrupt file in one line.
``correlate`` gives, per
measure, Kendall's tau against the target (the generalization gap) with a bootstrap interval
over seeds, and the granulated tau of Jiang et al. (ICLR 2020, "Fantastic generalization
measures") per factor with its mean psi. ``judge`` gives one verdict per poster claim (the
registry ``CLAIMS``): the number, its interval, whether the interval excludes zero, and
plainly "does not reproduce" when the sign is wrong or the interval holds zero.

Only rows with status "ok" (a member that reached a minimizer) enter any number here. The
statistics themselves are ``engine.correlation``'s; this module chooses the rows and says
what the numbers mean. No torch, no h5py.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.registry import Registry
from engine.study.table import MeasureInfo, Row, StudyTable, read_table, write_atomic

__all__ = [
    "CLAIMS",
    "CORRELATION_CSV",
    "CORRELATION_JSON",
    "GENERALIZATION",
    "Claim",
    "Correlation",
    "Verdict",
    "analyse",
    "correlate",
    "granulated_resamples",
    "judge",
    "measure_names",
    "read_correlation",
    "write_correlation",
]

CORRELATION_JSON = "correlation.json"
CORRELATION_CSV = "correlation.csv"
CORRELATION_FORMAT = "tui-landscape-study-correlation"
CORRELATION_VERSION = 1
# What generalization is measured by, and numbers that qualify another (an interval's ends, a
# standard error): never correlated as sharpness measures themselves.
GENERALIZATION = ("train_loss", "train_error", "test_loss", "test_error", "gap", "gap_loss")
_NOT_MEASURES = (*GENERALIZATION, "basin_volume_low", "basin_volume_high", "trace_se")
N_BOOT, LEVEL = 2000, 0.95
# Seeds a verdict needs: a bootstrap over 2 seeds has 3 distinct resamples, no interval to
# trust (a claim then "reproduces" on any two seeds that agree).
MIN_SEEDS = 3
# Resamples of a granulated tau's interval (psi, a factor's claim): each takes a tau per group,
# tens per resample: 1000 of them took 7 s for 4 measures of 12 members on 2 loaded cores,
# so a study of 20 measures would spend minutes on them; 500 keep it within a minute.
N_BOOT_GRANULATED = 500


def granulated_resamples(n_boot: int) -> int:
    """The resamples of a granulated tau's interval for ``n_boot`` of a pooled tau's."""
    return min(n_boot, N_BOOT_GRANULATED)


def measure_names(table: StudyTable) -> list[str]:
    """The sharpness measures to correlate, those some row holds, in the order declared (then
    the others): never the generalization numbers nor an interval's ends."""
    held = {n for r in table.rows for n in r.values}
    seen = [*(m for m in table.measures if m in held), *(n for r in table.rows for n in r.values)]
    skip = {*_NOT_MEASURES, table.target}
    return [n for n in dict.fromkeys(seen) if n not in skip]


# ---------------------------------------------------------------------------------------------
# correlation


@dataclass(frozen=True)
class Correlation:
    """One measure against the target over the members that reached a minimizer."""

    measure: str
    target: str
    tau: float  # Kendall's tau-b over every ok member and seed
    low: float  # its bootstrap interval over seeds (NaN with one seed)
    high: float
    members: int  # rows that entered (ok, measure and target finite)
    seeds: int
    granulated: dict[str, float] = field(default_factory=dict)  # per factor, and "psi"
    psi_low: float = math.nan
    psi_high: float = math.nan
    reason: str = ""  # why a number is missing, in words

    @property
    def excludes_zero(self) -> bool:
        return _excludes_zero(self.low, self.high)


def _excludes_zero(low: float, high: float) -> bool:
    return math.isfinite(low) and math.isfinite(high) and (low > 0 or high < 0)


def _flat(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Rows as the flat records ``engine.correlation`` takes: seed, factors and values as keys
    (a yes/no factor as 0/1, so it orders)."""
    out = []
    for r in rows:
        facs = {k: int(v) if isinstance(v, bool) else v for k, v in r.factors.items()}
        out.append({"member": r.member, "seed": r.seed, **facs, **r.values})
    return out


def _finite(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    return [r for r in rows if all(_is_finite(r.get(k)) for k in keys)]


def _is_finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


Stat = Callable[[list[dict[str, Any]]], float]  # a statistic of flat rows (a tau)


def _tau(x: str, y: str) -> Stat:
    from engine.correlation import kendall_tau

    return lambda rs: float(kendall_tau([r[x] for r in rs], [r[y] for r in rs]))


def _interval(
    rows: list[dict[str, Any]], stat: Stat, n_boot: int, level: float, seed: int
) -> tuple[float, float]:
    """The bootstrap interval over seeds; NaN where one seed gives nothing to resample."""
    from engine.correlation import bootstrap_interval

    if n_boot <= 0 or len({r["seed"] for r in rows}) < 2:
        return math.nan, math.nan
    lo, hi = bootstrap_interval(rows, stat, groups_key="seed", n=n_boot, level=level, seed=seed)
    return float(lo), float(hi)


def correlate(
    table: StudyTable,
    *,
    target: str | None = None,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> list[Correlation]:
    """Per measure (``measure_names``): Kendall's tau against ``target`` (the table's, the
    gap) over the ok rows, the granulated tau per factor and psi, each with a bootstrap
    interval over seeds (``n_boot`` resamples for the tau, ``granulated_resamples(n_boot)``
    for psi; 0: none)."""
    from engine.correlation import granulated_tau

    target = target or table.target
    flat = _flat(table.ok_rows())
    factors = list(table.factors)
    out = []
    for m in measure_names(table):
        rows = _finite(flat, m, target)
        seeds = len({r["seed"] for r in rows})
        reason = ""
        stat = _tau(m, target)
        tau = stat(rows) if len(rows) >= 2 else math.nan
        if len(rows) < 2:
            reason = f"{len(rows)} ok member(s) with {m} and {target}: a tau needs 2"
        elif not math.isfinite(tau):
            reason = f"{m} or {target} is the same for every member"
        low, high = _interval(rows, stat, n_boot, level, seed) if math.isfinite(tau) else (
            math.nan, math.nan)  # fmt: skip
        if math.isfinite(tau) and seeds < 2:
            reason = "one seed: no interval"
        gran: dict[str, float] = {}
        psi_lo = psi_hi = math.nan
        if factors and len(rows) >= 2:
            gran = {k: float(v) for k, v in granulated_tau(rows, m, target, factors).items()}
            if math.isfinite(gran.get("psi", math.nan)):

                def psi(rs: list[dict[str, Any]], m: str = m) -> float:
                    return float(granulated_tau(rs, m, target, factors)["psi"])

                n_gran = granulated_resamples(n_boot)
                psi_lo, psi_hi = _interval(rows, psi, n_gran, level, seed)
        out.append(
            Correlation(m, target, tau, low, high, len(rows), seeds, gran, psi_lo, psi_hi, reason)
        )
    return out


# ---------------------------------------------------------------------------------------------
# the poster's claims


@dataclass(frozen=True)
class Claim:
    """A claim of the poster, as a sign a tau must have.

    With ``factors`` (the first one the study has is used): tau between the factor's value and
    the sharpness measure, within groups where only that factor varies (granulated). Without:
    tau between the measure and the target over every ok member. ``sign`` is the sign the
    claim expects of that tau for a measure where larger is sharper; a measure where larger is
    flatter (a basin's width) expects the opposite. ``measures``: in order of preference, the
    first the study measured is used.
    """

    text: str
    measures: tuple[str, ...]
    sign: int
    factors: tuple[str, ...] = ()


CLAIMS: Registry[Claim] = Registry("poster claim", "claim")
_SHARPNESS = ("curvature_filter", "mean_rise_filter", "basin_width_filter")
_SKIP = ("shortcuts", "shortcut", "skip", "skip_connections")
# fmt: off
for _name, _claim in (
    ("small-batch-flatter", Claim("small batch gives flatter minima (filter-normalized)",
                                  _SHARPNESS, +1, ("batch_size",))),
    ("wider-flatter", Claim("wider nets are flatter", _SHARPNESS, -1, ("width", "width_factor"))),
    ("skip-convex", Claim("skip connections keep deep nets convex (lower mean |min/max eig| "
                          "over the map; without a Hessian map, the 2D surface's own)",
                          ("mean_ratio_map", "surface_ratio_filter"), -1, _SKIP)),
    ("flatness-generalizes", Claim("flatness predicts generalization (sharper minima have a "
                                   "larger gap)", (*_SHARPNESS[:2], "adaptive_sharpness",
                                                   "lambda_max"), +1)),
):
    CLAIMS.add(_name, _claim)
# fmt: on


@dataclass(frozen=True)
class Verdict:
    """A claim judged on a study: its number and what it says."""

    claim: str  # the registry's name
    text: str
    # "reproduces", "does not reproduce", "not enough members/seeds", "not tested", or "no
    # interval" (none asked for)
    outcome: str
    line: str  # the whole verdict in one line
    measure: str = ""
    factor: str = ""
    tau: float = math.nan
    low: float = math.nan
    high: float = math.nan
    members: int = 0
    seeds: int = 0

    @property
    def excludes_zero(self) -> bool:
        return _excludes_zero(self.low, self.high)


def _fmt(v: float) -> str:
    return f"{v:+.2f}" if math.isfinite(v) else "n/a"


def judge(
    table: StudyTable,
    correlations: Sequence[Correlation],
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> list[Verdict]:
    """One verdict per claim of ``CLAIMS``, honest about the noise: "reproduces" only when
    the sign is the expected one and the interval excludes zero."""
    from engine.correlation import granulated_tau

    flat = _flat(table.ok_rows())
    by_measure = {c.measure: c for c in correlations}
    out = []
    for name in CLAIMS:
        c = CLAIMS.get(name)
        factor = next((f for f in c.factors if f in table.factors), "")
        measure = next((m for m in c.measures if _finite(flat, m)), "")
        if c.factors and not factor:
            why = f"no factor {' or '.join(c.factors)}"
            out.append(Verdict(name, c.text, "not tested", f"{c.text}: not tested ({why})"))
            continue
        if not measure:
            why = f"no ok member has {' or '.join(c.measures)}"
            out.append(Verdict(name, c.text, "not tested", f"{c.text}: not tested ({why})"))
            continue
        info = table.measures.get(measure, MeasureInfo())
        # A claim is written for "larger is sharper"; a basin's width turns it around.
        sign = -c.sign if info.sharper_is_larger is False else c.sign
        if factor:
            rows = [r for r in _finite(flat, measure) if _is_finite(r.get(factor))]

            def stat(rs: list[dict[str, Any]], f: str = factor, m: str = measure) -> float:
                return float(granulated_tau(rs, f, m, list(table.factors))[f])

            what = f"tau({factor}, {measure}) within groups where only {factor} varies"
            what += _groups_note(rows, factor, [f for f in table.factors if f != factor])
            tau = stat(rows) if len(rows) >= 2 else math.nan
            n_gran = granulated_resamples(n_boot)
            low, high = _interval(rows, stat, n_gran, level, seed) if math.isfinite(tau) else (
                math.nan, math.nan)  # fmt: skip
        else:
            corr = by_measure.get(measure)
            rows = _finite(flat, measure, table.target)
            what = f"tau({measure}, {table.target})"
            tau, low, high = (corr.tau, corr.low, corr.high) if corr else (math.nan,) * 3
        seeds = len({r["seed"] for r in rows})
        outcome, tail = _outcome(tau, low, high, sign, len(rows), seeds, n_boot)
        expect = "> 0" if sign > 0 else "< 0"
        number = f"{what} = {_fmt(tau)}"
        if math.isfinite(low):
            number += f" [{_fmt(low)}, {_fmt(high)}]"
        line = (
            f"{c.text}: {number}, {len(rows)} members over {seeds} seed(s), "
            f"expected {expect}; {tail}"
        )
        out.append(
            Verdict(name, c.text, outcome, line, measure, factor, tau, low, high, len(rows), seeds)
        )
    return out


def _groups_note(rows: list[dict[str, Any]], factor: str, others: list[str]) -> str:
    """Which groups entered, by the other factors' values (" (depth=20)"): a claim about deep
    nets tested at depth 20 alone must say so."""
    if not others:
        return ""
    groups: dict[tuple, set[str]] = {}
    for r in rows:
        groups.setdefault(tuple(str(r.get(o)) for o in others), set()).add(str(r.get(factor)))
    used = sorted(k for k, values in groups.items() if len(values) > 1)
    if not used:
        return ""
    return " (" + "; ".join(", ".join(f"{o}={v}" for o, v in zip(others, k, strict=True))
                            for k in used) + ")"  # fmt: skip


def _outcome(
    tau: float, low: float, high: float, sign: int, members: int, seeds: int, n_boot: int
) -> tuple[str, str]:
    """The verdict and its reason, in words."""
    if not math.isfinite(tau):
        return "not enough members/seeds", f"not enough members/seeds ({members} members)"
    if tau == 0:
        return "does not reproduce", "no correlation: does not reproduce"
    if tau * sign < 0:
        return "does not reproduce", "the sign is the opposite: does not reproduce"
    if seeds < MIN_SEEDS:
        return (
            "not enough members/seeds",
            f"not enough members/seeds: {seeds} seed(s), an interval over seeds needs {MIN_SEEDS}",
        )
    if not math.isfinite(low):
        return "no interval", f"no interval was computed ({n_boot} resamples)"
    if not _excludes_zero(low, high):
        return "does not reproduce", "the interval holds 0: does not reproduce"
    return "reproduces", "the interval excludes 0: reproduces"


# ---------------------------------------------------------------------------------------------
# files


def _json(v: Any) -> Any:
    """Strict JSON: NaN (and infinities) as null, in tables too."""
    if isinstance(v, dict):
        return {k: _json(x) for k, x in v.items()}
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _record(obj: Correlation | Verdict) -> dict[str, Any]:
    """A result's fields, and whether its interval excludes zero, as JSON."""
    rec = {f.name: _json(getattr(obj, f.name)) for f in fields(obj)}
    return rec | {"excludes_zero": obj.excludes_zero}


def write_correlation(
    table: StudyTable,
    correlations: Sequence[Correlation],
    verdicts: Sequence[Verdict],
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
) -> tuple[Path, Path]:
    """``correlation.json`` and ``correlation.csv`` beside the table, each written whole
    (temporary name, then renamed). Returns both paths."""
    doc = {
        "format": CORRELATION_FORMAT,
        "version": CORRELATION_VERSION,
        "name": table.name,
        "target": table.target,
        "table_digest": table.digest,
        "n_boot": n_boot,
        "n_boot_granulated": granulated_resamples(n_boot),
        "level": level,
        "correlations": [_record(c) for c in correlations],
        "claims": [_record(v) for v in verdicts],
    }
    folder = table.folder
    pj, pc = folder / CORRELATION_JSON, folder / CORRELATION_CSV
    write_atomic(pj, json.dumps(doc, indent=1) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    factors = list(table.factors)
    head = ["measure", "target", "tau", "low", "high", "excludes_zero", "members", "seeds"]
    w.writerow([*head, *(f"tau_{f}" for f in factors), "psi", "psi_low", "psi_high", "reason"])
    for c in correlations:
        g = [c.granulated.get(f, math.nan) for f in [*factors, "psi"]]
        w.writerow([c.measure, c.target, c.tau, c.low, c.high, c.excludes_zero, c.members,
                    c.seeds, *g, c.psi_low, c.psi_high, c.reason])  # fmt: skip
    write_atomic(pc, buf.getvalue())
    return pj, pc


def analyse(
    folder: Path, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0
) -> tuple[StudyTable, list[Correlation], list[Verdict]]:
    """Read a study folder's table, correlate, judge the claims and write correlation.json and
    correlation.csv: what the report and ``info`` show."""
    table = read_table(folder)
    corr = correlate(table, n_boot=n_boot, level=level, seed=seed)
    verdicts = judge(table, corr, n_boot=n_boot, level=level, seed=seed)
    write_correlation(table, corr, verdicts, n_boot=n_boot, level=level)
    return table, corr, verdicts


def read_correlation(table: StudyTable) -> dict[str, Any] | None:
    """The saved ``correlation.json`` when it was computed from this very table, else None
    (absent, unreadable, of another shape, or from an older table): ``info`` then computes
    the taus itself, without intervals."""
    p = table.folder / CORRELATION_JSON
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != CORRELATION_FORMAT:
        return None
    if doc.get("table_digest") != table.digest or not _correlation_shape(doc):
        return None
    return doc


def _correlation_shape(doc: dict[str, Any]) -> bool:
    """Whether ``doc`` has the keys and types ``info`` reads (a hand-made file may not)."""

    def num(v: Any) -> bool:
        return v is None or (isinstance(v, int | float) and not isinstance(v, bool))

    corr, claims = doc.get("correlations"), doc.get("claims", [])
    level = doc.get("level")
    if (
        level is None
        or not num(level)
        or not isinstance(corr, list)
        or not isinstance(claims, list)
    ):
        return False
    ok_corr = all(
        isinstance(c, dict) and isinstance(c.get("measure"), str)
        and all(num(c.get(k)) for k in ("tau", "low", "high"))
        and all(isinstance(c.get(k), int) for k in ("members", "seeds"))
        for c in corr
    )  # fmt: skip
    return ok_corr and all(isinstance(c, dict) and isinstance(c.get("line"), str) for c in claims)
