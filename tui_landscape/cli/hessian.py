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


def params_text(params: str) -> str:
    """``hessian.params`` as shown beside every eigenvalue."""
    if params == "2d":
        return "hessian.params = '2d': tensors with 2+ dims, biases and norm weights left out"
    return f"hessian.params = {params!r}"


def spectrum_lines(sp: dict[str, Any]) -> list[str]:
    """The centre's spectrum (a file's ``hessian_spectrum`` values) as a few lines of text."""
    if "lmax" not in sp:
        return []
    lines = [f"At the center ({int(sp['n']):,} parameters; {params_text(sp['params'])}):"]
    worst = max(sp["lmax_residual"], sp["lmin_residual"])
    conv = "" if sp.get("converged", 1.0) else "; NOT converged within hessian.max_products"
    lines.append(
        f"  lambda_max {sp['lmax']:.6g}, lambda_min {sp['lmin']:.6g} (worst residual "
        f"||Hv - lambda v|| {worst:.2g}, hessian.tol {sp['tol']:g}{conv})"
    )
    top = sp.get("top_k")
    if top is not None and len(top) > 1:
        lines.append(f"  top {len(top)}: " + ", ".join(f"{v:.5g}" for v in top))
    if "trace" in sp:
        lines.append(
            f"  trace {sp['trace']:.5g} +- {sp['trace_se']:.2g} (Hutchinson, "
            f"{int(sp['trace_probes'])} Rademacher probes, +- one standard error)"
        )
    if "slq_nodes" in sp:
        probes, steps = sp["slq_nodes"].shape
        lines.append(
            f"  eigenvalue density: stochastic Lanczos quadrature, {probes} probes x {steps} "
            "steps (in the file's hessian_spectrum group)"
        )
    return lines


def map_lines(s: Surface, spectrum: dict[str, Any] | None) -> list[str]:
    """What ``info`` says of a Hessian file: the params in force, the map's worst residual and
    its unconverged points, then the centre's spectrum."""
    import numpy as np

    params = (spectrum or {}).get("params") or _config_params(s.provenance.config)
    lines = [f"Hessian eigenvalues ({params_text(params)}):"]
    if "max_eig_residual" in s.values:
        done = s.completed
        res = np.fmax(s.values["max_eig_residual"], s.values["min_eig_residual"])[done]
        worst = f"{np.nanmax(res):.2g}" if np.isfinite(res).any() else "-"
        line = f"  worst residual ||Hv - lambda v|| over the map {worst}"
        if "hessian_converged" in s.values:
            bad = int((s.values["hessian_converged"][done] == 0).sum())
            line += (
                f"; {bad} of {int(done.sum())} points NOT converged" if bad else "; all converged"
            )
        lines.append(line)
    else:
        lines.append("  no residuals stored (a file from before they were)")
    centre = spectrum_lines(spectrum or {})[1:]
    return [*lines, "  at the center (the model's own weights):", *centre] if centre else lines


def _config_params(config: str) -> str:
    """``hessian.params`` of a stored config ('2d' where it does not say, the default)."""
    import tomllib

    try:
        return str(tomllib.loads(config).get("hessian", {}).get("params", "2d"))
    except (tomllib.TOMLDecodeError, AttributeError):
        return "2d"
