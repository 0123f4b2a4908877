"""A study's report: ``report.md`` and its PNG figures, from the study folder alone.

``write_report(study_dir)`` reads the table (``engine.study.table``), analyses it
(``engine.study.analysis``), writes ``correlation.json``/``.csv``, and writes ``report.md``
with: the verdict on each poster claim (the number, its interval, whether the interval excludes
zero), the members' measures, the flagged members (never compared as minimizers), the tau
table, and per factor, for each group of members where only that factor varies (at the
study's first seed): the members' 1D curves on one axis, their contour maps side by side on one
scale (filter-normalized, and unnormalized where the study made them), their eigenvalue-ratio
maps where there are Hessian maps, and the 2D surfaces' own non-convexity (``convexity``) on
the same fixed scale.

Figures are drawn by ``plots.export`` from ``plots.spec`` specs: the same levels and colour
scales as ``compare``. matplotlib is the ``export`` extra: without it the markdown is written
and says the figures were skipped.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import LandscapeError, clean_text
from engine.study.analysis import (
    GENERALIZATION,
    LEVEL,
    N_BOOT,
    Correlation,
    Verdict,
    analyse,
    granulated_resamples,
    measure_names,
)
from engine.study.table import Row, StudyTable, write_atomic

__all__ = ["REPORT_NAME", "factor_groups", "write_report"]

REPORT_NAME = "report.md"
FIGURES = "figures"
DPI = 110
# The figures each group gets: (stage, surface, kind, what the figure shows).
FIGURE_KINDS = (
    ("surface_1d", "train_loss", "curve", "1D train-loss curves"),
    ("surface_2d", "train_loss", "contour", "contour maps, filter-normalized directions"),
    ("surface_2d_raw", "train_loss", "contour", "contour maps, unnormalized directions"),
    ("hessian", "ratio", "ratio", "|min eig / max eig| (the Hessian's ratio map)"),
    ("surface_2d", "convexity", "auto",
     "the train loss's own non-convexity in the plane (filter-normalized; 0 where convex)"),
)  # fmt: skip


def factor_groups(table: StudyTable, factor: str) -> list[tuple[dict[str, Any], list[Row]]]:
    """The groups of rows where only ``factor`` varies: per combination of the other factors,
    the rows of the study's first seed, in the factor's order. Flagged rows are kept (the report
    lists them); the figures draw the ok ones only."""
    seed = min((r.seed for r in table.ok_rows()), default=min((r.seed for r in table.rows),
                                                               default=0))  # fmt: skip
    others = [f for f in table.factors if f != factor]
    groups: dict[tuple, list[Row]] = {}
    for r in table.rows:
        if r.seed == seed:
            groups.setdefault(tuple(_key(r.factors.get(o)) for o in others), []).append(r)
    out = []
    for key in sorted(groups):
        rows = sorted(groups[key], key=lambda r: _key(r.factors.get(factor)))
        fixed = {o: rows[0].factors.get(o) for o in others}
        if len({_key(r.factors.get(factor)) for r in rows}) > 1:
            out.append((fixed, rows))
    return out


def _key(v: Any) -> tuple:
    """A sort key for factor values of any type (numbers by value, the rest by text)."""
    if isinstance(v, bool):
        return (0, int(v), "")
    if isinstance(v, int | float):
        return (0, v, "")
    return (1, 0, str(v))


# ---------------------------------------------------------------------------------------------
# markdown


def _cell(v: Any) -> str:
    """A table cell: numbers to 4 significant digits, text cleaned and its pipes escaped."""
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}"
    return clean_text(str(v)).replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(map(_cell, head)) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(map(_cell, r)) + " |" for r in rows]


def _tau(v: float) -> str:
    return f"{v:+.2f}" if math.isfinite(v) else "n/a"


def _interval(low: float, high: float) -> str:
    return f"[{low:+.2f}, {high:+.2f}]" if math.isfinite(low) and math.isfinite(high) else "n/a"


def _members(table: StudyTable) -> list[str]:
    measures = [m for m in (*GENERALIZATION, *measure_names(table))
                if any(m in r.values for r in table.rows)]  # fmt: skip
    head = ["member", "seed", *table.factors, "status", *measures]
    rows = [
        [r.member, r.seed, *(r.factors.get(f) for f in table.factors),
         r.status if r.ok else f"**{r.status}**", *(r.values.get(m, math.nan) for m in measures)]
        for r in table.rows
    ]  # fmt: skip
    lines = ["## Members", "", *_table(head, rows), ""]
    flagged = [r for r in table.rows if not r.ok]
    if flagged:
        lines += ["Flagged members: not minimizers, so never in a number or a figure here.", ""]
        lines += [
            f"- {_cell(r.label)}: {r.status}" + (f" ({_cell(r.note)})" if r.note else "")
            for r in flagged
        ]
        lines.append("")
    return lines


def _taus(table: StudyTable, corr: Sequence[Correlation]) -> list[str]:
    head = ["measure", "tau", "interval", "excludes 0", "members", "seeds",
            *(f"tau {f}" for f in table.factors), "psi", "psi interval", "note"]  # fmt: skip
    rows = [
        [c.measure, _tau(c.tau), _interval(c.low, c.high), "yes" if c.excludes_zero else "no",
         c.members, c.seeds, *(_tau(c.granulated.get(f, math.nan)) for f in table.factors),
         _tau(c.granulated.get("psi", math.nan)), _interval(c.psi_low, c.psi_high), c.reason]
        for c in corr
    ]  # fmt: skip
    return [
        f"## Correlation with the {table.target}",
        "",
        f"Kendall's tau-b of each measure against the {table.target} over the ok members; the "
        "granulated tau per factor (Jiang et al. 2020: only that factor varies) and psi, their "
        "mean. Intervals: bootstrap over seeds.",
        "",
        *_table(head, rows),
        "",
    ]


def _verdicts(verdicts: Sequence[Verdict]) -> list[str]:
    lines = ["## The poster's claims", ""]
    lines += [f"- **{v.outcome}**: {_cell(v.line)}" for v in verdicts]
    return [*lines, ""]


# ---------------------------------------------------------------------------------------------
# figures


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _read(table: StudyTable, rows: Sequence[Row], stage: str) -> list[tuple[Row, Any]]:
    """The ok rows' surfaces of ``stage`` (rows without that file are left out)."""
    from engine.formats import read_surface

    out = []
    for r in rows:
        p = table.file(r, stage)
        if r.ok and p is not None and p.exists():
            out.append((r, read_surface(p)))
    return out


