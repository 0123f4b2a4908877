"""``tui-landscape demo``: a real loss landscape on the embedded digits data, in a minute."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from tui_landscape.cli.common import console, print_summary, run_with_progress, user_errors

RECIPE = "recipe:digits_cnn"
BASE = [f"model.checkpoint={RECIPE}", "model.arch=digits_cnn", "directions.seed=0"]


def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the surface files.")] = Path(
        "tui-landscape-demo"
    ),
    points: Annotated[
        int, typer.Option(min=2, max=201, help="Grid points per axis of the 2D surface.")
    ] = 21,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Recompute surfaces already in --out.")
    ] = False,
) -> None:
    """Train a small CNN on digits (once, cached), compute a 2D and a 1D surface, plot them."""
    from engine.config import load_config
    from engine.formats import read_surface
    from engine.recipes import cache_dir  # torch: only where a command computes
    from engine.run import prepare
    from tui_landscape.plots.spec import resolve
    from tui_landscape.plots.terminal import draw

    with user_errors(ctx):
        out.mkdir(parents=True, exist_ok=True)
        console.print(
            f"Model: digits_cnn trained on the embedded digits data ({RECIPE}, cached in "
            f"{cache_dir()}).",
            highlight=False,
        )
        runs = {
            "2d": [*BASE, f"grid.x=-1:1:{points}", f"grid.y=-1:1:{points}"],
            "1d": [*BASE, "grid.x=-1:1:41"],
        }
        for name, sets in runs.items():
            cfg = load_config(None, sets)
            path = out / f"demo_{name}.h5"
            console.print(
                f"\n[bold]{name.upper()} surface[/] along filter-normalized random "
                f"directions (seed 0) → {path}",
                highlight=False,
            )
            job = prepare(cfg, path, overwrite=overwrite)
            summary = run_with_progress(job, f"demo {name}")
            print_summary(summary, job.grid.ndim)
        width = max(40, min(shutil.get_terminal_size((100, 30)).columns, 100))
        # Piped, echo strips the colours: the plots are drawn without them (a marker per series).
        color = console.is_terminal
        # The same plots as `tui-landscape plot` of these files (levels and all).
        s2 = read_surface(out / "demo_2d.h5")
        console.print()
        title = "train loss, 2D (filter-normalized)"
        typer.echo(
            draw(resolve(s2, "train_loss", title=title), width=width, height=26, color=color)
        )
        s1 = read_surface(out / "demo_1d.h5")
        console.print()
        spec = resolve(s1, "train_loss", title="1D slice along x")
        typer.echo(draw(spec, width=width, height=18, color=color))
        console.print(
            f"\nNext: [bold]tui-landscape info {out / 'demo_2d.h5'}[/], or "
            "[bold]tui-landscape compute sample_configs/digits_2d.toml[/].",
            highlight=False,
        )
