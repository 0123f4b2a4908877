"""What the commands share: the global state, error handling and the progress display."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.constrain import Constrain
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
)
from rich.table import Column

from engine.errors import LandscapeError, clean_text
from tui_landscape.report import fit, fmt_eta, fmt_point, fmt_rate, summary_lines

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
        _error_line(str(e))
        raise typer.Exit(code) from None
    except SystemExit as e:
        # Our commands end through typer.Exit: this one came from the user's code (a model,
        # data set or loss module calling sys.exit or exit()), and exit 0 would claim success.
        if state(ctx).debug:
            raise
        _error_line(
            f"the user's code called sys.exit({e.code!r}) (a model, data set or loss; a "
            "script's entry point run on import?); the command stopped"
        )
        raise typer.Exit(1) from None


def _error_line(text: str) -> None:
    """``error: text`` on stderr as one line: a message can quote a file's name or contents,
    so no markup and no control characters, and a foreign exception's lines are joined."""
    message = escape(" ".join(line.strip() for line in clean_text(text).splitlines()))
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


WAITING = "waiting for the first point"


class _ShortOfWidth:
    """A renderable drawn two columns short of the width it is given.

    A progress bar that fills the line leaves the cursor at its edge, where the terminal's
    echo of Ctrl-C ('^C') wraps to a new line: the bar's last redraw then lands below a copy
    of it. With two columns free the echo stays on the bar's line and the redraw covers it.
    """

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Constrain(self.renderable, width=max(20, options.max_width - 2))


class _Progress(Progress):
    def get_renderables(self) -> Iterable[RenderableType]:
        yield _ShortOfWidth(self.make_tasks_table(self.tasks))


def run_with_progress(
    job: Job, label: str = "computing", outcomes: Iterator[Outcome] | None = None
) -> Summary:
    """Run ``job`` with a bar (points, rate, ETA, output); plain lines when not a terminal.

    The bar is redrawn when a point finishes (at most ten times a second), never on a timer:
    an idle run draws nothing, so nothing moves while no work is done and nothing is sent
    over a slow SSH link. Until the first point it says that it is waiting for it.
    """
    todo = job.total - job.done
    if job.resumed:
        console.print(
            f"Resuming {job.path}: {job.done}/{job.total} points already done, {todo} to go.",
            highlight=False,
            markup=False,
        )
    if todo == 0:
        job.close()  # folds nothing, but removes the journal and releases the lock
        return job.summary(0, 0.0)
    start = time.perf_counter()
    # Only the bar gives way to a narrow terminal (the text columns do not wrap); the file's
    # name, not its path, cut in the middle past 24 characters, keeps the line short (the
    # path is printed when the run ends).
    progress = _Progress(
        TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
        BarColumn(),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        TaskProgressColumn(table_column=Column(no_wrap=True)),
        TextColumn(
            "{task.fields[rate]} → {task.fields[out]}",
            markup=False,  # a file's name is shown as it is
            table_column=Column(no_wrap=True),
        ),
        console=console,
        auto_refresh=False,
        transient=False,
        disable=not console.is_terminal,
    )
    last_log = [start]
    last_draw = [0.0]
    ended = [0]
    terminal, done0 = console.is_terminal, job.done

    def on_point(r: PointResult) -> None:
        check_terminated()
        # Points that ended, failed ones too: a rate and an ETA over finished points alone
        # divided by zero when the first point failed.
        ended[0] += 1
        n = ended[0]
        now = time.perf_counter()
        draw = now - last_draw[0] >= 0.1 or n == todo
        log_line = not terminal and (now - last_log[0] >= 10 or n == todo)
        if not (draw or log_line):
            return  # most points of a fast run: nothing to show yet (a small model's point
            # is a millisecond, and formatting a bar for it took a few percent of that)
        elapsed = max(now - start, 1e-9)
        left = (todo - n) * elapsed / n
        rate = fmt_rate(n, elapsed)
        progress.update(task, completed=done0 + n, rate=f"{rate}, ETA {fmt_eta(left)}")
        if draw:
            progress.refresh()
            last_draw[0] = now
        if log_line:
            # Scheduler logs get a line every 10 s instead of a redrawn bar.
            print(
                f"{label}: {job.done}/{job.total} points, {rate}, ETA {left:.0f} s",
                file=sys.stdout,
                flush=True,
            )
            last_log[0] = now

    with progress:
        task = progress.add_task(
            label,
            total=job.total,
            completed=job.done,
            rate=WAITING,
            out=fit(job.path.name, 24, True),
        )
        progress.refresh()
        return job.run(on_point, outcomes)


