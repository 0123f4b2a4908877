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
from tui_landscape.report import fit

if TYPE_CHECKING:
    from engine.formats import Surface

# numpy, h5py and plotext are imported where the command runs, not here: every command's
# module is imported for `--help` (benchmarks/bench_startup.py).

# Without a writer for this long the watch ends: a run starting (importing torch, building its
# model and directions) takes its lock within seconds, a run that ended never does again.
WATCH_GRACE_SECONDS = 15.0
HOME, EOL, EOS = "\x1b[H", "\x1b[K", "\x1b[J"  # cursor home; clear to end of line, of screen

SurfaceOpt = Annotated[
    str,
    typer.Option(
        "--surface",  # no short form: -s is --set in every command that takes a config
        help="A surface the file holds: train_loss, train_acc, test_loss, test_acc, any other "
        "<split>_<metric> (train_abs_err), max_eig, min_eig; ratio (|min_eig / max_eig|); or "
        "convexity (a 2D train loss's own non-convexity, 0 where convex).",
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


MemberOpt = Annotated[
    str | None,
    typer.Option("--member", help="A study folder's member, as <label>-s<seed> (its folder)."),
]
StageOpt = Annotated[
    str | None,
    typer.Option("--stage", help="A study folder's stage file: surface_2d (default), surface_1d, "
                 "surface_2d_raw, hessian, pca..."),
]  # fmt: skip


def study_file(ctx: typer.Context, file: Path, member: str | None, stage: str | None) -> Path:
    """``file`` itself, or where ``file`` is a study folder the file of ``member``'s
    ``stage`` (a member that is not a minimizer is drawn, with a note that says so)."""
    from tui_landscape.studies import is_study, member_file

    if not is_study(file):
        for flag, value in (("--member", member), ("--stage", stage)):
            if value is not None:
                raise typer.BadParameter("is for a study folder", param_hint=flag)
        return file
    with user_errors(ctx):
        path, row = member_file(file, member, stage)
    # The plot's title names the file (surface_2d.h5, the same in every member): say whose.
    what = f"{row.label}: {path}" + ("" if row.ok else f" ({row.status}, not a minimizer)")
    err_console.print(what, highlight=False, markup=False)
    return path


def terminal_width(width: int) -> int:
    return width or max(40, min(shutil.get_terminal_size((100, 30)).columns, 160))


def plot(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="Surface file (.h5), ours or the reference's; or a study folder with --member."
        ),
    ],
    surface: SurfaceOpt = "train_loss",
    kind: KindOpt = "auto",
    levels: LevelsOpt = None,
    log: LogOpt = False,
    width: WidthOpt = 0,
    height: Annotated[
        int | None,
        typer.Option(
            "--height", min=8, help="Rows (default 24; with --watch on a terminal, the terminal's)."
        ),
    ] = None,
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
    member: MemberOpt = None,
    stage: StageOpt = None,
) -> None:
    """Draw a surface (contour, filled, heat map, 1D curve, eigenvalue ratio, training path),
    or a Hessian run's eigenvalue density at the center (--kind density).

    Unfinished and failed points are drawn as missing; on a Hessian map the points whose
    eigenvalues did not converge are marked '?' (and missing from the ratio), and the title
    says the worst residual and hessian.params. With --export the figure is written to a file
    instead; the sharpness numbers of loss surfaces are printed below the plot.
    """
    file = study_file(ctx, file, member, stage)
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

            def frame(s: Surface, cols: int, rows: int) -> tuple[str, list[str]]:
                """The plot sized to the terminal (``cols`` x ``rows``; 0: the options')."""
                traj = read_trajectory(path, s) if path else None
                w = width or (min(cols, 160) if cols else terminal_width(0))
                # The notes (sharpness, about 5 lines) share the rows with the plot.
                h = height or (max(8, rows - 6) if rows else 24)
                return _frame(s, surface, kind, lv, log, w, h, (margin, radius, fit_radius), traj)

            _watch(file, frame)
            return
        s = read_surface(file)
        traj = read_trajectory(path, s) if path else None
        if export is not None:
            out = _export(s, surface, kind, lv, log, export, dpi, zmax, interp, ascii_, traj)
            console.print(f"Wrote {out}", highlight=False)
            return
        _show(s, surface, kind, lv, log, width, height or 24, (margin, radius, fit_radius), traj)


def _show(s: Surface, surface, kind, lv, log, width, height, options, traj=None) -> None:
    """The plot of ``s`` on stdout, and the sharpness numbers of a loss below it
    (``options``: margin, radius and fit radius)."""
    if s.y is None and kind not in ("auto", "curve", "ratio", "density"):
        err_console.print(f"note: {s.path} is a 1D surface; drawn as a curve", highlight=False)
    plot, notes = _frame(s, surface, kind, lv, log, terminal_width(width), height, options, traj)
    typer.echo(plot)
    for line in notes:
        typer.echo(line)


def _frame(
    s: Surface, surface, kind, lv, log, width: int, height: int, options, traj=None
) -> tuple[str, list[str]]:
    """The drawn plot and the lines below it (a loss's sharpness numbers; ``options``: margin,
    radius and fit radius)."""
    from engine.sharpness import format_sharpness, sharpness
    from tui_landscape.plots.spec import surface_values
    from tui_landscape.plots.terminal import draw

    spec = _spec(s, surface, kind, lv, log, traj)
    plot = draw(spec, width=width, height=height, color=console.is_terminal)
    notes: list[str] = []
    if surface.endswith("_loss") and kind not in ("ratio", "density"):
        z = surface_values(s, surface)
        try:
            margin, radius, fit_radius = options
            sh = sharpness(s.x, s.y, z, margin=margin, radius=radius, fit_radius=fit_radius)
        except LandscapeError:  # no finite point yet: the plot says so already
            return plot, notes
        if s.n_done < s.completed.size:  # the fits may change as the rest arrives
            notes.append(f"sharpness of the finished points only ({s.n_done}/{s.completed.size}):")
        notes.extend(format_sharpness(sh))
    return plot, notes


