"""``tui-landscape train CONFIG``: train a model and write per-epoch checkpoints."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tui_landscape.cli.common import ConfigArg, SetOption, console, user_errors

if TYPE_CHECKING:
    from engine.train import EpochResult, Training


def train(
    ctx: typer.Context,
    config: ConfigArg,
    set_: SetOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Run folder (default: the key train.out, else runs/<config name>)."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in the folder from its last epoch.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Start again in a folder that holds a run.")
    ] = False,
) -> None:
    """Train [model] on [data] with [train]; writes model_{epoch}.pt, metrics.csv, config.toml."""
    from engine.config import load_config
    from engine.devices import resolve_device  # torch: only where a command computes
    from engine.train import run_folder, train_run

    with user_errors(ctx):
        cfg = load_config(config, set_ or [])
        run_dir = out or run_folder(cfg, config)
        device = resolve_device(cfg.compute.device)
        tc = cfg.train
        progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("batches"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        task = progress.add_task("train", total=1, epoch=1)

        def on_start(t: Training) -> None:
            where = f"resuming after epoch {t.done}" if t.done else "starting"
            console.print(
                f"Training {cfg.model.arch} on {cfg.data.dataset} ({where}; {tc.epochs} epochs, "
                f"{tc.optimizer}, batch {tc.batch_size}, lr {tc.lr:g}, wd {tc.weight_decay:g}, "
                f"device {device}) → {run_dir}",
                highlight=False,
            )
            progress.reset(task, total=math.ceil(len(t.train) / tc.batch_size), epoch=t.done + 1)

        def on_batch(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        def on_epoch(r: EpochResult) -> None:
            console.print(
                f"epoch {r.epoch:>4}/{tc.epochs}  lr {r.lr:.4g}  train loss {r.train_loss:.4f} "
                f"acc {r.train_acc:6.2f}%  test loss {r.test_loss:.4f} acc {r.test_acc:6.2f}%  "
                f"{r.seconds:.1f} s",
                highlight=False,
            )
            progress.reset(task, epoch=r.epoch + 1)

        try:
            with progress:
                train_run(
                    cfg,
                    run_dir,
                    device,
                    resume=resume,
                    overwrite=overwrite,
                    on_start=on_start,
                    on_epoch=on_epoch,
                    on_batch=on_batch,
                )
        except KeyboardInterrupt:
            console.print(
                f"Interrupted; finished epochs are saved in {run_dir}. "
                "Continue with the same command and --resume.",
                highlight=False,
            )
            raise typer.Exit(130) from None
        console.print(
            f"Done: checkpoints model_0.pt .. model_{tc.epochs}.pt and metrics.csv in {run_dir}",
            highlight=False,
        )
