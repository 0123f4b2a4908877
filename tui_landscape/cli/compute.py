"""``tui-landscape compute CONFIG``: compute a 1D or 2D loss surface into an HDF5 file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tui_landscape.cli.common import SetOption, console, run_job, user_errors

if TYPE_CHECKING:
    from engine.config import Config


def compute(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Argument(
            metavar="[CONFIG]", help="TOML config file (not with --resume).", show_default=False
        ),
    ] = None,
    set_: SetOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Surface file to write (.h5).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing surface instead of resuming.")
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            metavar="FILE.h5",
            help="Continue FILE.h5 with the config stored in it (--set still applies).",
        ),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Start the run in its own session and return: log in FILE.h5.log, see `ps`.",
        ),
    ] = False,
) -> None:
    """Compute loss and accuracy surfaces; the same command again resumes an unfinished run.

    `compute --resume FILE.h5` continues a file from the config stored in it, so the --set
    flags of the first run need not be repeated. --detach starts the run as the app's detached
    runs are: its own session (a closed SSH connection does not stop it), output in
    FILE.h5.log, listed by `tui-landscape ps`. The config keys are in docs/configuration.md.
    Exit codes: 0 done, 1 run-time error, 2 usage error, 130 interrupted (Ctrl-C), 143 stopped
    by SIGTERM (finished points are saved either way).
    """
    from engine.config import load_config, output_path
    from engine.distributed import Rank, launched  # torch: only where a command computes
    from engine.errors import ConfigError
    from engine.resume import stored_config
    from engine.run import prepare

    with user_errors(ctx):
        if resume is not None:
            if config is not None or out is not None or overwrite:
                raise ConfigError(
                    "--resume FILE.h5 continues that file with its stored config: "
                    "leave out CONFIG, --out and --overwrite"
                )
            cfg, path = stored_config(resume, set_ or []), resume
        elif config is None:
            raise ConfigError("Missing CONFIG: give a TOML config, or --resume FILE.h5")
        else:
            cfg = load_config(config, set_ or [])
            path = output_path(cfg, config, out)
        if detach:
            _detach(cfg, path, config, overwrite)
        elif launched():  # under torchrun: one rank of many
            with Rank(cfg) as rank:
                run_job(rank.prepare, path, overwrite, rank)
        else:
            run_job(lambda p, o: prepare(cfg, p, overwrite=o), path, overwrite, None)


def _detach(cfg: Config, path: Path, config: Path | None, overwrite: bool) -> None:
    """Start the run in its own session (``tui_landscape.detach``) and say where it went."""
    from engine.distributed import launched
    from engine.errors import ConfigError
    from tui_landscape.detach import start_detached

    if launched():
        raise ConfigError("--detach starts a run of its own; under torchrun leave it out")
    d = start_detached(cfg, path, saved=config, overwrite=overwrite)
    console.print(
        f"started {d.out} (pid {d.pid}) in the background; log: {d.log}\n"
        f"follow it: tui-landscape plot {d.out} --watch, or tui-landscape ps",
        highlight=False,
        soft_wrap=True,  # paths whole, to be copied
    )
