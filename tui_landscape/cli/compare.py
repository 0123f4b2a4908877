"""``tui-landscape compare A.h5 B.h5 ...``: minimizers side by side on one scale, with numbers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.errors import ConfigError
from tui_landscape.cli.common import console, user_errors
from tui_landscape.cli.plot import (
    DpiOpt,
    ExportOpt,
    FitRadiusOpt,
    HeightOpt,
    KindOpt,
    LevelsOpt,
    LogOpt,
    MarginOpt,
    MemberOpt,
    RadiusOpt,
    StageOpt,
    SurfaceOpt,
    WidthOpt,
    terminal_width,
)

if TYPE_CHECKING:
    from engine.formats import Surface
    from tui_landscape.comparison import Comparison

# numpy, h5py and plotext are imported where the command runs, not here: every command's
# module is imported for `--help` (benchmarks/bench_startup.py).


def compare(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(help="Two or more surface files, or one study folder.")
    ],
    surface: SurfaceOpt = "train_loss",
    kind: KindOpt = "auto",
    levels: LevelsOpt = None,
    log: LogOpt = False,
    width: WidthOpt = 0,
    height: HeightOpt = 20,
    export: ExportOpt = None,
    dpi: DpiOpt = 150,
    margin: MarginOpt = 0.1,
    radius: RadiusOpt = 0.25,
    fit_radius: FitRadiusOpt = 0.35,
    diff: Annotated[
        bool,
        typer.Option(
            "--diff",
            help="Draw B - A of two files over the same grid and directions (docs/cli.md).",
        ),
    ] = False,
    factor: Annotated[
        str | None,
        typer.Option(
            "--factor",
            help="A study folder: compare the members where only this factor varies (the "
            "group of --member, else of the first member that reached a minimizer).",
        ),
    ] = None,
    member: MemberOpt = None,
    stage: StageOpt = None,
) -> None:
    """Draw several surfaces on one colour scale and one set of levels, and say which is sharper.

    Notes first say what makes the files differ (grids, directions, points that are not
    finite, files not complete). The table gives, per file, the minimum and where it is, the
    curvature at the minimum along each axis (a quadratic fitted within --fit-radius), the
    basin's width (loss within min + margin) and the mean loss increase within a radius of the
    minimum (docs/sharpness.md). --diff draws B - A of two files instead; a study folder with
    --factor compares its members where only that factor varies.
    """
    labels = _study_members(ctx, files, factor, member, stage)
    if labels:
        files = list(labels)
    from engine.formats import read_surface
    from engine.sharpness import check_options
    from tui_landscape.comparison import compare_surfaces
    from tui_landscape.plots.spec import parse_levels, require_one_ndim, resolve_compare
    from tui_landscape.plots.terminal import draw

    with user_errors(ctx):
        if len(files) < 2:
            raise ConfigError("compare needs two or more surface files")
        check_options(margin, radius, fit_radius=fit_radius)
        surfaces = [read_surface(f) for f in files]
        lv = parse_levels(levels)
        if diff:  # one map of B - A instead of the side-by-side maps and their table
            from tui_landscape.cli.compare_diff import show_difference

            show_difference(surfaces, surface, kind, lv, log, export, dpi, width, height)
            return
        require_one_ndim(surfaces)  # before the notes, which would contradict it
        result = compare_surfaces(
            surfaces, surface, margin=margin, radius=radius, fit_radius=fit_radius,
            labels=labels,
        )  # fmt: skip
        for warning in result.warnings:
            console.print(f"note: {warning}", highlight=False, markup=False)
        if export is not None:
            out = _export(surfaces, surface, kind, lv, log, export, dpi, labels)
            console.print(f"Wrote {out}", highlight=False)
        else:
            specs = resolve_compare(surfaces, surface, kind, levels=lv, log=log)
            specs = _relabel(specs, surfaces, labels)
            for spec in specs:
                w = terminal_width(width)
                typer.echo(draw(spec, width=w, height=height, color=console.is_terminal))
        if surface.endswith("_loss"):  # the numbers of a loss around its minimizer
            _table(result, margin, radius, fit_radius)
        console.print(result.verdict, highlight=False, markup=False)


def _study_members(
    ctx: typer.Context,
    files: list[Path],
    factor: str | None,
    member: str | None,
    stage: str | None,
) -> dict[Path, str]:
    """For one study folder: its members' files where only ``factor`` varies, with their
    labels (the members left out are named on stderr); else nothing (and the study options
    refused)."""
    from tui_landscape.cli.common import err_console
    from tui_landscape.studies import factor_members, is_study

    if len(files) != 1 or not is_study(files[0]):
        for flag, value in (("--factor", factor), ("--member", member), ("--stage", stage)):
            if value is not None:
                raise typer.BadParameter("is for a study folder", param_hint=flag)
        return {}
    with user_errors(ctx):
        paths, labels, left = factor_members(files[0], factor, stage, member)
    if left:
        who = ", ".join(f"{r.label} ({r.status if not r.ok else 'no such file'})" for r in left)
        err_console.print(f"note: left out (not compared as minimizers): {who}",
                          highlight=False, markup=False)  # fmt: skip
    return dict(zip(paths, labels, strict=True))


def _relabel(specs: list, surfaces: list[Surface], labels: dict[Path, str]) -> list:
    """The specs with the files named by their study labels, where they have them."""
    from tui_landscape.plots.views import relabel

    return relabel(specs, [labels.get(s.path, s.path.name) for s in surfaces]) if labels else specs


def _table(result: Comparison, margin: float, radius: float, fit_radius: float) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from engine.sharpness import format_number
    from tui_landscape.safe import plain

    name = result.surface
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    # The legend below says what r is: a short header leaves the numbers room at 80 columns.
    cols = ["file", "min", "at", "curv x", "curv y", "width x", "width y", "rise"]
    for c in cols:
        if c == "file":  # long names fold (past 16 characters); numbers never do
            longest = max(len(f.label) for f in result.files)
            t.add_column(c, overflow="fold", min_width=min(longest, 16))
        else:
            t.add_column(c, justify="right", no_wrap=True)
    for f in result.files:
        sh = f.sharpness
        if sh is None:
            t.add_row(plain(f.label), "-", "-", "-", "-", "-", "-", plain(f.error))
            continue
        axes = {a.axis: a for a in sh.axes}
        curv = [format_number(axes[k].curvature) if k in axes else "-" for k in "xy"]
        wid = [
            f"{axes[k].width:.3g}{'+' if axes[k].open_ended else ''}" if k in axes else "-"
            for k in "xy"
        ]
        at = ", ".join(f"{c:.3g}" for c in sh.min_coords)
        t.add_row(
            plain(f.label), format_number(sh.min_value), at, *curv, *wid,
            format_number(sh.mean_increase),
        )  # fmt: skip
    # Piped output (logs, CI) is not bound to 80 columns: every number stays on the line.
    (console if console.is_terminal else Console(width=140, emoji=False)).print(t)
    console.print(
        f"curv: second derivative at the minimum (quadratic fit within {fit_radius:g}); width: "
        f"the span where {name} <= min + {margin:g} ('+': it reaches the grid's edge); rise: "
        f"mean increase of {name} within r={radius:g} of the minimum (docs/sharpness.md)",
        highlight=False,
        markup=False,
    )


def _export(surfaces, name, kind, levels, log, out: Path, dpi, labels=None) -> Path:
    from tui_landscape.plots import export as ex
    from tui_landscape.plots.spec import resolve_compare

    if out.suffix == ".vtp":
        raise ConfigError("compare exports .png, .svg or .pdf; export .vtp from `plot`")
    specs = resolve_compare(surfaces, name, kind, levels=levels, log=log, figure=True)
    return ex.export_specs(out, _relabel(specs, surfaces, labels or {}), dpi=dpi)
