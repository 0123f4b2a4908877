"""``tui-landscape plot FILE.h5``: draw a surface in the terminal, or export it to a file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from engine.errors import ConfigError
from engine.formats import read_surface, read_trajectory
from engine.sharpness import format_sharpness, sharpness
from tui_landscape.cli.common import console, err_console, user_errors
from tui_landscape.plots.terminal import parse_levels
from tui_landscape.plots.views import render, surface_values

EXPORT_KINDS = ("auto", "contour", "filled", "heatmap", "surface3d", "ratio", "curve")

SurfaceOpt = Annotated[
    str, typer.Option("--surface", "-s", help="train_loss, train_acc, test_loss, test_acc, ratio.")
]
KindOpt = Annotated[str, typer.Option("--kind", "-k", help=f"One of {', '.join(EXPORT_KINDS)}.")]
LevelsOpt = Annotated[
    str | None,
    typer.Option("--levels", help="'vmin:vmax:step' (the reference's form) or a count."),
]
LogOpt = Annotated[bool, typer.Option("--log", help="Log scale.")]
WidthOpt = Annotated[
    int, typer.Option("--width", min=0, help="Columns (default: the terminal's, 0).")
]
HeightOpt = Annotated[int, typer.Option("--height", min=8, help="Rows.")]
ExportOpt = Annotated[
    Path | None,
    typer.Option("--export", "-e", help="Write a figure: .png, .svg, .pdf (matplotlib) or .vtp."),
]
DpiOpt = Annotated[int, typer.Option("--dpi", min=10, max=2400, help="Resolution of --export.")]
MarginOpt = Annotated[
    float, typer.Option("--margin", min=0.0, help="Basin width: loss within min + margin.")
]
RadiusOpt = Annotated[
    float, typer.Option("--radius", min=0.0, help="Mean loss increase within this radius.")
]


def terminal_width(width: int) -> int:
    return width or max(40, min(shutil.get_terminal_size((100, 30)).columns, 160))


def plot(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Surface file (.h5), ours or the reference's.")],
    surface: SurfaceOpt = "train_loss",
    kind: KindOpt = "auto",
    levels: LevelsOpt = None,
    log: LogOpt = False,
    width: WidthOpt = 0,
    height: HeightOpt = 24,
    path: Annotated[
        Path | None,
        typer.Option(
            "--path", help="Projected training path (proj_xcoord, proj_ycoord) to overlay."
        ),
    ] = None,
    export: ExportOpt = None,
    dpi: DpiOpt = 150,
    zmax: Annotated[
        float, typer.Option("--zmax", help=".vtp: clip values above this (> 0).")
    ] = -1.0,
    interp: Annotated[int, typer.Option("--interp", help=".vtp: upsample to N x N points.")] = -1,
    ascii_: Annotated[bool, typer.Option("--ascii", help=".vtp: ASCII instead of binary.")] = False,
    margin: MarginOpt = 0.1,
    radius: RadiusOpt = 0.25,
) -> None:
    """Draw a surface (contour, filled, heat map, 1D curve, eigenvalue ratio, training path).

    Unfinished and failed points are drawn as missing. With --export the figure is written to
    a file instead; the sharpness numbers of loss surfaces are printed below the plot.
    """
    with user_errors(ctx):
        if kind not in EXPORT_KINDS:
            raise ConfigError(
                f"Expected `--kind` to be one of {', '.join(EXPORT_KINDS)}, got {kind!r}."
            )
        s = read_surface(file)
        lv = parse_levels(levels)
        traj = read_trajectory(path, s) if path else None
        if export is not None:
            out = _export(s, surface, kind, lv, log, export, dpi, zmax, interp, ascii_, traj)
            console.print(f"Wrote {out}", highlight=False)
            return
        if kind == "surface3d":
            raise ConfigError("`--kind surface3d` is for --export only")
        if s.y is None and kind not in ("auto", "curve", "ratio"):
            err_console.print(f"note: {file} is a 1D surface; drawn as a curve", highlight=False)
        text = render(
            s,
            surface,
            kind,
            levels=lv,
            log=log,
            width=terminal_width(width),
            height=height,
            color=console.is_terminal,
            trajectory=traj,
        )
        typer.echo(text)
        if surface.endswith("_loss") and kind != "ratio":
            z = surface_values(s, surface)
            try:
                sh = sharpness(s.x, s.y, z, margin=margin, radius=radius)
            except Exception:  # no finite point yet: the plot says so already
                return
            for line in format_sharpness(sh):
                typer.echo(line)


def _export(s, name, kind, levels, log, out: Path, dpi, zmax, interp, ascii_, traj) -> Path:
    """The figure for ``--export``; the format comes from the suffix."""
    z = surface_values(s, "ratio" if kind == "ratio" else name)
    if out.suffix == ".vtp":
        from engine.vtp import write_vtp

        write_vtp(out, s.x, s.y, z, zmax=zmax, log=log, interp=interp, binary=not ascii_, name=name)
        return out
    from tui_landscape.plots import export as ex

    lv = None if levels is None or isinstance(levels, int) else list(levels)
    if s.y is None or kind == "curve":
        left = {n: v for n, v in s.values.items() if n.endswith("_loss")} or {name: z}
        right = {n: v for n, v in s.values.items() if n.endswith("_acc")} or None
        if s.y is not None:
            left, right = {name: z[z.shape[0] // 2]}, None
        return ex.export_curve(out, s.x, left, right, title=s.path.name, dpi=dpi, log=log)
    if traj is not None:
        return ex.export_path(
            out,
            s.x,
            s.y,
            z,
            traj.x,
            traj.y,
            explained=traj.explained or (float("nan"),) * 2,
            levels=lv,
            title=f"{s.path.name}: {name}",
            dpi=dpi,
        )
    k = "contour" if kind == "auto" else kind
    return ex.export_surface(
        out, s.x, s.y, z, kind=k, levels=lv, log=log, title=f"{s.path.name}: {name}", dpi=dpi
    )
