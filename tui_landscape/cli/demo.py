"""``tui-landscape demo``: a real loss landscape on the embedded digits data, in a minute."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from engine.config import load_config
from engine.formats import read_surface
from engine.recipes import cache_dir
from engine.run import prepare
from tui_landscape.cli.common import console, print_summary, run_with_progress, user_errors
from tui_landscape.plots.terminal import contour_map, curve_plot

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
        s2 = read_surface(out / "demo_2d.h5")
        z = s2.values["train_loss"]
        finite = z[np.isfinite(z)]
        # Losses span decades around a minimum: log-spaced levels show the basin and the walls.
        levels = np.geomspace(max(finite.min(), 1e-3) * 2, finite.max() * 0.9, 8)
        console.print()
        typer.echo(
            contour_map(
                s2.x,
                s2.y,
                z,
                levels=levels,
                width=width,
                height=26,
                title="train loss, 2D (filter-normalized)",
                xlabel="x",
                ylabel="y",
            )
        )
        s1 = read_surface(out / "demo_1d.h5")
        console.print()
        typer.echo(
            curve_plot(
                s1.x,
                {"train loss": s1.values["train_loss"], "test loss": s1.values["test_loss"]},
                {"train acc": s1.values["train_acc"], "test acc": s1.values["test_acc"]},
                width=width,
                height=18,
                title="1D slice along x",
                xlabel="x",
            )
        )
        console.print(
            f"\nNext: [bold]tui-landscape info {out / 'demo_2d.h5'}[/], or "
            "[bold]tui-landscape compute sample_configs/digits_2d.toml[/].",
            highlight=False,
        )
