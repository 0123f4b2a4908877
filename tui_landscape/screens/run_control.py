"""The setup screen's runs: check a setup, ask for its output file, run it live or detached.

``RunControl`` is mixed into ``SetupScreen`` (``screens.setup``), which holds the config form;
this holds what the screen does with the setup it reads. The setup is checked in a worker by
the engine's ``preflight``, the checks ``compute`` makes first: Run is enabled only for a setup
``compute`` would start. Where the output file exists, the user chooses: resume it (where it
holds this setup's surface), overwrite it, or a new name (``free_name``). The run goes through
the engine's result stream (``Job.points``) in a worker; the plot redraws at most five times a
second. Detach starts the setup as its own process (``tui_landscape.detach``).

Torch is imported only in the workers. The workers change no state themselves: they call back
on the UI thread, and an error none of them handled ends in the screen's one
``Worker.StateChanged`` handler, which gives the buttons back through ``_worker_failed``.

The screen provides ``cfg`` (the setup as ``validate`` last read it, None while a field is
invalid), ``config_path``, ``error``, ``validate()``, ``log_line()`` and ``_config_error()``,
and composes the widgets ``#summary``, ``#run``, ``#cancel``, ``#out``, ``#right``, ``#live``
and ``#log``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.widgets import Button, Input, Label, ProgressBar

from engine.config import Config, output_path
from engine.errors import LandscapeError
from tui_landscape.plots.widget import PlotView
from tui_landscape.report import fmt_rate, summary_lines
from tui_landscape.screens.workers import error_line

if TYPE_CHECKING:
    from engine.run import Job

__all__ = ["REDRAW_SECONDS", "RunControl", "free_name"]

REDRAW_SECONDS = 0.2  # at most five redraws a second while points stream in


def free_name(out: Path) -> Path:
    """``NAME-1.h5``, ``NAME-2.h5`` ...: the first that does not exist beside ``out``."""
    n = 1
    while (p := out.with_name(f"{out.stem}-{n}{out.suffix}")).exists():
        n += 1
    return p


class RunControl:
    """The checks, runs and estimates of the setup screen it is mixed into (before
    ``Screen``): its actions run, detach, cancel and estimate, and its workers."""

    def __init__(self) -> None:
        super().__init__()
        self.then: Callable[[], None] | None = None  # what follows the run's end (esc, q)
        self.checked: Config | None = None  # the last setup the engine's preflight passed
        # The setup the preflight is checking: checked once, not again for each Changed of
        # a field mounted meanwhile (a new check would cancel the running one).
        self.checking: Config | None = None
        self.run_when_checked = False  # Run was pressed while the preflight was running
        self.detach_when_checked = False  # so was Detach
        self.running = False  # a run was started and has not ended (set on the UI thread)
        self.job: Job | None = None  # the run's job, once prepared (set on the UI thread)
        self.cancel_requested = False
        # The setup the preflight refused, and why: Run refused until a field changes.
        self.failed: tuple[Config, str] | None = None
        self._last_draw = 0.0

    def _detach_then(self, leave: Callable[[], None]) -> None:
        """The in-app run stopped: the same setup goes on as its own process, then ``leave``."""
        from tui_landscape.detach import start_detached

        cfg = self.cfg
        if cfg is not None:
            try:
                run = start_detached(cfg, output_path(cfg, self.config_path), self.config_path)
            except (OSError, LandscapeError) as e:
                self.notify(f"Cannot detach: {error_line(e)}", severity="error", markup=False)
                return  # stay: the setup is still here to run again
            self.app.notify(f"Running {run.out.name} detached (pid {run.pid}); log: {run.log}",
                            markup=False)  # fmt: skip
        leave()

    def _after_run(self) -> None:
        then, self.then = self.then, None
        if then is not None:
            then()

    def _worker_failed(self, group: str, msg: str) -> None:
        """A run's or a check's worker ended in an error (``msg``, said already): the buttons
        back (Run, and Cancel off)."""
        if group == "run":
            self._run_over()
        elif group == "preflight":
            # The check could not say; Run is given back, and checks again first (``_check``).
            self.checking = None
            self.run_when_checked = self.detach_when_checked = False
            self.query_one("#summary", Label).update(msg)
            self.query_one("#run", Button).disabled = self.cfg is None or self.running

    def _check(self, cfg: Config) -> None:
        self.checking = cfg
        self.preflight(cfg)

    @work(thread=True, exclusive=True, group="preflight", exit_on_error=False)
    def preflight(self, cfg: Config) -> None:
        """``compute``'s first checks, off the UI thread (the first one imports torch): the
        model, data and files it names, and the output (its folder, no run writing it)."""
        from engine.build import preflight
        from engine.formats import check_output

        try:
            preflight(cfg)
            check_output(output_path(cfg, self.config_path))
        except LandscapeError as e:  # the setup's own fault: shown under its field
            self.app.call_from_thread(self._preflight_failed, cfg, str(e))
            return
        self.app.call_from_thread(self._preflight_passed, cfg)

    def _preflight_passed(self, cfg: Config) -> None:
        self._checked(cfg)
        if cfg == self.cfg:  # else the setup changed meanwhile, and is being checked again
            self.checked = cfg
            self._ready_to_run(cfg)
            if self.run_when_checked:
                self.action_run()
            elif self.detach_when_checked:
                self.action_detach()

    def _preflight_failed(self, cfg: Config, msg: str) -> None:
        self._checked(cfg)
        if cfg == self.cfg:
            self.run_when_checked = self.detach_when_checked = False
            self.failed = (cfg, msg)
            self._config_error(msg)

    def _checked(self, cfg: Config) -> None:
        """The preflight of ``cfg`` is over: a later change back to it is checked again (the
        files it names may have changed)."""
        if cfg == self.checking:
            self.checking = None

    def _ready_to_run(self, cfg: Config) -> None:
        g = cfg.parsed_grid
        self.query_one("#summary", Label).update(f"{g.size} points ({g.ndim}D)")
        self.query_one("#run", Button).disabled = self.running

    def _batch_status(self, cfg: Config, text: str) -> None:
        """The run's batch size beside its points: 'auto (probing)', then what was chosen."""
        g = cfg.parsed_grid
        self.query_one("#summary", Label).update(f"{g.size} points ({g.ndim}D), batch {text}")

    def action_estimate(self) -> None:
        cfg = self.validate()
        if cfg is not None:
            self.log_line("Timing one point (loading the model and data first)...")
            self.estimate(cfg)

    @work(thread=True, exclusive=True, group="estimate", exit_on_error=False)
    def estimate(self, cfg: Config) -> None:
        """Seconds per point from timing the center point once (after one warm-up); an error
        is reported by ``on_worker_state_changed``."""
        from engine.run import time_point

        sec, size = time_point(cfg)
        self.app.call_from_thread(
            self.log_line,
            f"Estimate: {sec * 1000:.1f} ms per point, about {sec * size:.0f} s for {size} "
            "points in one process",
        )

    def _checked_first(self, cfg: Config) -> bool:
        """Whether the preflight passed ``cfg``; else it is checked (again, where a check
        failed to say), and the caller's action runs if it passes."""
        if cfg == self.checked:
            return True
        self.log_line("Checking the setup first...")
        if cfg != self.checking:
            self._check(cfg)
        return False

    def _refused(self, cfg: Config | None) -> bool:
        """True, and says why, while a field is invalid: Run and Detach stay off until it is
        fixed (a check that failed is made again on the field's next change)."""
        if cfg is not None and self.error is None:
            return False
        self.notify(f"Fix the setup first: {self.error or 'a field is invalid'}",
                    severity="error", markup=False)  # fmt: skip
        return True

    def action_run(self) -> None:
        cfg = self.validate()
        self.run_when_checked = False
        if self.running or self._refused(cfg):
            return
        if not self._checked_first(cfg):  # Run starts it if the preflight passes
            self.run_when_checked = True
            return
        self._ask_output(cfg, self._start_run)

    def _ask_output(self, cfg: Config, start: Callable[[Config, Path, bool], None]) -> None:
        """``start(cfg, out, overwrite)`` at once for a new output; where it exists, ask:
        resume it (where it holds this setup's surface), overwrite it, or a new name."""
        from engine.resume import existing_surface
        from tui_landscape.screens.choose import Answer, Choose

        out = output_path(cfg, self.config_path)
        if not out.exists():
            start(cfg, out, False)
            return
        answers = [Answer("overwrite", "o", "Overwrite", "error"),
                   Answer("rename", "r", f"New name: {free_name(out).name}")]  # fmt: skip
        try:
            existing_surface(out, cfg, overwrite=False)
            why = "It holds this setup's surface: resume adds the missing points."
            answers.insert(0, Answer("resume", "u", "Resume", "success"))
        except LandscapeError as e:
            why = f"It cannot be resumed: {error_line(e).split('; pass --overwrite')[0]}."

        def answered(value: str | None) -> None:
            if value == "rename":
                new = free_name(out)
                self.query_one("#out", Input).value = str(new)  # the field says where it goes
                start(replace(cfg, output=replace(cfg.output, path=str(new))), new, False)
            elif value in ("resume", "overwrite"):
                start(cfg, out, value == "overwrite")

        self.app.push_screen(Choose(f"{out.name} exists. {why}", answers), answered)

    def _start_run(self, cfg: Config, out: Path, overwrite: bool) -> None:
        if self.running:
            return
        self.running, self.cancel_requested = True, False
        self.query_one("#run", Button).disabled = True
        self.query_one("#cancel", Button).disabled = False
        self.compute(cfg, out, overwrite)

    def action_detach(self) -> None:
        """Run the setup as its own process, which outlives the app (``tui_landscape.detach``)."""
        cfg = self.validate()
        self.detach_when_checked = False
        if self._refused(cfg):
            return
        if not self._checked_first(cfg):
            # As Run: started once compute's checks pass, which a detached process would fail.
            self.detach_when_checked = True
            return
        self._ask_output(cfg, self._start_detached)

    def _start_detached(self, cfg: Config, out: Path, overwrite: bool) -> None:
        from tui_landscape.detach import start_detached
        from tui_landscape.screens.browser import show_folder

        try:
            run = start_detached(cfg, out, self.config_path, overwrite=overwrite)
        except (OSError, LandscapeError) as e:
            self.notify(f"Cannot detach: {error_line(e)}", severity="error", markup=False)
            return
        self.notify(f"Running {run.out.name} detached (pid {run.pid}); log: {run.log}",
                    markup=False)  # fmt: skip
        show_folder(self.app, run.out.parent)

    def action_cancel(self) -> None:
        if self.running:
            self.cancel_requested = True
            self.log_line("Cancelling: finished points are kept; Run again resumes.")

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def compute(self, cfg: Config, out: Path, overwrite: bool = False) -> None:
        """Prepare and run, posting each point to the UI thread; an error ends in
        ``on_worker_state_changed``, a cancel or the end in ``_ended``."""
        from engine.run import prepare

        post = self.app.call_from_thread
        post(self.log_line, f"Preparing {out} (model, data, directions)...")
        if cfg.data.batch_size == "auto":
            post(self._batch_status, cfg, "auto (probing)")
        job = prepare(cfg, out, overwrite=overwrite)
        job.quiet_workers = True
        choice = job.landscape.batch_choice
        if choice.how != "given":
            post(self._batch_status, cfg, choice.provenance())
            post(self.log_line, choice.line().capitalize())
        post(self._started, job, job.total - job.done)
        t0, n, computed = time.perf_counter(), 0, 0
        # Closed on any exit: the job folds what it recorded into the file and frees its lock.
        with closing(job.points()) as points:
            for r in points:
                n += 1
                computed += r.error is None
                if r.error:
                    post(self.log_line, f"point {r.coords} failed: {r.error}")
                post(self._progress, r.done, job.total, fmt_rate(n, time.perf_counter() - t0))
                if self.cancel_requested:
                    break
        # What `compute` prints at its end, the minimum and a NaN's likely cause included.
        for line in summary_lines(job.summary(computed, time.perf_counter() - t0), job.grid.ndim):
            post(self.log_line, line)
        verb = "Cancelled" if self.cancel_requested else "Done"
        post(self._ended, f"{verb}: {job.done}/{job.total} points in {job.path}")

    def _ended(self, text: str) -> None:
        self.log_line(text)
        self.notify(text, markup=False)
        self._run_over()

    def _started(self, job: Job, todo: int) -> None:
        self.job = job
        bars = self.query("#progress").results(ProgressBar)
        bar = next(bars, None)
        if bar is None:  # the first run: mounted now (hidden before, it pulsed 15 times a second)
            bar = ProgressBar(id="progress", show_eta=True)
            self.query_one("#right").mount(bar, after="#live")
        bar.update(total=job.total, progress=job.done)
        self.log_line(f"Computing {todo} of {job.total} points into {job.path}")
        self._draw(force=True)

    def _progress(self, done: int, total: int, rate: str) -> None:
        self.query_one("#progress", ProgressBar).update(progress=done)
        self.sub_title = f"{done}/{total} points, {rate}"  # '12.3 s/pt' for a slow run
        self._draw()

    def _draw(self, force: bool = False) -> None:
        """The live view from the job's recorded points, at most five times a second."""
        now = time.monotonic()
        if self.job is None or (not force and now - self._last_draw < REDRAW_SECONDS):
            return
        self._last_draw = now
        self.query_one("#live", PlotView).surface = self.job.snapshot()

    def _run_over(self) -> None:
        """The run ended (done, cancelled or failed, said already): the buttons back."""
        self._draw(force=True)
        self.running, self.job = False, None
        self.sub_title = ""  # no run: its rate is no longer news (the log keeps the summary)
        self.query_one("#cancel", Button).disabled = True
        self.validate()
        self._after_run()  # esc or q asked to stop it: the setup is left now
