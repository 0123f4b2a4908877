"""What the commands share: the global state, error handling and the progress display."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from engine.errors import LandscapeError
from engine.formats import clean_text

if TYPE_CHECKING:  # names for annotations only: the commands that run jobs import torch
    from engine.distributed import Rank
    from engine.pool import Outcome
    from engine.run import Job, PointResult, Summary

# emoji=False: ':name:' in paths and grid specs ('a:b:c') must print as typed.
ConfigArg = Annotated[
    Path, typer.Argument(metavar="CONFIG", help="TOML config file.", show_default=False)
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a config key, e.g. grid.x=-1:1:11; values are TOML (repeatable).",
    ),
]

console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


@dataclass(frozen=True)
class State:
    debug: bool = False
    verbose: bool = False


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


@contextlib.contextmanager
def user_errors(ctx: typer.Context) -> Iterator[None]:
    """Turn a ``LandscapeError`` into one line on stderr and its exit code."""
    try:
        yield
    except BrokenPipeError:
        raise  # the reader of a pipe left (`| head`): main() ends quietly
    except (LandscapeError, OSError) as e:
        # OSError here is the user's too: a full disk, a folder without write permission.
        if state(ctx).debug:
            raise
        code = e.exit_code if isinstance(e, LandscapeError) else 1
        # A message can quote a file's name or contents: no markup, no control characters.
        message = escape(clean_text(str(e)))
        err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(code) from None


def fmt_point(coords: tuple[float, float], ndim: int) -> str:
    a, b = coords
    return f"x={a:.4g}" if ndim == 1 else f"(x={a:.4g}, y={b:.4g})"


def run_with_progress(
    job: Job, label: str = "computing", outcomes: Iterator[Outcome] | None = None
) -> Summary:
    """Run ``job`` with a live bar (points, points/s, ETA); plain lines when not a terminal."""
    todo = job.total - job.done
    if job.resumed:
        console.print(
            f"Resuming {job.path}: {job.done}/{job.total} points already done, {todo} to go.",
            highlight=False,
        )
    if todo == 0:
        job.close()  # folds nothing, but removes the journal and releases the lock
        return job.summary(0, 0.0)
    start = time.perf_counter()
    rate = TextColumn("{task.fields[rate]}")
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        rate,
        TimeRemainingColumn(),
        TextColumn("→ {task.fields[out]}"),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    last_log = [start]

    def on_point(r: PointResult) -> None:
        n = job.done - (job.total - todo)
        pps = n / max(time.perf_counter() - start, 1e-9)
        progress.update(task, advance=1, rate=f"{pps:.1f} pt/s")
        now = time.perf_counter()
        if not console.is_terminal and (now - last_log[0] >= 10 or n == todo):
            # Scheduler logs get a line every 10 s instead of a redrawn bar.
            eta = (todo - n) / pps if pps > 0 else float("nan")
            print(
                f"{label}: {job.done}/{job.total} points, {pps:.1f} pt/s, ETA {eta:.0f} s",
                file=sys.stdout,
                flush=True,
            )
            last_log[0] = now

    with progress:
        task = progress.add_task(
            label, total=job.total, completed=job.done, rate="", out=str(job.path)
        )
        return job.run(on_point, outcomes)


def print_summary(s: Summary, ndim: int) -> None:
    pps = s.computed / s.seconds if s.seconds > 0 else float("nan")
    head = (
        f"Computed {s.computed} points in {s.seconds:.1f} s ({pps:.1f} pt/s)"
        if s.computed
        else "Nothing to compute: the surface is already complete"
    )
    console.print(f"{head}; {s.done}/{s.total} done.", highlight=False)
    if s.min_value == s.min_value:  # not NaN: some finished point has a finite value
        console.print(
            f"Minimum {s.min_name} {s.min_value:.6g} at {fmt_point(s.min_coords, ndim)}.",
            highlight=False,
        )
    elif s.done:
        console.print(f"No finished point has a finite {s.min_name}.", highlight=False)
    if s.non_finite:
        console.print(
            f"{s.non_finite} finished points have a NaN or infinite {s.min_name} "
            "(stored as such; shown as gaps).",
            highlight=False,
        )
    if s.bn_negative:
        console.print(bn_negative_message(s, ndim), highlight=False)
    console.print(f"Surface: {s.path}", highlight=False)


def bn_negative_message(s: Summary, ndim: int) -> str:
    """Where the moved BN running variances are negative, and the remedy, in one line."""
    n = len(s.bn_negative)
    if ndim == 1:
        # Each variance is linear in x and positive at 0: it is negative on a half-line, so
        # the points with one are the ends of the line, beyond a first point on each side.
        right = [a for a, _ in s.bn_negative if a > 0]
        left = [a for a, _ in s.bn_negative if a < 0]
        ends = ([f"up to x = {max(left):.4g}"] if left else []) + (
            [f"from x = {min(right):.4g} on"] if right else []
        )
        where = " and ".join(ends)
    else:
        near = min(s.bn_negative, key=lambda p: p[0] ** 2 + p[1] ** 2)
        where = f"away from the centre (nearest at {fmt_point(near, ndim)})"
    nan = (
        f"{s.bn_negative_nan} of them have a NaN or infinite {s.min_name}"
        if s.bn_negative_nan
        else f"their {s.min_name} is still finite"
    )
    return (
        f"BN running variances are negative {where} ({n} of {s.total} points; {nan}): "
        "compute.bn = 'recalibrate' re-estimates them at each point."
    )


def run_job(
    prepare_job: Callable[[Path, bool], Job | None],
    path: Path,
    overwrite: bool,
    rank: Rank | None = None,
) -> None:
    """Prepare a job with ``prepare_job(path, overwrite)``, run it with progress and report:
    what ``compute``, ``hessian`` and ``trajectory`` share. Under torchrun (``rank``) only
    rank 0 gets a job; the other ranks evaluate the points rank 0 sends."""
    try:
        job = prepare_job(path, overwrite)
    except KeyboardInterrupt:
        console.print("Interrupted before the first point; nothing was written.")
        raise typer.Exit(130) from None
    if job is None:  # a rank other than 0: it evaluates, rank 0 reports
        rank.work()
        return
    if rank is not None:
        console.print(
            f"{rank.world} ranks ({rank.device.type}); rank 0 writes {job.path}", highlight=False
        )
    try:
        summary = run_with_progress(job, outcomes=rank.outcomes() if rank else None)
    except KeyboardInterrupt:
        console.print(
            f"Interrupted: {job.done}/{job.total} points saved in {job.path}; "
            "run the same command to resume.",
            highlight=False,
        )
        raise typer.Exit(130) from None
    print_summary(summary, job.grid.ndim)
    if summary.failed:
        k, error = min(summary.failed.items())
        raise LandscapeError(
            f"{len(summary.failed)} of {summary.total} points failed on every try (first at "
            f"{fmt_point(job.grid.point(k), job.grid.ndim)}: {error}); the finished points "
            f"are saved in {job.path}; run the same command to try the failed ones again"
        )
