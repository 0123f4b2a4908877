"""``tui-landscape hessian CONFIG``: the Hessian's extreme eigenvalues over the grid."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tui_landscape.cli.common import ConfigArg, SetOption, console, run_job, user_errors
from tui_landscape.cli.plot import terminal_width

if TYPE_CHECKING:
    from engine.formats import Surface


def hessian(
    ctx: typer.Context,
    config: ConfigArg,
    set_: SetOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Surface file (.h5).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace, not resume.")] = False,
    center: Annotated[
        bool,
        typer.Option(
            "--center",
            help="Only the model's own weights: no grid (grid.x = '0:0:1', grid.y empty).",
        ),
    ] = False,
) -> None:
    """lambda_max and lambda_min of the Hessian of the mean training loss at every grid point
    (Lanczos, warm-started from the neighbouring point), with their residuals ||Hv - lambda v||,
    beside the losses; first the center's spectrum (top-k eigenvalues, Hutchinson trace with its
    standard error, eigenvalue density by stochastic Lanczos quadrature), stored in the file;
    then the |lambda_min / lambda_max| map.

    The Hessian is over `hessian.params`: the default '2d' takes tensors with 2+ dims only, as
    the reference does (biases and norm layers' weights are left out); 'all' takes every one.
    Each eigenvalue is found to `hessian.tol` of itself (docs/configuration.md). The same as
    `compute` with `hessian.enabled = true`.
    """
    from engine.config import load_config, output_path
    from engine.formats import read_surface
    from engine.run import prepare  # torch: only where a command computes
    from tui_landscape.plots.hessian import spectrum_lines
    from tui_landscape.plots.views import render

    with user_errors(ctx):
        sets = [*(set_ or []), "hessian.enabled=true"]
        if center:
            sets += ["grid.x=0:0:1", "grid.y="]
        cfg = load_config(config, sets)
        path = output_path(cfg, config, out)

        def prepare_and_summarise(p: Path, o: bool):
            job = prepare(cfg, p, overwrite=o)
            for line in spectrum_lines(job.spectrum or {}):
                console.print(line, highlight=False)
            return job

        run_job(prepare_and_summarise, path, overwrite, None)
        s = read_surface(path)
        if s.completed.size > 1:
            width, color = terminal_width(0), console.is_terminal
            typer.echo(render(s, "ratio", width=width, height=20, color=color))


def map_lines(s: Surface, spectrum: dict[str, Any] | None) -> list[str]:
    """What ``info`` says of a Hessian file: the params in force, the map's worst residual
    (relative to each eigenvalue) and its unconverged points, then the centre's spectrum."""
    from tui_landscape.plots.hessian import accuracy, accuracy_lines, params_text, spectrum_lines

    a = accuracy(s, spectrum)
    lines = [f"Hessian eigenvalues ({params_text(a.params)}):", *accuracy_lines(a)]
    centre = spectrum_lines(spectrum or {})[1:]
    return [*lines, "  at the center (the model's own weights):", *centre] if centre else lines
