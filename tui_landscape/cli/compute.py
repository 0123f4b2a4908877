"""``tui-landscape compute CONFIG``: compute a 1D or 2D loss surface into an HDF5 file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from engine.config import load_config
from engine.distributed import Rank, launched
from engine.errors import LandscapeError
from engine.run import Job, prepare
from tui_landscape.cli.common import (
    ConfigArg,
    SetOption,
    console,
    fmt_point,
    print_summary,
    run_with_progress,
    user_errors,
)


def compute(
    ctx: typer.Context,
    config: ConfigArg,
    set_: SetOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Surface file to write (.h5).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing surface instead of resuming.")
    ] = False,
) -> None:
    """Compute loss and accuracy surfaces; the same command again resumes an unfinished run.

    The config keys are listed in the README (and sample_configs/ has examples). Exit codes:
    0 done, 1 run-time error, 2 usage error, 130 interrupted (finished points are saved).
    """
    with user_errors(ctx):
        cfg = load_config(config, set_ or [])
        path = out or Path(cfg.output.path or f"{config.stem}.h5")
        if launched():  # under torchrun: one rank of many
            with Rank(cfg) as rank:
                _compute(rank.prepare, path, overwrite, rank)
        else:
            _compute(lambda p, o: prepare(cfg, p, overwrite=o), path, overwrite, None)


def _compute(
    prepare_job: Callable[[Path, bool], Job | None],
    path: Path,
    overwrite: bool,
    rank: Rank | None,
) -> None:
    """Prepare, run with progress, report; under torchrun only rank 0 writes and reports."""
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