def _watch_status(s: Surface, writing: bool, wrote: bool, width: int = 0) -> str:
    """The watch's first line: how far the file is, and whether a run still writes it; in
    ``width`` columns (0: as long as it is), the file's name cut in the middle."""
    pct = 100 * s.n_done / s.completed.size
    if writing:
        status = "running"
    elif wrote:
        status = "the run writing it has stopped"
    else:
        status = "no run is writing it"
    rest = f": {s.n_done}/{s.completed.size} points ({pct:.0f}%), {status}"
    name = str(s.path) if not width else fit(str(s.path), max(8, width - len(rest)), middle=True)
    return name + rest


def _redraw(status: str, plot: str, notes: list[str], cols: int) -> None:
    """One frame in place: from the top-left corner, each line cleared to its end, the rest
    of the screen cleared, so a frame never scrolls the last one away; the notes cut to
    ``cols`` (a wrapped line would push the frame past the screen's last row)."""
    lines = [status, *plot.splitlines(), *(fit(n, cols) for n in notes)]
    sys.stdout.write(HOME + "".join(f"{line}{EOL}\n" for line in lines) + EOS)
    sys.stdout.flush()


def _watch(file: Path, draw_frame: Callable[[Surface, int, int], tuple[str, list[str]]]) -> None:
    """Draw ``file`` each time points arrive (looking about once a second, ``runs.Watch``)
    until it is complete; Ctrl-C ends it (exit 130) with the finished points kept on disk.

    On a terminal each drawing replaces the last in place, sized to the terminal with the
    status line on top (so it stays in sight at 24 rows); in a pipe each is printed after the
    last, status line last. The status says when the run writing the file has stopped.
    """
    from engine.formats import lock_holder, read_surface
    from tui_landscape import runs

    w, shown, last_writer = runs.Watch(file), None, time.monotonic()
    wrote = False  # a run was seen writing the file
    size = None
    try:
        while True:
            writing = lock_holder(file) is not None
            if writing:
                last_writer, wrote = time.monotonic(), True
            now_size = shutil.get_terminal_size((100, 30)) if console.is_terminal else None
            changed = w.changed()
            if changed or (shown is not None and (shown[2] != writing or now_size != size)):
                try:
                    s = read_surface(file)
                except LandscapeError:
                    if not writing and file.exists():
                        raise  # there, no run writing it, and not a surface: say why at once
                    s = None  # not there yet, or being replaced: look again
                if s is not None:
                    state = (s.n_done, len(s.failed), writing)
                    if state != shown or now_size != size:
                        shown, size = state, now_size
                        if now_size is not None:
                            # One column spare: a full line would wrap on some terminals.
                            cols, rows = now_size.columns - 1, now_size.lines
                            status = _watch_status(s, writing, wrote, cols)
                            plot, notes = draw_frame(s, cols, max(8, rows - 2))
                            room = max(0, rows - 1 - len(plot.splitlines()) - 1)
                            _redraw(status, plot, notes[:room], cols)
                        else:
                            status = _watch_status(s, writing, wrote)
                            plot, notes = draw_frame(s, 0, 0)
                            typer.echo(plot)
                            for line in notes:
                                typer.echo(line)
                            typer.echo(status)
                    if s.n_done == s.completed.size:
                        return
            if not writing and time.monotonic() - last_writer > WATCH_GRACE_SECONDS:
                grace = f"{WATCH_GRACE_SECONDS:.0f} s"
                if not file.exists():
                    raise ConfigError(f"{file} does not exist and no run has started it in {grace}")
                raise LandscapeError(
                    f"{file} is incomplete and no run has written it for {grace}; "
                    f"continue it: tui-landscape compute --resume {file}"
                )
            time.sleep(runs.WATCH_SECONDS)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _spec(s: Surface, name, kind, levels, log, traj, figure: bool = False):
    """What ``plot`` draws: surface ``name`` of ``s`` as ``kind``, or the file's eigenvalue
    density (``--kind density``, from its spectrum)."""
    from tui_landscape.plots.kinds import SPECTRUM_KINDS
    from tui_landscape.plots.spec import resolve

    if kind in SPECTRUM_KINDS:
        from engine.formats import LAYOUT_OURS, read_spectrum
        from tui_landscape.plots.density import density_spec

        spectrum = read_spectrum(s.path) if s.layout == LAYOUT_OURS else None
        return density_spec(spectrum, s.path, log=log)
    return resolve(s, name, kind, levels=levels, log=log, trajectory=traj, figure=figure)


def _export(s, name, kind, levels, log, out: Path, dpi, zmax, interp, ascii_, traj) -> Path:
    """The figure for ``--export``; the format comes from the suffix."""
    from tui_landscape.plots.kinds import SPECTRUM_KINDS
    from tui_landscape.plots.spec import surface_values

    if out.suffix == ".vtp":
        if kind in SPECTRUM_KINDS:
            raise ConfigError(f"`--kind {kind}` is a curve: export it as .png, .svg or .pdf")
        z = surface_values(s, "ratio" if kind == "ratio" else name)
        from engine.vtp import write_vtp

        write_vtp(out, s.x, s.y, z, zmax=zmax, log=log, interp=interp, binary=not ascii_, name=name)
        return out
    from tui_landscape.plots import export as ex

    spec = _spec(s, name, kind, levels, log, traj, figure=True)
    return ex.export_spec(out, spec, dpi=dpi)
