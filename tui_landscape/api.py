"""The Python API: ``import tui_landscape as tl`` in a notebook or a training script.

``tl.compute(model, train)`` computes a loss surface of a model in memory, ``tl.trajectory``
the surface on the PCA plane of its training path, ``tl.hessian`` the Hessian's extreme
eigenvalues at its weights. Each is ``engine.api`` plus a progress bar (``rich``: a terminal
or a Jupyter notebook); the conventions (what the stored config records, one process, the
model left as it came) are ``engine.api``'s docstring.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_landscape.report import fmt_rate

if TYPE_CHECKING:  # torch loads with the first call, not with `import tui_landscape`
    import torch
    from torch import nn

    from engine.api import DataLike, LossLike, RangeLike
    from engine.given import DirectionsLike
    from engine.run import Job, PointResult
    from tui_landscape.result import Result

__all__ = ["compute", "hessian", "interpolate", "study", "trajectory"]


@contextlib.contextmanager
def _quiet_torch() -> Any:
    """torch.func's internals warn about torch.jit.script on every call, as the CLI filters;
    only for the call, so the caller's own warning filters stay as they were."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        yield


class _Bar:
    """A rich progress bar over a job's points: done/total, points per second, ETA."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled, self.label = enabled, label
        self.progress = None

    def start(self, job: Job) -> Callable[[PointResult], None] | None:
        todo = job.total - job.done
        if not self.enabled or todo == 0:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        task = self.progress.add_task(self.label, total=job.total, completed=job.done, rate="")
        self.progress.start()
        t0, first = time.perf_counter(), job.done

        def on_point(r: PointResult) -> None:
            rate = fmt_rate(r.done - first, time.perf_counter() - t0)  # s/pt when slow
            self.progress.update(task, completed=r.done, rate=rate)

        return on_point

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def compute(
    model: nn.Module,
    train: DataLike,
    *,
    test: DataLike | None = None,
    loss: LossLike = None,
    x: RangeLike = "-1:1:51",
    y: RangeLike = None,
    out: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    directions: DirectionsLike = None,
) -> Result:
    """The loss surface of ``model`` around its own weights, as ``tui-landscape compute``.

    ``train`` / ``test``: a torch Dataset, a DataLoader or a tuple of tensors. ``loss``: a
    built-in name or ``fn(model, batch) -> {"loss": (B,), ...}``; None is cross-entropy.
    ``x`` / ``y``: 'min:max:num' or ``(min, max, num)`` (``y`` None: 1D). ``config``: dotted
    keys as ``--set`` takes them, e.g. ``{"directions.seed": 3}``. ``out``: an HDF5 file to
    write (and resume); None computes in a temporary folder. ``device``: default the model's
    own. The model is left as it came. Returns the grid and each surface by name
    (``surf["train_loss"]``).

    ``directions``: None for seeded random ones (``directions.*`` in ``config``); a second
    model (the line to it, 1D: see ``interpolate``); one direction as a state dict or a list of
    tensors in the model's order (1D), or a pair of them ``(dx, dy)`` (2D), used as given (not
    normalised); or a direction file's path.
    """
    from engine.api import compute_surface
    from tui_landscape.result import as_result

    with _quiet_torch(), _Bar(progress, "computing") as bar:
        return as_result(
            compute_surface(
                model,
                train,
                test=test,
                loss=loss,
                x=x,
                y=y,
                out=out,
                config=config,
                device=device,
                overwrite=overwrite,
                on_start=bar.start,
                directions=directions,
            )
        )


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module,
    train: DataLike,
    *,
    test: DataLike | None = None,
    loss: LossLike = None,
    x: RangeLike = "-0.5:1.5:41",
    out: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    overwrite: bool = False,
) -> Result:
    """The loss on the line between two models, f(a) = L(w_a + a (w_b - w_a)): ``model_a``
    at 0, ``model_b`` at 1 (Goodfellow et al.'s plot; the paper's Fig. 1 between a small- and
    a large-batch minimizer). With batch norm the running statistics move along too
    (``directions.type`` 'auto' gives 'states' under ``compute.bn`` = 'keep'). Both models come
    back as they came. The rest as ``compute``."""
    from engine.api import interpolate_surface
    from tui_landscape.result import as_result

    with _quiet_torch(), _Bar(progress, "interpolating") as bar:
        return as_result(
            interpolate_surface(
                model_a,
                model_b,
                train,
                test=test,
                loss=loss,
                x=x,
                out=out,
                config=config,
                device=device,
                overwrite=overwrite,
                on_start=bar.start,
            )
        )


def trajectory(
    model: nn.Module,
    checkpoints: str | Path | Sequence[str | Path],
    train: DataLike,
    *,
    test: DataLike | None = None,
    loss: LossLike = None,
    x: RangeLike = "auto",
    y: RangeLike = "auto",
    out: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    overwrite: bool = False,
) -> Result:
    """The surface on the PCA plane of a training path, as ``tui-landscape trajectory``.

    ``checkpoints``: a folder, a glob, or a list of files (in that order); the path ends at
    ``model``'s own weights (the origin). ``x`` / ``y``: 'auto' fits the grid to the path.
    The result also holds ``explained_variance`` (ratios of the two axes) and ``trajectory``
    (the checkpoints' (n, 2) coordinates). The rest as ``compute``.
    """
    from engine.api import trajectory_surface
    from tui_landscape.result import as_result

    with _quiet_torch(), _Bar(progress, "trajectory") as bar:
        return as_result(
            trajectory_surface(
                model,
                checkpoints,
                train,
                test=test,
                loss=loss,
                x=x,
                y=y,
                out=out,
                config=config,
                device=device,
                overwrite=overwrite,
                on_start=bar.start,
            )
        )


def hessian(
    model: nn.Module,
    data: DataLike,
    *,
    loss: LossLike = None,
    config: Mapping[str, Any] | None = None,
    trace_samples: int = 0,
    top_k: int | None = None,
    density_probes: int = 0,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """The Hessian's spectrum of the mean loss over ``data`` at the model's weights.

    Over ``hessian.params`` from ``config``: the default '2d' takes tensors with 2+ dims only,
    as the reference does, so biases and norm layers' weights are LEFT OUT (its lambda_max then
    differs from PyHessian's, which takes all); ``{"hessian.params": "all"}`` takes every one.
    The result says which (``params``, ``n``). Each eigenvalue is found to ``hessian.tol`` of
    itself: ``lambda_max``, ``lambda_min``, their residuals ``||Hv - lambda v||``
    (``lambda_max_residual``, ``lambda_min_residual``), ``converged``, and the ``top_k``
    largest (``top_k``, ``top_k_residual``; default ``hessian.top_k`` = 5). With
    ``trace_samples`` >= 2 Hutchinson's ``trace`` with its standard error ``trace_se`` and
    ``trace_probes``; with ``density_probes`` >= 1 the eigenvalue density by stochastic Lanczos
    quadrature: ``density`` on ``density_grid`` (Gaussians of width ``density_sigma``) and its
    quadrature ``slq_nodes`` and ``slq_weights`` (one row per probe)."""
    from engine.api import hessian_at

    with _quiet_torch():
        return hessian_at(
            model,
            data,
            loss=loss,
            config=config,
            trace_samples=trace_samples,
            top_k=top_k,
            density_probes=density_probes,
            device=device,
        )


def study(
    study_file: str | Path,
    out: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) a study file, as ``tui-landscape study``, and write its report
    (``report.md``); returns its table (the ``table.json`` object: ``rows`` with each member's
    status and measures).

    ``out``: the study folder (default: the study file's name in the working directory).
    ``overrides``: 'key=value' as ``--set`` takes them (``"seeds=[0]"``,
    ``"base.set.train.epochs=2"``). ``docs/studies.md`` describes the file and the folder.
    """
    from engine.study import load_study, run_study
    from tui_landscape.study_report import write_report

    s = load_study(study_file, overrides)
    folder = Path(out) if out is not None else Path(Path(study_file).stem)
    if not progress:
        table = run_study(s, folder, overwrite=overwrite).table
        write_report(folder)
        return table
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("[bold]study"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[what]}"),
    ) as bar:
        task = bar.add_task("study", total=None, what="")

        def on_event(e: Any) -> None:
            done = e.index + (e.kind in ("end", "skip", "fail"))
            bar.update(task, total=e.total, completed=done, what=e.task.label)

        table = run_study(s, folder, overwrite=overwrite, on_event=on_event).table
    write_report(folder)
    return table
