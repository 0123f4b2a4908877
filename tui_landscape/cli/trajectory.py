"""``tui-landscape trajectory CONFIG``: a training path's PCA plane, the path on it, the surface."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tui_landscape.cli.common import ConfigArg, SetOption, console, run_job, user_errors
from tui_landscape.cli.plot import terminal_width


def trajectory(
    ctx: typer.Context,
    config: ConfigArg,
    set_: SetOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Surface file (.h5).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace, not resume.")] = False,
    projection: Annotated[
        Path | None,
        typer.Option("--projection", help="Also write the path in the reference's layout."),
    ] = None,
) -> None:
    """PCA directions of the checkpoints in `directions.checkpoints`, the path projected on
    them, and the loss surface of that plane (grid fitted to the path unless `grid` is set).

    The same as `compute` with `directions.kind = "pca"`; afterwards it prints the explained
    variance and draws the path over the contours.
    """
    from engine.config import load_config, output_path
    from engine.formats import read_surface, read_trajectory
    from engine.run import prepare  # torch: only where a command computes
    from engine.tomlfile import read_toml_file
    from tui_landscape.plots.views import render

    with user_errors(ctx):
        sets = [*(set_ or [])]
        given = "grid" in read_toml_file(config, "Config file")[1]
        if not given and not any(o.startswith("grid.") for o in sets):
            sets += ["grid.x=auto", "grid.y=auto"]  # no grid given: fit it to the path
        cfg = load_config(config, [*sets, "directions.kind=pca"])
        path = output_path(cfg, config, out)
        run_job(lambda p, o: prepare(cfg, p, overwrite=o), path, overwrite, None)
        s = read_surface(path)
        t = read_trajectory(path, s)
        if t.explained is not None:
            a, b = (100 * v for v in t.explained)
            console.print(
                f"Explained variance: 1st PC {a:.2f} %, 2nd PC {b:.2f} % (together {a + b:.2f} %)",
                highlight=False,
            )
        if projection is not None:
            import numpy as np

            from engine.formats import write_projection

            write_projection(
                projection, np.c_[t.x, t.y], None if t.explained is None else np.array(t.explained)
            )
            console.print(f"Projection: {projection}", highlight=False)
        typer.echo(
            render(
                s,
                "train_loss",
                width=terminal_width(0),
                height=24,
                color=console.is_terminal,
                trajectory=t,
            )
        )
