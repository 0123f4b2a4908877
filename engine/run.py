"""Computing a surface: prepare everything, then evaluate the unfinished grid points.

``prepare`` validates the whole setup (model, checkpoint, data, directions, output)
before it writes anything, so a bad input never leaves a file behind; the returned
``Job`` evaluates points in flat-index order, records them, and flushes finished
points to the file at least every ``compute.flush_seconds``. Running the same
config against the same output again resumes: only unfinished points are computed.

What is evaluated is built in ``engine.build`` (model, directions, grid) and evaluated by
``engine.landscape``; where is decided in ``engine.devices``; the file is ``engine.formats``'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.autobatch import BatchChoice
from engine.autorange import auto_grid, direction_ratios
from engine.build import load_model, make_directions, preflight
from engine.config import Config, auto_points, config_to_toml
from engine.data import load_splits
from engine.devices import resolve_device, worker_devices
from engine.directions import DirectionSet
from engine.errors import ConfigError, LandscapeError, describe
from engine.formats import (
    LAYOUT_OURS,
    Lock,
    Provenance,
    Surface,
    SurfaceWriter,
    acquire_lock,
    centre_datasets,
    check_output,
    direction_hash,
    directions_path,
    path_datasets,
    read_spectrum,
    save_directions,
    spectrum_datasets,
)
from engine.grid import Grid
from engine.hessian import snake_order
from engine.landscape import Landscape
from engine.losses import Loss
from engine.pool import Outcome, Pool, WorkerSpec, evaluate_local
from engine.resume import existing_surface, resumed_directions
from engine.splits import Batches, Split

log = logging.getLogger(__name__)

# A run whose first ABORT_AFTER_FAILURES points all fail tries PROBE_POINTS more, spread over
# the rest of the grid, before it gives up: a region that fails at the grid's start (a corner
# where the loss raises) must not block the points that can succeed, while a loss that fails
# everywhere still stops after a few points instead of trying them all.
ABORT_AFTER_FAILURES = 10
PROBE_POINTS = 5

__all__ = ["Job", "PointResult", "Summary", "prepare", "time_point"]


@dataclass(frozen=True)
class PointResult:
    """One grid point's end, with the run's progress: what a live view needs.

    ``values`` is empty and ``error`` set for a point that failed on every try.
    """

    index: int
    coords: tuple[float, float]
    values: dict[str, float]
    done: int = 0
    total: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Summary:
    path: Path
    total: int
    done: int
    computed: int
    seconds: float
    min_name: str
    min_value: float
    min_coords: tuple[float, float]
    non_finite: int  # finished points whose first surface is NaN or inf (a result, kept as is)
    failed: dict[int, str]  # flat index -> error of points that failed on every try
    workers: int = 1
    # Finished points where a moved BN running variance is negative, in flat-index order
    # (their loss is NaN or about to be), and how many of them have a non-finite min_name.
    bn_negative: tuple[tuple[float, float], ...] = ()
    bn_negative_nan: int = 0


class Job:
    """A prepared run: call ``run`` (or iterate ``points``) to evaluate the unfinished points.

    With one worker the points are evaluated in this process; with more, a ``Pool`` of
    spawned workers evaluates them and this process only records results.
    """

    def __init__(
        self,
        writer: SurfaceWriter,
        landscape: Landscape,
        grid: Grid,
        cfg: Config,
        dir_file: Path | None = None,
        devices: list[str] | None = None,
    ) -> None:
        self.writer, self.landscape, self.grid, self.cfg = writer, landscape, grid, cfg
        self.dir_file = dir_file
        self.devices = devices or [str(landscape.device)]
        self.resumed = bool(writer.completed.any())
        self.pool: Pool | None = None
        self.quiet_workers = False  # a TUI sets it: workers' output must not reach the screen
        # A Hessian run's spectrum at the centre, under the file's names (formats.SPECTRUM_NAMES)
        self.spectrum: dict[str, object] | None = None
        # What preparing decided that the user should hear (an automatic range, say).
        self.notes: tuple[str, ...] = ()
        # The first point failure of this run evaluated in this process, to chain into the
        # caller's error (the Python API): the user's loss keeps its file and line.
        self.first_error: BaseException | None = None

    @property
    def path(self) -> Path:
        return self.writer.path

    @property
    def total(self) -> int:
        return self.grid.size

    @property
    def done(self) -> int:
        return int(self.writer.completed.sum())

    def todo(self) -> list[int]:
        """Unfinished flat indices, in the order they will be computed.

        With ``compute.preview`` the coarse sub-grid (every 4th index along each axis) comes
        first, so a live view shows the whole shape early; the values do not depend on order.
        """
        todo = [int(k) for k in np.flatnonzero(~self.writer.completed.ravel())]
        if self.cfg.hessian.enabled:
            # Snake order: each point is its predecessor's neighbour, for warm starts.
            left = set(todo)
            ny = 1 if self.grid.y is None else self.grid.y.num
            return [k for k in snake_order(self.grid.x.num, ny) if k in left]
        if not self.cfg.compute.preview:
            return todo
        nx = self.grid.x.num

        def coarse(k: int) -> bool:
            i, j = divmod(k, nx)
            return j % 4 == 0 and (self.grid.ndim == 1 or i % 4 == 0)

        return [k for k in todo if coarse(k)] + [k for k in todo if not coarse(k)]

    def _outcomes(self, todo: list[int]) -> Iterator[Outcome]:
        c = self.cfg.compute
        if len(self.devices) == 1:
            return evaluate_local(
                self.landscape.evaluate_many,
                self.grid.point,
                todo,
                self.landscape.points_per_batch,
                c.retries,
            )
        if self.dir_file is None:
            raise LandscapeError("a worker pool needs the run's direction file")
        cpu_workers = sum(1 for d in self.devices if d == "cpu")
        threads = max(1, torch.get_num_threads() // max(1, cpu_workers))
        specs = [
            WorkerSpec(
                config_toml=config_to_toml(self.cfg),
                dir_file=str(self.dir_file),
                dir_type=self.landscape.ds.dir_type,
                device=d,
                threads=threads if d == "cpu" else 1,
                quiet=self.quiet_workers,
                points=-(-len(todo) // len(self.devices)),
            )
            for d in self.devices
        ]
        self.pool = Pool(specs, self.grid.point, c.retries, c.restarts)
        return self.pool.run(todo)

    def points(self, outcomes: Iterator[Outcome] | None = None) -> Iterator[PointResult]:
        """Evaluate and record each unfinished point, yielding each as it finishes.

        Recorded points are appended to the journal (durable) at least every
        ``compute.flush_seconds`` and folded into the HDF5 file every
        ``compute.checkpoint_seconds`` and at the end, also on an error or Ctrl-C.
        ``outcomes`` replaces this job's own evaluation (a distributed run's gathered results).

        When the first ``ABORT_AFTER_FAILURES`` points all fail, ``PROBE_POINTS`` points spread
        over the rest of the grid are tried next; if they fail too (and none has succeeded),
        the run stops with one line. One success anywhere and every point is tried. Given
        ``outcomes`` cannot be re-ordered, so such a run stops after the first failures.
        """
        c = self.cfg.compute
        last_flush = last_checkpoint = time.monotonic()
        ok = bad = 0
        own = outcomes is None  # our own evaluation can be re-ordered to probe the grid
        todo = self.todo() if own else []
        if outcomes is None:
            outcomes = self._outcomes(todo)
        seen: set[int] = set()
        failed: set[int] = set()  # this run's failures (the file may hold older ones)
        probes: set[int] | None = None  # chosen when the first points have all failed
        try:
            while True:
                after: list[int] | None = None  # the new order once probes are chosen
                for o in outcomes:
                    coords = self.grid.point(o.index)
                    seen.add(o.index)
                    if o.values is None:
                        bad += 1
                        failed.add(o.index)
                        if self.first_error is None:
                            self.first_error = o.exc
                        self.writer.record_failure(o.index, o.error or "unknown error")
                        if ok == 0 and bad >= ABORT_AFTER_FAILURES:
                            if own and probes is None:
                                rest = [k for k in todo if k not in seen]
                                probes = set(spread(rest, PROBE_POINTS))
                                if rest:
                                    after = [k for k in rest if k in probes] + [
                                        k for k in rest if k not in probes
                                    ]
                            elif not own or probes <= failed:
                                raise LandscapeError(
                                    self._abort_message(coords, o.error, bad, len(probes or ()))
                                ) from o.exc
                    else:
                        ok += 1
                        self.writer.record(o.index, o.values)
                    yield PointResult(
                        o.index, coords, o.values or {}, self.done, self.total, o.error
                    )
                    now = time.monotonic()
                    if now - last_checkpoint >= c.checkpoint_seconds:
                        self.writer.checkpoint()
                        last_flush = last_checkpoint = now
                    elif now - last_flush >= c.flush_seconds:
                        self.writer.flush()
                        last_flush = now
                    if after is not None:
                        break
                if after is None:
                    break
                _close(outcomes)  # stops the pool's workers; points in flight are in `after`
                outcomes = self._outcomes(after)
        finally:
            _close(outcomes)  # stops the pool's workers
            self.close()

    def _abort_message(
        self, coords: tuple[float, float], error: str | None, bad: int, probes: int
    ) -> str:
        where = f", {probes} of them spread over the grid" if probes else ""
        return (
            f"evaluating the point at {coords} failed: {error} (and the {bad - 1} points "
            f"tried before it{where}, with none finished; finished points are saved in "
            f"{self.path})"
        )

    def close(self) -> None:
        """Put the model back, fold what was recorded into the file, release the output."""
        self.landscape.reset()
        self.writer.close()

    def run(
        self,
        on_point: Callable[[PointResult], None] | None = None,
        outcomes: Iterator[Outcome] | None = None,
    ) -> Summary:
        t0 = time.perf_counter()
        computed = 0
        for r in self.points(outcomes):
            computed += r.error is None
            if on_point is not None:
                on_point(r)
        return self.summary(computed, time.perf_counter() - t0)

    def snapshot(self) -> Surface:
        """The surface as recorded so far, unfinished points NaN: what a live view draws,
        read from memory (the file on disk lags behind by up to a checkpoint)."""
        w, g = self.writer, self.grid
        return Surface(
            self.path,
            LAYOUT_OURS,
            g.x.coordinates(),
            None if g.y is None else g.y.coordinates(),
            {n: np.where(w.completed, a, np.nan) for n, a in w.arrays.items()},
            w.completed.copy(),
            failed=dict(w.failed),
        )

    def summary(self, computed: int, seconds: float) -> Summary:
        names = self.writer.names
        name = names[0]
        z = np.where(self.writer.completed, self.writer.arrays[name], np.nan)
        finite = np.isfinite(z)
        non_finite = int((self.writer.completed & ~finite).sum())
        if finite.any():
            k = int(np.nanargmin(np.where(finite, z, np.nan)))
            value, coords = float(z.ravel()[k]), self.grid.point(k)
        else:
            value, coords = float("nan"), (float("nan"), float("nan"))
        done = np.flatnonzero(self.writer.completed.ravel())
        pts = [(float(a), float(b)) for a, b in self.grid.points()[done]]
        neg = np.asarray(self.landscape.negative_bn_variance(pts), dtype=bool)
        flagged = done[neg]
        return Summary(
            self.path,
            self.total,
            self.done,
            computed,
            seconds,
            name,
            value,
            coords,
            non_finite,
            dict(self.writer.failed),
            len(self.devices),
            tuple(p for p, n in zip(pts, neg, strict=True) if n),
            int((~finite.ravel()[flagged]).sum()),
        )


def spread(indices: list[int], k: int) -> list[int]:
    """``k`` of ``indices`` evenly spaced over the list, its middle included (all when fewer):
    the points a run that failed at its start tries before it gives up."""
    n = len(indices)
    if n <= k:
        return list(indices)
    return sorted({indices[(2 * i + 1) * n // (2 * k)] for i in range(k)})


def _close(outcomes: Iterator[Outcome]) -> None:
    close = getattr(outcomes, "close", None)
    if close is not None:
        close()


def prepare(
    cfg: Config,
    out: str | Path,
    *,
    overwrite: bool = False,
    model: torch.nn.Module | None = None,
    splits: dict[str, Split | Batches] | None = None,
    loss: Loss | None = None,
    directions: DirectionSet | None = None,
) -> Job:
    """Check everything, then create (or reopen to resume) the surface file.

    ``model``, ``splits``, ``loss`` and ``directions`` replace what the config names (the
    Python API hands them over in memory); None loads or builds each from the config. Such a
    job runs in this process. Given directions are saved beside the output, as built ones.
    """
    if model is None and splits is None:
        preflight(cfg)  # the cheap checks first: a misfit fails before a model or data set loads
    out = check_output(out)
    device = resolve_device(cfg.compute.device)
    devices = worker_devices(cfg)
    if len(devices) > 1:
        device = torch.device("cpu")  # the parent only checks the setup; workers evaluate
    if model is not None and len(devices) > 1:
        raise ConfigError(
            f"a model handed over in memory is evaluated in this process, but the config asks "
            f"for {len(devices)} workers; set `compute.workers` = 1 or use the command line"
        )
    model = load_model(cfg) if model is None else model
    splits = load_splits(cfg.data) if splits is None else splits
    # Before anything about the output is read: of two runs started together on one output,
    # one decides what the file becomes and the other is refused (it checked, then wrote).
    lock = acquire_lock(out)
    try:
        return _prepare_locked(
            cfg, out, overwrite, model, splits, device, devices, lock, loss, directions
        )
    except BaseException:
        lock.close(remove=True)
        raise


def _prepare_locked(
    cfg: Config,
    out: Path,
    overwrite: bool,
    model: torch.nn.Module,
    splits: dict[str, Split | Batches],
    device: torch.device,
    devices: list[str],
    lock: Lock,
    loss: Loss | None = None,
    given: DirectionSet | None = None,
) -> Job:
    """``prepare``'s part under the output's lock: resume or create the file."""
    grid = cfg.parsed_grid
    existing = existing_surface(out, cfg, overwrite)
    pca = None
    if existing is not None:
        dir_file, ds = resumed_directions(out, existing, grid.ndim)
        ds.check_fits(model, str(dir_file))
        if auto_points(cfg.grid.x) is not None or auto_points(cfg.grid.y) is not None:
            grid = existing.grid  # the range fitted to the path when the file was made
    elif given is not None:
        ds = given
    else:
        built = make_directions(cfg, model, grid, splits=splits, loss=loss)
        ds, grid, pca = built.ds, built.grid, built.pca
    landscape = Landscape(model, splits, ds, cfg, device, loss=loss)
    todo = grid.size if existing is None else int((~existing.completed).sum())
    if len(devices) > 1 and landscape.auto_batch:  # this process evaluates nothing
        landscape.auto_batch = False
        landscape.batch_choice = BatchChoice(landscape.batch_size, "pool")
    landscape.check(todo)
    notes: tuple[str, ...] = ()
    centre: dict[str, object] = {}
    if existing is None:
        centre = direction_ratios(model, ds)
        if pca is None and any(auto_points(v) is not None for v in (cfg.grid.x, cfg.grid.y)):
            loss_name = next(n for n in landscape.names() if n.endswith("_loss"))
            try:
                auto = auto_grid(cfg.grid, landscape.evaluate, loss_name)
            except ValueError as e:
                raise LandscapeError(f"grid = 'auto': {e}") from None
            finally:
                landscape.reset()
            grid, notes = auto.grid, auto.notes
            centre.update(loss_name=auto.loss_name, loss=auto.centre,
                          auto_threshold=auto.threshold, auto_probes=auto.probes)  # fmt: skip
    if existing is not None:
        writer = SurfaceWriter.resume(existing, lock)
        job = Job(writer, landscape, grid, cfg, dir_file, devices)
        job.spectrum = read_spectrum(out) if cfg.hessian.enabled else None
        return job
    spectrum = None
    if cfg.hessian.enabled:
        # The centre's spectrum once, stored with the file (a resume reads it back).
        try:
            spectrum = landscape.spectrum().file_values()
        finally:
            landscape.reset()
    save = None
    if cfg.directions.kind == "file" and given is None:
        dir_file = Path(cfg.directions.file).resolve()
    else:
        dir_file = directions_path(out)

        def save() -> None:  # under the output's lock: never rewrite another run's directions
            extras = pca.extras() if pca is not None else None
            save_directions(dir_file, ds, extras=extras, replace=overwrite)

    stored = (
        dir_file.name
        if dir_file.resolve().parent == out.resolve().parent
        else str(dir_file.resolve())
    )
    provenance = Provenance(
        config=config_to_toml(cfg),
        dir_hash=direction_hash(ds.x, ds.y),
        dir_type=ds.dir_type,
        device=", ".join(devices) if len(devices) > 1 else str(device),
        batch_size=landscape.batch_choice.provenance(),
    )
    extras = {}
    if pca is not None:  # the path on the plane, in the reference's names, and our exact ones
        extras = {**path_datasets(pca.coords_cos, pca.coords_lsq), **pca.extras()}
    if spectrum is not None:
        extras.update(spectrum_datasets(spectrum))
    extras.update(centre_datasets(centre))
    writer = SurfaceWriter.create(
        out, grid, landscape.names(), provenance, stored, on_locked=save, extras=extras, lock=lock
    )
    job = Job(writer, landscape, grid, cfg, dir_file, devices)
    job.spectrum = spectrum
    job.notes = notes
    return job


def time_point(cfg: Config) -> tuple[float, int]:
    """Seconds one grid point takes in one process, and the grid's point count: the centre
    timed once after a warm-up, for a run-time estimate that writes nothing."""
    preflight(cfg)
    model = load_model(cfg)
    built = make_directions(cfg, model)
    device = resolve_device(cfg.compute.device)
    land = Landscape(model, load_splits(cfg.data), built.ds, cfg, device)
    land.check(built.grid.size)
    try:
        land.evaluate_many([(0.0, 0.0)])  # warm-up: first-call allocations, cuDNN's choices
        t = time.perf_counter()
        land.evaluate_many([(0.0, 0.0)])
    except LandscapeError:
        raise
    except Exception as e:  # a point that fails in a run is recorded; here it is the answer
        raise LandscapeError(f"timing the centre point failed: {describe(e)}") from e
    return time.perf_counter() - t, built.grid.size
