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

    The table gives, per file, the minimum and where it is, the curvature at the minimum along
    each axis (quadratic fit), the basin's width (loss within min + margin) and the mean loss
    increase within a radius of the minimum (docs/sharpness.md).
    """
    labels = _study_members(ctx, files, factor, member, stage)
    if labels:
        files = list(labels)
    from engine.formats import read_surface
    from tui_landscape.plots.spec import parse_levels, require_one_ndim, resolve_compare
    from tui_landscape.plots.terminal import draw

    with user_errors(ctx):
        if len(files) < 2:
            raise ConfigError("compare needs two or more surface files")
        surfaces = [read_surface(f) for f in files]
        lv = parse_levels(levels)
        if diff:  # one map of B - A instead of the side-by-side maps and their table
            from tui_landscape.cli.compare_diff import show_difference

            show_difference(surfaces, surface, kind, lv, log, export, dpi, width, height)
            return
        require_one_ndim(surfaces)  # before the grid note, which would contradict it
        grids_differ = _note_grids(surfaces)
        if export is not None:
            out = _export(surfaces, surface, kind, lv, log, export, dpi, labels)
            console.print(f"Wrote {out}", highlight=False)
        else:
            specs = resolve_compare(surfaces, surface, kind, levels=lv, log=log)
            specs = _relabel(specs, surfaces, labels)
            for spec in specs:
                w = terminal_width(width)
                typer.echo(draw(spec, width=w, height=height, color=console.is_terminal))
        if surface.endswith("_loss"):
            _table(surfaces, surface, margin, radius, grids_differ, labels)


def _note_grids(surfaces: list[Surface]) -> bool:
    """Say where the files' grids (ranges or point counts) differ; True if they do."""
    specs = {s.path.name: s.grid for s in surfaces}
    differ = len({(g.x, g.y) for g in specs.values()}) > 1
    if differ:
        text = "; ".join(
            f"{n}: x {g.x.spec()}" + (f", y {g.y.spec()}" if g.y is not None else "")
            for n, g in specs.items()
        )
        console.print(
            f"note: the grids differ ({text}); one colour scale, own axes", highlight=False
        )
    return differ


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


def _table(
    surfaces: list[Surface],
    name: str,
    margin: float,
    radius: float,
    grids_differ: bool,
    labels: dict[Path, str] | None = None,
) -> None:
    import numpy as np
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from engine.errors import LandscapeError
    from engine.sharpness import format_number, sharpness
    from tui_landscape.plots.spec import surface_values
    from tui_landscape.safe import plain

    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    # The legend below says what r is: a short header leaves the numbers room at 80 columns.
    cols = ["file", "min", "at", "curv x", "curv y", "width x", "width y", "rise"]
    for c in cols:
        if c == "file":  # long names fold (past 16 characters); numbers never do
            longest = max(len(_name(s, labels)) for s in surfaces)
            t.add_column(c, overflow="fold", min_width=min(longest, 16))
        else:
            t.add_column(c, justify="right", no_wrap=True)
    rises: dict[str, float] = {}
    curvatures: dict[str, float] = {}
    for s in surfaces:
        try:
            sh = sharpness(s.x, s.y, surface_values(s, name), margin=margin, radius=radius)
        except LandscapeError as e:
            t.add_row(plain(_name(s, labels)), "-", "-", "-", "-", "-", "-", plain(e))
            continue
        axes = {a.axis: a for a in sh.axes}
        curv = [format_number(axes[k].curvature) if k in axes else "-" for k in "xy"]
        wid = [
            f"{axes[k].width:.3g}{'+' if axes[k].open_ended else ''}" if k in axes else "-"
            for k in "xy"
        ]
        at = ", ".join(f"{c:.3g}" for c in sh.min_coords)
        t.add_row(
            plain(_name(s, labels)), format_number(sh.min_value), at, *curv, *wid,
            format_number(sh.mean_increase),
        )  # fmt: skip
        key = (labels or {}).get(s.path, s.path.name)
        rises[key] = sh.mean_increase
        curvatures[key] = float(np.mean([a.curvature for a in sh.axes])) if sh.axes else np.nan
    # Piped output (logs, CI) is not bound to 80 columns: every number stays on the line.
    (console if console.is_terminal else Console(width=140, emoji=False)).print(t)
    console.print(
        f"curv: second derivative at the minimum (quadratic fit); width: the span where {name} "
        f"<= min + {margin:g} ('+': it reaches the grid's edge); rise: mean increase of {name} "
        f"within r={radius:g} of the minimum (docs/sharpness.md)",
        highlight=False,
    )
    verdict = _verdict(rises, curvatures, radius)
    caveats = []
    if grids_differ:
        # The numbers depend on the grid (the points inside r, the fit's steps, the edges).
        caveats.append("the grids differ: not measured alike")
    partial = [_name(s, labels) for s in surfaces if s.n_done < s.completed.size]
    if partial:  # the minimum and the fits are of the finished points only
        caveats.append(f"not complete: {', '.join(partial)}")
    if caveats:
        verdict += f" (but {'; '.join(caveats)})"
    console.print(verdict, highlight=False)


def _name(s: Surface, labels: dict[Path, str] | None = None) -> str:
    """A file's name (a study member's label), with how far it is where it is not complete:
    its numbers are of the finished points only."""
    total = s.completed.size
    name = (labels or {}).get(s.path, s.path.name)
    return name if s.n_done == total else f"{name} ({100 * s.n_done / total:.0f}%)"


def _verdict(rises: dict[str, float], curvatures: dict[str, float], radius: float) -> str:
    """Which file is sharpest: by the mean rise, else by the mean curvature; ties said so."""
    import numpy as np

    for values, what in ((rises, f"mean rise within r={radius:g}"), (curvatures, "mean curvature")):
        finite = {k: v for k, v in values.items() if np.isfinite(v)}
        if len(finite) < 2:
            continue
        order = sorted(finite, key=finite.get, reverse=True)
        hi, lo = finite[order[0]], finite[order[-1]]
        if np.isclose(hi, lo, rtol=1e-9, atol=0.0):
            return f"no difference in {what}: {', '.join(order)} tie"
        return f"sharpest by {what}: {order[0]}; flattest: {order[-1]}"
    return (
        "sharpest: not measurable (too few finite numbers; try a finer grid or a larger --radius)"
    )


def _export(surfaces, name, kind, levels, log, out: Path, dpi, labels=None) -> Path:
    from tui_landscape.plots import export as ex
    from tui_landscape.plots.spec import resolve_compare

    if out.suffix == ".vtp":
        raise ConfigError("compare exports .png, .svg or .pdf; export .vtp from `plot`")
    specs = resolve_compare(surfaces, name, kind, levels=levels, log=log, figure=True)
    return ex.export_specs(out, _relabel(specs, surfaces, labels or {}), dpi=dpi)
