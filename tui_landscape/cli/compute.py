"""``tui-landscape compute CONFIG``: compute a 1D or 2D loss surface into an HDF5 file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tui_landscape.cli.common import ConfigArg, SetOption, run_job, user_errors


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
    0 done, 1 run-time error, 2 usage error, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM
    (finished points are saved either way).
    """
    from engine.config import load_config, output_path
    from engine.distributed import Rank, launched  # torch: only where a command computes
    from engine.run import prepare

    with user_errors(ctx):
        cfg = load_config(config, set_ or [])
        path = output_path(cfg, config, out)
        if launched():  # under torchrun: one rank of many
            with Rank(cfg) as rank:
                run_job(rank.prepare, path, overwrite, rank)
        else:
            run_job(lambda p, o: prepare(cfg, p, overwrite=o), path, overwrite, None)
