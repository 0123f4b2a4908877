"""The Hessian's eigenvalue density at the centre, as a plot spec (``--kind density``).

A Hessian run stores the density by stochastic Lanczos quadrature in the file's
``hessian_spectrum`` group (``engine.spectrum``; ``read_spectrum``): ``density`` on
``density_grid``, Gaussians of width ``density_sigma`` around the quadrature nodes. It is drawn
as stored, nothing smoothed or resampled, so the curve's mass and peak are the file's. The
top-k eigenvalues are vertical lines; the trace with its standard error, the top-k and the
``hessian.params`` in force are the legend (``notes``). ``plot``, ``plot --export`` and the
app's plot view draw it through the kind registry like any other spec.

No plotting package is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.formats import clean_text
from tui_landscape.plots.hessian import params_text
from tui_landscape.plots.spec import PlotSpec

__all__ = ["LOG_FLOOR", "NO_DENSITY", "density_spec", "has_density"]

# On a log scale the density is drawn down to this fraction of its peak: the Gaussians' tails
# fall to 1e-300, which would squash the spectrum's shape into the top of the plot.
LOG_FLOOR = 1e-8

NO_DENSITY = (
    "{path} holds no eigenvalue density (a hessian_spectrum group with one); compute it with: "
    "tui-landscape hessian CONFIG --center --set hessian.density_probes=5 --out FILE.h5"
)


def has_density(spectrum: Mapping[str, Any] | None) -> bool:
    """Whether a file's spectrum (``read_spectrum``) holds the density."""
    return spectrum is not None and "density" in spectrum and "density_grid" in spectrum


def density_spec(
    spectrum: Mapping[str, Any] | None,
    path: str | Path,
    *,
    log: bool = False,
    title: str | None = None,
) -> PlotSpec:
    """The eigenvalue density of the file at ``path`` (its ``read_spectrum``), as stored; one
    clear error naming the command that computes it where the file holds none."""
    if not has_density(spectrum):
        raise ConfigError(NO_DENSITY.format(path=path))
    assert spectrum is not None
    t = np.asarray(spectrum["density_grid"], dtype=float)
    rho = np.asarray(spectrum["density"], dtype=float)
    top = np.asarray(spectrum.get("top_k", np.empty(0)), dtype=float).ravel()
    how = "SLQ"  # stochastic Lanczos quadrature: short, the terminal cuts a long title
    if "slq_nodes" in spectrum:
        probes, steps = np.shape(spectrum["slq_nodes"])
        how += f", {probes} probes x {steps} steps"
    notes = []
    if top.size:
        notes.append(f"top {top.size} (lines): " + ", ".join(f"{v:.4g}" for v in top))
    if "trace" in spectrum:
        notes.append(
            f"trace {float(spectrum['trace']):.5g} +- {float(spectrum['trace_se']):.2g} "
            f"(Hutchinson, {int(spectrum['trace_probes'])} probes, +- one standard error)"
        )
    if "params" in spectrum:
        n = f"{int(spectrum['n']):,} parameters; " if "n" in spectrum else ""
        notes.append(f"{n}{params_text(str(spectrum['params']))}")
    label = f"{clean_text(Path(path).name)}: eigenvalue density ({how})"
    peak = float(np.nanmax(rho)) if np.isfinite(rho).any() else 1.0
    return PlotSpec(
        "density",
        t,
        series={"density": rho},
        log=log,
        title=label if title is None else title,
        xlabel="eigenvalue",
        left_label="density",
        mark_min=False,
        vmin=peak * LOG_FLOOR if log else None,
        marks=top,
        notes=tuple(notes),
    )
