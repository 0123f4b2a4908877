"""``tui-landscape info FILE.h5``: what a surface file holds (ours or the reference's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tui_landscape.cli.common import console, user_errors
from tui_landscape.cli.plot import FitRadiusOpt, MarginOpt, RadiusOpt
from tui_landscape.report import fmt_point


def info(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="Surface file (.h5); or a study folder: its members, measures and taus.",
            show_default=False,
        ),
    ],
    config: Annotated[
        bool, typer.Option("--config", help="Print only the stored config (TOML).")
    ] = False,
    layers: Annotated[
        bool,
        typer.Option("--layers", help="Each direction's norm over the weights', per tensor."),
    ] = False,
    margin: MarginOpt = 0.1,
    radius: RadiusOpt = 0.25,
    fit_radius: FitRadiusOpt = 0.35,
) -> None:
    """Show a surface file's layout, grid, surfaces, completion, provenance and center values,
    and the sharpness of its loss (docs/sharpness.md)."""
    import numpy as np
    from rich import box
    from rich.table import Table

    from engine.formats import LAYOUT_OURS, read_centre, read_surface
    from engine.sharpness import check_options, format_sharpness, sharpness
    from tui_landscape.safe import plain

    # A study folder: its members, their status and measures, and each measure's tau.
    from tui_landscape.studies import is_study

    if is_study(file):
        from tui_landscape.cli.studydir import print_study, study_file_text

        with user_errors(ctx):
            if config:  # the study file as given, as --config prints a surface's config
                typer.echo(study_file_text(file).rstrip())
            else:
                print_study(file)
        return
    with user_errors(ctx):
        check_options(margin, radius, fit_radius=fit_radius)
        s = read_surface(file)
    if config:
        typer.echo(s.provenance.config.rstrip() or "# no config stored (reference file)")
        return
    g = s.grid
    grid = f"x {g.x.spec()}" + (f", y {g.y.spec()}" if g.y is not None else "")
    kind = f"{g.ndim}D, {' x '.join(str(n) for n in reversed(s.shape))} points"
    layout = (
        f"tui-landscape format v{s.provenance.format_version}"
        if s.layout == LAYOUT_OURS
        else "reference (tomgoldstein/loss-landscape)"
    )
    center = g.center_index()
    cell = np.unravel_index(center, s.shape)
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    t.add_row("file", plain(s.path))
    t.add_row("layout", plain(layout))
    t.add_row("grid", f"{grid} ({kind})")
    pct = 100.0 * s.n_done / s.completed.size
    t.add_row("completed", f"{s.n_done}/{s.completed.size} ({pct:.0f}%)")
    if s.failed:
        k, error = min(s.failed.items())
        t.add_row(
            "failed",
            plain(f"{len(s.failed)} points; first at {fmt_point(g.point(k), g.ndim)}: {error}"),
        )
    prov = s.provenance
    for key in ("created", "updated", "tool_version", "device", "dir_type"):
        if getattr(prov, key):
            t.add_row(key.replace("_", " "), plain(getattr(prov, key)))
    if s.dir_file:
        t.add_row("directions", plain(s.dir_file))
    if prov.dir_hash:
        t.add_row("directions hash", plain(prov.dir_hash))
    t.add_row("center", f"{fmt_point(g.point(center), g.ndim)}, the grid point nearest 0")
    with user_errors(ctx):
        centre = read_centre(file) if s.layout == LAYOUT_OURS else None
    for key, text in centre_rows(centre):
        t.add_row(key, text)
    console.print(t)
    if layers:
        _layers(centre)
    st = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for col in ("surface", "min", "at", "max", "NaN/inf", "center"):
        st.add_column(col, justify="left" if col == "surface" else "right", no_wrap=True)
    for name, z in s.values.items():
        finite = np.isfinite(z)
        if finite.any():
            k = int(np.nanargmin(np.where(finite, z, np.nan)))
            lo, hi = f"{z.ravel()[k]:.5g}", f"{np.nanmax(np.where(finite, z, np.nan)):.5g}"
            at = ", ".join(f"{c:.3g}" for c in g.point(k)[: g.ndim])
        else:
            lo = hi = at = "-"
        bad = str(int((s.completed & ~finite).sum()))
        center_text = "unfinished" if not s.completed[cell] else f"{z[cell]:.5g}"
        st.add_row(name, lo, at, hi, bad, center_text)
    console.print(st)
    if "max_eig" in s.values:
        from engine.formats import read_spectrum
        from tui_landscape.cli.hessian import map_lines

        with user_errors(ctx):
            spectrum = read_spectrum(file) if s.layout == LAYOUT_OURS else None
        for line in map_lines(s, spectrum):
            console.print(line, highlight=False, markup=False)
    loss = next((n for n in s.values if n.endswith("_loss")), None)
    if loss is not None and np.isfinite(s.values[loss]).any():
        sh = sharpness(
            s.x, s.y, s.values[loss], margin=margin, radius=radius, fit_radius=fit_radius
        )
        partial = (
            f", of the finished points only ({s.n_done}/{s.completed.size})"
            if s.n_done < s.completed.size
            else ""
        )
        console.print(f"sharpness of {loss} (docs/sharpness.md){partial}:", highlight=False)
        for line in format_sharpness(sh):
            console.print(f"  {line}", highlight=False)


def centre_rows(centre: dict[str, object] | None) -> list[tuple[str, str]]:
    """``info``'s rows for the ``centre`` group: the directions' norms relative to the weights
    and, for an automatic range, the loss at the centre and the level that set the range."""
    if not centre:
        return []
    rows = []
    ratios = list(centre.get("dir_norm_ratio", []))  # type: ignore[call-overload]
    if ratios:
        text = ", ".join(f"|d{a}|/|w| {r:.4g}" for a, r in zip("xy", ratios, strict=False))
        rows.append(("direction norms", f"{text} (over the moved tensors; --layers: per tensor)"))
    if "loss" in centre:
        probes = centre.get("auto_probes")
        n = 0 if probes is None else len(probes)  # type: ignore[arg-type]
        rows.append((
            "auto range",
            f"{centre.get('loss_name', 'loss')} {centre['loss']:.5g} at the centre; each axis "
            f"to where it reaches {centre.get('auto_threshold', float('nan')):.5g} "
            f"(3x + 1, docs/numbers.md), {n} probes",
        ))  # fmt: skip
    return rows


def _layers(centre: dict[str, object] | None) -> None:
    """Each moved tensor's direction norm over its weights' norm (x, and y for 2D)."""
    from rich import box
    from rich.table import Table

    from tui_landscape.safe import plain

    if not centre or "tensor_names" not in centre:
        console.print("no per-tensor norms stored (a file from an older version, or another "
                      "tool's)", highlight=False)  # fmt: skip
        return
    names = str(centre["tensor_names"]).split("\n")
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    t.add_column("tensor", overflow="fold")
    cols = [a for a in "xy" if f"tensor_ratio_{a}" in centre]
    for a in cols:
        t.add_column(f"|d{a}|/|w|", justify="right")
    for i, name in enumerate(names):
        t.add_row(plain(name), *(f"{centre[f'tensor_ratio_{a}'][i]:.4g}" for a in cols))
    console.print(t)
