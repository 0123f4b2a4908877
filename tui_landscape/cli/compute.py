"""``tui-landscape compute CONFIG``: compute a 1D or 2D loss surface into an HDF5 file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.config import load_config
from engine.errors import LandscapeError
from engine.run import prepare
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
        try:
            job = prepare(cfg, path, overwrite=overwrite)
        except KeyboardInterrupt:
            console.print("Interrupted before the first point; nothing was written.")
            raise typer.Exit(130) from None
        try:
            summary = run_with_progress(job)
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
