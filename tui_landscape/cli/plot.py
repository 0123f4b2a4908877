"""``tui-landscape plot FILE.h5``: draw a surface in the terminal, or export it to a file."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.errors import ConfigError, LandscapeError
from tui_landscape.cli.common import console, err_console, user_errors
from tui_landscape.plots.kinds import KINDS

if TYPE_CHECKING:
    from engine.formats import Surface

# numpy, h5py and plotext are imported where the command runs, not here: every command's
# module is imported for `--help` (benchmarks/bench_startup.py).

# Without a writer for this long the watch ends: a run starting (importing torch, building its
# model and directions) takes its lock within seconds, a run that ended never does again.
WATCH_GRACE_SECONDS = 15.0
CLEAR = "\x1b[H\x1b[2J"  # home, clear: each drawing replaces the last on a terminal

SurfaceOpt = Annotated[
    str,
    typer.Option(
        "--surface",  # no short form: -s is --set in every command that takes a config
        help="A surface the file holds: train_loss, train_acc, test_loss, test_acc, any other "
        "<split>_<metric> (train_abs_err), max_eig, min_eig; or ratio (|min_eig / max_eig|).",
    ),
]
KindOpt = Annotated[str, typer.Option("--kind", "-k", help=f"One of {', '.join(KINDS)}.")]
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
# The default is engine.sharpness.FIT_RADIUS (a test checks), spelt here: the engine imports
# numpy, and `--help` imports no numpy.
FitRadiusOpt = Annotated[
    float,
    typer.Option(
        "--fit-radius",
        min=0.0,
        help="Curvature: a quadratic fitted within this distance of the minimum.",
    ),
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
    fit_radius: FitRadiusOpt = 0.35,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Follow a surface being computed: draw again as points arrive, end (0) when "
            "it is complete, or (1) when no run has written it for a while.",
        ),
    ] = False,
) -> None:
    """Draw a surface (contour, filled, heat map, 1D curve, eigenvalue ratio, training path).

    Unfinished and failed points are drawn as missing. With --export the figure is written to
    a file instead; the sharpness numbers of loss surfaces are printed below the plot.
    """
    if watch and export is not None:
        raise typer.BadParameter("draws in the terminal; leave out --export", param_hint="--watch")
    from engine.formats import read_surface, read_trajectory
    from engine.sharpness import check_options
    from tui_landscape.plots.spec import check_kind, parse_levels

    with user_errors(ctx):
        check_kind(kind)
        check_options(margin, radius, fit_radius=fit_radius)
        lv = parse_levels(levels)
        if watch:

            def show(s: Surface) -> None:
                traj = read_trajectory(path, s) if path else None
                _show(s, surface, kind, lv, log, width, height, (margin, radius, fit_radius), traj)

            _watch(file, show)
            return
        s = read_surface(file)
        traj = read_trajectory(path, s) if path else None
        if export is not None:
            out = _export(s, surface, kind, lv, log, export, dpi, zmax, interp, ascii_, traj)
            console.print(f"Wrote {out}", highlight=False)
            return
        _show(s, surface, kind, lv, log, width, height, (margin, radius, fit_radius), traj)


def _show(s: Surface, surface, kind, lv, log, width, height, options, traj=None) -> None:
    """The plot of ``s`` on stdout, and the sharpness numbers of a loss below it
    (``options``: margin, radius and fit radius)."""
    from engine.sharpness import format_sharpness, sharpness
    from tui_landscape.plots.spec import resolve, surface_values
    from tui_landscape.plots.terminal import draw

    spec = resolve(s, surface, kind, levels=lv, log=log, trajectory=traj)
    if s.y is None and kind not in ("auto", "curve", "ratio"):
        err_console.print(f"note: {s.path} is a 1D surface; drawn as a curve", highlight=False)
    w = terminal_width(width)
    typer.echo(draw(spec, width=w, height=height, color=console.is_terminal))
    if surface.endswith("_loss") and kind != "ratio":
        z = surface_values(s, surface)
        try:
            margin, radius, fit_radius = options
            sh = sharpness(s.x, s.y, z, margin=margin, radius=radius, fit_radius=fit_radius)
        except LandscapeError:  # no finite point yet: the plot says so already
            return
        if s.n_done < s.completed.size:  # the fits may change as the rest arrives
            typer.echo(f"sharpness of the finished points only ({s.n_done}/{s.completed.size}):")
        for line in format_sharpness(sh):
            typer.echo(line)


def _watch(file: Path, show: Callable[[Surface], None]) -> None:
    """Draw ``file`` each time points arrive (looking about once a second, ``runs.Watch``)
    until it is complete; Ctrl-C ends it (exit 130) with the finished points kept on disk."""
    from engine.formats import lock_holder, read_surface
    from tui_landscape import runs

    w, shown, last_writer = runs.Watch(file), None, time.monotonic()
    try:
        while True:
            writing = lock_holder(file) is not None
            if writing:
                last_writer = time.monotonic()
            if w.changed():
                try:
                    s = read_surface(file)
                except LandscapeError:
                    if not writing and file.exists():
                        raise  # there, no run writing it, and not a surface: say why at once
                    s = None  # not there yet, or being replaced: look again
                if s is not None:
                    state = (s.n_done, len(s.failed))
                    if state != shown:
                        shown = state
                        if console.is_terminal:
                            sys.stdout.write(CLEAR)
                        show(s)
                        pct = 100 * s.n_done / s.completed.size
                        status = "running" if writing else "no run is writing it"
                        typer.echo(f"{s.path}: {s.n_done}/{s.completed.size} points "
                                   f"({pct:.0f}%), {status}")  # fmt: skip
                    if s.n_done == s.completed.size:
                        return
            if not writing and time.monotonic() - last_writer > WATCH_GRACE_SECONDS:
                grace = f"{WATCH_GRACE_SECONDS:.0f} s"
                if not file.exists():
                    raise ConfigError(f"{file} does not exist and no run has started it in {grace}")
                raise LandscapeError(
                    f"{file} is not complete and no run has written it for {grace}; resume it "
                    f"with: tui-landscape compute CONFIG --out {file}"
                )
            time.sleep(runs.WATCH_SECONDS)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _export(s, name, kind, levels, log, out: Path, dpi, zmax, interp, ascii_, traj) -> Path:
    """The figure for ``--export``; the format comes from the suffix."""
    from tui_landscape.plots.spec import resolve, surface_values

    z = surface_values(s, "ratio" if kind == "ratio" else name)
    if out.suffix == ".vtp":
        from engine.vtp import write_vtp

        write_vtp(out, s.x, s.y, z, zmax=zmax, log=log, interp=interp, binary=not ascii_, name=name)
        return out
    from tui_landscape.plots import export as ex

    spec = resolve(s, name, kind, levels=levels, log=log, trajectory=traj, figure=True)
    return ex.export_spec(out, spec, dpi=dpi)
