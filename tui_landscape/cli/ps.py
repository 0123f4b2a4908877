"""``tui-landscape ps [FOLDER...]``: the surfaces being written, how far and how fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tui_landscape.cli.common import console, user_errors
from tui_landscape.report import fmt_rate

if TYPE_CHECKING:
    from tui_landscape.runs import RunStatus


def ps(
    ctx: typer.Context,
    targets: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[FOLDER|FILE.h5]...", help="Where to look (default: the current folder)."
        ),
    ] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Look in subfolders too.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON list on stdout, for scripts.")
    ] = False,
) -> None:
    """List the surface files a run is writing now (detached, in the app, or `compute`).

    A file counts while a process holds its lock (FILE.h5.lock): a run that ended, or was
    killed, holds none. Shown: the writer's pid, points done of the total, points per second
    since the last checkpoint, the time left, and a detached run's log (FILE.h5.log).
    --json prints the same as a list of objects (path, pid, done, failed, total, rate in
    points per second, eta in seconds, log; null where unknown).
    """
    from rich.table import Table

    from tui_landscape.runs import find_runs
    from tui_landscape.safe import plain

    with user_errors(ctx):
        found = find_runs(targets or [Path(".")], recursive=recursive)
    if as_json:
        typer.echo(json.dumps([_record(r) for r in found], indent=1))
        return
    if not found:
        console.print("No surface is being written here.", highlight=False)
        return
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("file", "pid", "done", "rate", "left", "log"):
        paths = col in ("file", "log")  # folded, never cut: a path is copied from here
        t.add_column(col, justify="right" if col in ("pid", "rate", "left") else "left",
                     overflow="fold" if paths else "ellipsis", no_wrap=not paths)  # fmt: skip
    for r in found:
        t.add_row(plain(r.path), str(r.pid or "?"), _done(r), _rate(r), _left(r),
                  plain(r.log) if r.log else "")  # fmt: skip
    console.print(t)


def _done(r: RunStatus) -> str:
    if not r.total:
        return "preparing"
    failed = f", {r.failed} failed" if r.failed else ""
    return f"{r.done}/{r.total} ({r.percent:.0f}%{failed})"


def _rate(r: RunStatus) -> str:
    return fmt_rate(r.rate, 1.0) if r.rate else "-"  # s/pt for a slow run, as `compute`


def _left(r: RunStatus) -> str:
    eta = r.eta
    if eta is None:
        return "-"
    m, s = divmod(round(eta), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _record(r: RunStatus) -> dict[str, object]:
    return {
        "path": str(r.path), "pid": r.pid or None, "done": r.done, "failed": r.failed,
        "total": r.total or None, "rate": r.rate, "eta": r.eta,
        "log": None if r.log is None else str(r.log),
    }  # fmt: skip
