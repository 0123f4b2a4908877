"""``tui-landscape hessian CONFIG``: the Hessian's extreme eigenvalues over the grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tui_landscape.cli.common import ConfigArg, SetOption, console, run_job, user_errors
from tui_landscape.cli.plot import terminal_width


def hessian(
    ctx: typer.Context,
    config: ConfigArg,
    set_: SetOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Surface file (.h5).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace, not resume.")] = False,
) -> None:
    """lambda_max and lambda_min of the Hessian of the mean training loss at every grid point
    (Lanczos, warm-started from the neighbouring point), beside the losses; then the center's
    sharpness (lambda_max, Hutchinson trace) and the |lambda_min / lambda_max| map.

    The same as `compute` with `hessian.enabled = true`.
    """
    from engine.config import load_config, output_path
    from engine.formats import read_surface
    from engine.run import prepare  # torch: only where a command computes
    from tui_landscape.plots.views import render

    with user_errors(ctx):
        cfg = load_config(config, [*(set_ or []), "hessian.enabled=true"])
        path = output_path(cfg, config, out)

        def prepare_and_summarise(p: Path, o: bool):
            job = prepare(cfg, p, overwrite=o)
            c = job.landscape.center_summary(cfg.hessian.trace_samples)
            text = f"At the center: lambda_max {c['lmax']:.5g}, lambda_min {c['lmin']:.5g}"
            if "trace" in c:
                text += f", trace {c['trace']:.5g} +- {c['trace_se']:.2g} (Hutchinson)"
            console.print(text, highlight=False)
            return job

        run_job(prepare_and_summarise, path, overwrite, None)
        s = read_surface(path)
        width, color = terminal_width(0), console.is_terminal
        typer.echo(render(s, "ratio", width=width, height=20, color=color))
