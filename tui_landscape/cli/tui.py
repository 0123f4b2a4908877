"""``tui-landscape tui [CONFIG.toml | FILE.h5 | FOLDER]``: open the terminal app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.errors import ConfigError
from tui_landscape.cli.common import user_errors


def tui(
    ctx: typer.Context,
    target: Annotated[
        Path | None,
        typer.Argument(
            help="A config (.toml) to set up, a surface (.h5) to view, a study folder, or a folder."
        ),
    ] = None,
) -> None:
    """Open the app: browse surface files, view and compare them, set up and run new ones."""
    from engine.config import load_config
    from engine.formats import read_surface
    from engine.study.table import is_study_folder, read_table

    with user_errors(ctx):
        if target is not None and not target.exists():
            raise ConfigError(f"not found: {target}")
        if (
            target is not None
            and target.is_file()
            and target.suffix not in (".toml", ".h5", ".hdf5")
        ):
            raise ConfigError(
                f"Expected a .toml config, a .h5 surface or a folder, but got {target}"
            )
        # A broken target is one line here, not a crash inside the running app.
        if target is not None and target.suffix == ".toml":
            load_config(target, [])
        elif target is not None and target.is_file():
            read_surface(target)
        elif target is not None and is_study_folder(target):
            read_table(target)
        from tui_landscape.app import create_app

        app = create_app(target)
        app.run()
    if app.return_code:  # an unhandled error inside the app (Textual printed it on exit)
        raise typer.Exit(app.return_code)