def _curves(table: StudyTable, rows: Sequence[Row], out: Path, title: str) -> Path | None:
    """The members' 1D train-loss curves on one axis (each member's own points)."""
    from tui_landscape.plots import export as ex
    from tui_landscape.plots.spec import PlotSpec, surface_values

    read = [(r, s) for r, s in _read(table, rows, "surface_1d") if s.y is None]
    if not read:
        return None
    xs = np.unique(np.concatenate([s.x for _, s in read]))
    series = {}
    for r, s in read:
        v = np.full(len(xs), np.nan)
        v[np.searchsorted(xs, s.x)] = surface_values(s, "train_loss")
        series[r.member] = v
    spec = PlotSpec("curve", xs, series=series, title=title, left_label="train loss")
    return ex.export_spec(out, spec, dpi=DPI)


def _maps(
    table: StudyTable, rows: Sequence[Row], stage: str, name: str, kind: str, out: Path, title: str
) -> Path | None:
    """The members' maps of ``stage`` side by side on one scale (``resolve_compare``)."""
    from tui_landscape.plots import export as ex
    from tui_landscape.plots.spec import resolve_compare

    # A map: two or more points along each axis (a Hessian at the centre alone is no map).
    read = [(r, s) for r, s in _read(table, rows, stage) if min(s.shape) > 1 and s.y is not None]
    if name == "ratio":
        read = [(r, s) for r, s in read if {"max_eig", "min_eig"} <= set(s.values)]
    if not read:
        return None
    specs = resolve_compare([s for _, s in read], name, kind, figure=True)
    specs = [
        dataclasses.replace(sp, title=r.member) for (r, _), sp in zip(read, specs, strict=True)
    ]
    return ex.export_specs(out, specs, dpi=DPI, title=title)