def print_summary(s: Summary, ndim: int) -> None:
    for line in summary_lines(s, ndim):
        console.print(line, highlight=False, markup=False)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's time limit), raised where Ctrl-C would raise: the
    same clean-up (workers stopped, points folded into the file), its own message and code."""


# The shell's code for a process ended by SIGTERM (128 + 15); Ctrl-C gives 130 (128 + 2).
EXIT_TERMINATED = 128 + int(signal.SIGTERM)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``Terminated`` and SIGINT (Ctrl-C)
    ``KeyboardInterrupt``, and each also sets a flag that ``check_terminated`` reads; then the
    old handlers come back.

    Only around a computation: elsewhere the defaults are right. Python's own SIGINT handler
    raises wherever the main thread is, and a KeyboardInterrupt raised in a finalizer or a
    weakref callback is printed as 'Exception ignored' and lost: a pool run went on to the
    end and exited 0 after Ctrl-C. The flag brings it back at the next point. Each handler
    fires once: a second SIGTERM during the clean-up ends the process as before, a second
    Ctrl-C interrupts it (the journal keeps every finished point).
    """

    pid = os.getpid()
    _TERMINATED[0] = _INTERRUPTED[0] = False  # a signal of an earlier block was handled there

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != pid:
            # A forked child (a DataLoader worker) has this handler until it sets its own; a
            # kill of the process group must not end it there: its parent stops it.
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _TERMINATED[0] = True
        if not _in_finalizer(frame):
            raise Terminated

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != pid:
            return  # as above: the parent stops its forked children
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _INTERRUPTED[0] = True
        if not _in_finalizer(frame):
            raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    # Only where Ctrl-C would raise anyway: a process started with SIGINT ignored (a script's
    # background job) keeps ignoring it.
    old_int = signal.getsignal(signal.SIGINT)
    if old_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGINT, old_int)


# Set when SIGTERM or SIGINT arrives; checked after each point and after preparing, because
# the exception raised by the handler is lost where it lands in a finalizer.
_TERMINATED = [False]
_INTERRUPTED = [False]


def _in_finalizer(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside a ``__del__``, which would swallow an exception (and
    print its traceback as 'Exception ignored'). A weakref callback swallows it too, but
    shows no mark in its frames: the flags catch that case at the next check."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def check_terminated() -> None:
    """Raise ``Terminated`` or ``KeyboardInterrupt`` if SIGTERM or SIGINT arrived where its
    exception could not be raised (or was swallowed)."""
    if _TERMINATED[0]:
        raise Terminated
    if _INTERRUPTED[0]:
        raise KeyboardInterrupt


def _stopped(e: KeyboardInterrupt) -> tuple[str, int]:
    """How an interrupted run says it stopped, and its exit code."""
    return (
        ("Terminated (SIGTERM)", EXIT_TERMINATED)
        if isinstance(e, Terminated)
        else ("Interrupted", 130)
    )


def run_job(
    prepare_job: Callable[[Path, bool], Job | None],
    path: Path,
    overwrite: bool,
    rank: Rank | None = None,
) -> None:
    """Prepare a job with ``prepare_job(path, overwrite)``, run it with progress and report:
    what ``compute``, ``hessian`` and ``trajectory`` share. Under torchrun (``rank``) only
    rank 0 gets a job; the other ranks evaluate the points rank 0 sends.

    Ctrl-C exits with 130 and SIGTERM with 143, each after saying how many points are saved.
    """
    try:
        with signals_as_interrupts():
            job = prepare_job(path, overwrite)
            check_terminated()
    except KeyboardInterrupt as e:
        how, code = _stopped(e)
        console.print(f"{how} before the first point; nothing was written.", highlight=False)
        raise typer.Exit(code) from None
    if job is None:  # a rank other than 0: it evaluates, rank 0 reports
        rank.work()
        return
    for note in job.notes:  # what preparing chose for the user (an automatic range)
        console.print(note, highlight=False, markup=False)
    if rank is not None:
        console.print(
            f"{rank.world} ranks ({rank.device.type}); rank 0 writes {job.path}",
            highlight=False,
            markup=False,
        )
    # What data.batch_size = 'auto' chose (a stand-in job without an evaluator says nothing).
    choice = getattr(getattr(job, "landscape", None), "batch_choice", None)
    if choice is not None and choice.how != "given" and job.done < job.total:
        # One line in a log file too (a scheduler's), where the console would wrap at 80.
        console.print(choice.line().capitalize(), highlight=False, markup=False, soft_wrap=True)
    try:
        with signals_as_interrupts():
            summary = run_with_progress(job, outcomes=rank.outcomes() if rank else None)
    except KeyboardInterrupt as e:
        # The bar is already stopped (once, by leaving its `with`): one line follows it.
        how, code = _stopped(e)
        console.print(
            f"{how}: {job.done}/{job.total} points saved in {job.path}; "
            "run the same command to resume.",
            highlight=False,
            markup=False,  # a file's name is shown as it is
        )
        raise typer.Exit(code) from None
    print_summary(summary, job.grid.ndim)
    if summary.failed:
        k, error = min(summary.failed.items())
        raise LandscapeError(
            f"{len(summary.failed)} of {summary.total} points failed on every try (first at "
            f"{fmt_point(job.grid.point(k), job.grid.ndim)}: {error}); the finished points "
            f"are saved in {job.path}; run the same command to try the failed ones again"
        )
