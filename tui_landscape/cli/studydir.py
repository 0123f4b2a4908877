"""``info DIR`` on a study folder: its members and their measures, the taus and verdicts.
``plot`` and ``compare`` find a study's files through ``tui_landscape.studies``.
"""

from __future__ import annotations

import math
from pathlib import Path

from tui_landscape.studies import INFO_MEASURES

__all__ = ["print_study", "study_file_text"]

STUDY_FILE = "study.toml"  # the study file as given, kept in the folder (docs/studies.md)


def study_file_text(folder: Path) -> str:
    """``info DIR --config``: the study file the folder was made from, its control characters
    written out (a file written by hand may hold escape sequences)."""
    from engine.errors import ConfigError, LandscapeError, clean_text, describe

    p = folder / STUDY_FILE
    if not p.is_file():
        raise ConfigError(f"{folder} holds no {STUDY_FILE}: it was not written by `study`")
    try:
        return clean_text(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise LandscapeError(f"cannot read {p}: {describe(e)}") from None


def print_study(folder: Path) -> None:
    """``info DIR``: the study, its members and their measures, and the taus and verdicts
    (saved ones, with intervals, when correlation.json matches the table)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from engine.study.analysis import correlate, read_correlation
    from engine.study.table import read_table
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
        note = "no intervals: correlation.json is missing, older than the table or not one "
        note += "(the report writes it)"
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
