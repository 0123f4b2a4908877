"""A study folder where ``info``, ``plot`` and ``compare`` take a file: its members and taus
(``info DIR``), a member's file of a stage (``plot DIR --member M --stage S``), and the members
where only one factor varies (``compare DIR --factor F``).

The folder's layout and table are docs/studies.md's; ``engine.study.analysis`` reads them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.study.analysis import Row, StudyTable

__all__ = ["DEFAULT_STAGE", "factor_members", "is_study", "member_file", "print_study"]

DEFAULT_STAGE = "surface_2d"
# The measures `info` shows beside each member (the report and table.csv have them all).
INFO_MEASURES = ("gap", "curvature_filter", "mean_rise_filter", "lambda_max", "mean_ratio_map",
                 "adaptive_sharpness", "basin_volume")  # fmt: skip


def is_study(path: Path) -> bool:
    """Whether ``path`` is a study folder (it holds ``table.json``)."""
    from engine.study.analysis import is_study_folder

    return is_study_folder(path)


def _stages(table: StudyTable, row: Row | None = None) -> str:
    names = list(row.files) if row is not None else table.stages()
    return ", ".join(names) or "none yet"


def member_file(folder: Path, member: str | None, stage: str | None) -> tuple[Path, Row]:
    """The file of ``member``'s ``stage`` in a study folder; without a member, one line that
    lists the members and stages to choose from."""
    from engine.study.analysis import read_table

    table = read_table(folder)
    if not member:
        raise ConfigError(
            f"{folder} is a study folder: name a member with --member (one of "
            f"{', '.join(r.label for r in table.rows)}) and a stage with --stage (one of "
            f"{_stages(table)}; default {DEFAULT_STAGE})"
        )
    row = table.find(member)
    stage = stage or DEFAULT_STAGE
    path = table.file(row, stage)
    if path is None:
        raise ConfigError(
            f"member {row.label} has no {stage!r} file; its stages: {_stages(table, row)}"
        )
    return path, row


def factor_members(
    folder: Path, factor: str | None, stage: str | None, member: str | None
) -> tuple[list[Path], list[str], list[Row]]:
    """The files of ``stage`` of the ok members where only ``factor`` varies: the group of
    ``member`` (else of the first ok member), at its seed. Returns the paths, their labels and
    the group's members left out (not minimizers, or without the file)."""
    from engine.study.analysis import read_table

    table = read_table(folder)
    if factor not in table.factors:
        choices = ", ".join(table.factors) or "(none)"
        if factor is None:
            raise ConfigError(f"{folder} is a study folder: name a factor with --factor (one of "
                              f"{choices}) to compare its members")  # fmt: skip
        raise ConfigError(f"Expected `--factor` to be one of {choices}, but got {factor!r}.")
    stage = stage or DEFAULT_STAGE
    ok = table.ok_rows()
    anchor = table.find(member) if member else (ok[0] if ok else None)
    if anchor is None:
        raise ConfigError(f"no member of {folder} reached a minimizer: nothing to compare")
    others = [f for f in table.factors if f != factor]
    group = [
        r for r in table.rows
        if r.seed == anchor.seed and all(r.factors.get(o) == anchor.factors.get(o) for o in others)
    ]  # fmt: skip
    paths, labels, left = [], [], []
    for r in group:
        p = table.file(r, stage)
        if r.ok and p is not None:
            paths.append(p)
            labels.append(f"{r.label} ({factor}={r.factors.get(factor)})")
        else:
            left.append(r)
    if len(paths) < 2:
        fixed = ", ".join(f"{o}={anchor.factors.get(o)}" for o in others)
        raise ConfigError(
            f"fewer than two members with a {stage!r} file where only {factor} varies "
            f"(seed {anchor.seed}{', ' + fixed if fixed else ''}); pick another group with "
            "--member"
        )
    return paths, labels, left


def print_study(folder: Path) -> None:
    """``info DIR``: the study, its members and their measures, and the taus and verdicts
    (saved ones, with intervals, when correlation.json matches the table)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from engine.study.analysis import correlate, read_correlation, read_table
    from tui_landscape.cli.common import console
    from tui_landscape.safe import plain

    table = read_table(folder)
    ok = table.ok_rows()
    seeds = sorted({r.seed for r in table.rows})
    console.print(
        plain(
            f"study {table.name or folder.name} in {folder}: {len(ok)} of {len(table.rows)} "
            f"members reached a minimizer; seeds {', '.join(map(str, seeds)) or '-'}; factors "
            f"{', '.join(table.factors) or '-'}; target {table.target}"
        )
    )
    shown = [m for m in INFO_MEASURES if any(m in r.values for r in table.rows)]
    width = max((len(r.label) for r in table.rows), default=6)
    # Piped output (logs, CI) is not bound to 80 columns, as `compare`'s table.
    out = console if console.is_terminal else Console(width=160, emoji=False)
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for col in ("member", *table.factors, "status", *shown):
        if col == "member":  # the name folds rather than being cut: it is what --member takes
            t.add_column(col, overflow="fold", min_width=min(width, 16))
        else:
            t.add_column(col, justify="right", overflow="fold")
    for r in table.rows:
        cells = [r.label, *(str(r.factors.get(f)) for f in table.factors), r.status]
        t.add_row(*map(plain, cells), *(_num(r.values.get(m, math.nan)) for m in shown))
    out.print(t)
    saved = read_correlation(table)
    if saved is not None:
        rows = [(c["measure"], c["tau"], c["low"], c["high"], c["members"], c["seeds"])
                for c in saved["correlations"]]  # fmt: skip
        note = f"{100 * saved['level']:g}% intervals over seeds, from correlation.json"
    else:
        rows = [
            (c.measure, c.tau, None, None, c.members, c.seeds) for c in correlate(table, n_boot=0)
        ]
        note = "no intervals: correlation.json is missing or older than the table (the "
        note += "report writes it)"
    tt = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for col in ("measure", f"tau vs {table.target}", "interval", "members", "seeds"):
        tt.add_column(col, justify="left" if col == "measure" else "right", no_wrap=True)
    for m, tau, low, high, n, s in rows:
        interval = "-" if low is None or high is None else f"[{low:+.2f}, {high:+.2f}]"
        tt.add_row(plain(m), "n/a" if tau is None or tau != tau else f"{tau:+.2f}", interval,
                   str(n), str(s))  # fmt: skip
    out.print(tt)
    console.print(plain(f"Kendall's tau over the ok members; {note}"))
    for c in (saved or {}).get("claims", []):
        console.print(plain(f"- {c['line']}"))


def _num(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.4g}"