def _factor(
    table: StudyTable,
    factor: str,
    folder: Path,
    figures: bool,
    corr: Sequence[Correlation],
    verdicts: Sequence[Verdict],
) -> list[str]:
    """A factor's section: its claims' verdicts, each measure's granulated tau for it, then
    per group who is in it, their measures and their figures."""
    lines = [f"## Factor: {_cell(factor)}", ""]
    lines += [f"- **{v.outcome}**: {_cell(v.line)}" for v in verdicts if v.factor == factor]
    taus = [(c.measure, c.granulated.get(factor, math.nan)) for c in corr]
    if lines[-1] != "":
        lines.append("")
    if any(math.isfinite(t) for _, t in taus):
        lines += [f"Granulated tau against the {table.target}, over the groups where only "
                  f"{_cell(factor)} varies:", ""]  # fmt: skip
        lines += _table(["measure", f"tau {factor}"], [(m, _tau(t)) for m, t in taus])
        lines.append("")
    groups = factor_groups(table, factor)
    if not groups:
        return [*lines, f"No group of members where only {_cell(factor)} varies.", ""]
    for k, (fixed, rows) in enumerate(groups, 1):
        where = ", ".join(f"{_cell(f)} = {_cell(v)}" for f, v in fixed.items()) or "all members"
        lines += [f"### {where} (seed {rows[0].seed})", ""]
        shown = ", ".join(f"{_cell(r.member)} ({_cell(factor)} = {_cell(r.factors.get(factor))})"
                          for r in rows if r.ok)  # fmt: skip
        lines.append(f"Members: {shown or 'none reached a minimizer'}.")
        left = [r for r in rows if not r.ok]
        if left:
            out = ", ".join(f"{_cell(r.member)} ({r.status})" for r in left)
            lines.append(f"Left out (not minimizers): {out}.")
        lines.append("")
        ok = [r for r in rows if r.ok]
        if ok:  # the group's own numbers beside its figures
            shown = [m for m in measure_names(table) if any(m in r.values for r in ok)]
            body = [[r.member, r.factors.get(factor), r.values.get("gap", math.nan),
                     *(r.values.get(m, math.nan) for m in shown)] for r in ok]  # fmt: skip
            lines += [*_table(["member", factor, "gap", *shown], body), ""]
        if not figures:
            continue
        for stage, name, kind, what in FIGURE_KINDS:
            named = "" if name in ("train_loss", "ratio") else f"-{_slug(name)}"
            path = folder / FIGURES / f"{_slug(factor)}-{k}-{_slug(stage)}{named}.png"
            try:
                if kind == "curve":
                    made = _curves(table, rows, path, f"{factor}: {what}")
                else:
                    made = _maps(table, rows, stage, name, kind, path, f"{factor}: {what}")
            except LandscapeError as e:  # one member's unreadable file: said, not fatal
                lines += [f"{what}: not drawn ({_cell(e)}).", ""]
                continue
            if made is not None:
                lines += [f"![{what}]({FIGURES}/{path.name})", ""]
    return lines


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_report(study_dir: Path, *, n_boot: int = N_BOOT, level: float = LEVEL) -> Path:
    """Write ``report.md`` (and ``figures/*.png``, ``correlation.json``/``.csv``) in the study
    folder ``study_dir``; returns the report's path."""
    folder = Path(study_dir)
    table, corr, verdicts = analyse(folder, n_boot=n_boot, level=level)
    figures = _have_matplotlib()
    if figures:  # the folder is the report's own: last time's figures go, as its groups may
        (folder / FIGURES).mkdir(exist_ok=True)
        for old in (folder / FIGURES).glob("*.png"):
            old.unlink()
    ok = len(table.ok_rows())
    seeds = sorted({r.seed for r in table.rows})
    lines = [
        f"# Study: {_cell(table.name or folder.name)}",
        "",
        f"{ok} of {len(table.rows)} members reached a minimizer (status ok); only they enter "
        f"the numbers and the figures. Seeds: {', '.join(map(str, seeds)) or 'none'}. Target: "
        f"{table.target}. Intervals: {100 * level:g}% bootstrap over seeds ({n_boot} "
        f"resamples; {granulated_resamples(n_boot)} for the granulated taus). Numbers: "
        "correlation.json, correlation.csv.",
        "",
    ]
    if not figures:
        lines += ["Figures were skipped: matplotlib is not installed "
                  "(pip install 'tui-landscape[export]').", ""]  # fmt: skip
    lines += _verdicts(verdicts) + _members(table) + _taus(table, corr)
    for factor in table.factors:
        lines += _factor(table, factor, folder, figures, corr, verdicts)
    path = folder / REPORT_NAME
    write_atomic(path, "\n".join(lines).rstrip() + "\n")
    return path
