"""The command line over SSH (issue 17): a still bar while idle, s/pt for slow runs, one bar
line after Ctrl-C, a message and code on SIGTERM, `-v` for our loggers only."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from rich.console import Console

import tui_landscape.cli.common as common
import tui_landscape.report as report
from engine.errors import LandscapeError
from engine.formats import Provenance, SurfaceWriter, journal_path, surface_info
from engine.grid import Grid
from engine.run import Summary
from tests.conftest import REPO
from tui_landscape.cli import OUR_LOGGERS, configure_logging

DIGITS_2D = REPO / "sample_configs" / "digits_2d.toml"


def test_rates_below_one_point_a_second_are_seconds_a_point():
    assert report.fmt_rate(10, 4.0) == "2.5 pt/s"
    assert report.fmt_rate(3, 36.9) == "12.3 s/pt"  # not "0.1 pt/s", nor "0.0 pt/s"
    assert report.fmt_rate(1, 1.0) == "1.0 pt/s"
    assert report.fmt_rate(0, 5.0) == ""


def test_the_summary_of_a_slow_run_says_seconds_a_point(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=out, width=200))
    nan = float("nan")
    s = Summary(Path("s.h5"), 9, 9, 4, 49.2, "train_loss", nan, (nan, nan), 0, {})
    common.print_summary(s, 2)
    assert out.getvalue().startswith("Computed 4 points in 49.2 s (12.3 s/pt); 9/9 done.")


class FakeClock:
    """``time`` for ``common``: its progress reads only ``perf_counter``, which moves only
    when a test says so, so the rate and ETA do not depend on how busy the machine is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


class SlowJob:
    """What ``run_with_progress`` asks of a Job: idle before its first point, two points
    1.25 s apart on ``clock``, then Ctrl-C; ``screen`` is the terminal's text when the idle
    time starts and ends, ``threads`` those started while the bar is up."""

    def __init__(self, out: io.StringIO, clock: FakeClock) -> None:
        self.out, self.clock, self.total, self.done, self.resumed = out, clock, 100, 0, False
        self.notes: tuple[str, ...] = ()  # what preparing chose (an automatic range)
        self.path = Path("/data/a/rather/long/folder/name/for/the/surface/[b]digits_41x41.h5")
        self.screen: list[str] = []
        self.threads: list[threading.Thread] = []
        self._before = set(threading.enumerate())

    def run(self, on_point, outcomes=None):
        self.screen.append(self.out.getvalue())
        # No point finishes: nothing may be drawn. Only a thread could draw while this one
        # waits (rich's auto-refresh is one), so none may have been started.
        self.threads = [t for t in threading.enumerate() if t not in self._before]
        self.clock.now += 2.5
        self.screen.append(self.out.getvalue())
        for _ in range(2):
            self.clock.now += 1.25  # slower than a point a second
            self.done += 1
            on_point(None)
        raise KeyboardInterrupt


@pytest.fixture
def slow_job(monkeypatch) -> tuple[SlowJob, Console]:
    """A SlowJob drawn by ``common``'s console on an 80-column terminal, on a fake clock."""
    out, clock = io.StringIO(), FakeClock()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    monkeypatch.setattr(common, "console", console)
    monkeypatch.setattr(common, "time", clock)
    return SlowJob(out, clock), console


def visible_lines(raw: str) -> list[str]:
    """What a terminal shows of rich's output: each line as its last redraw left it."""
    lines = []
    for line in raw.replace("\x1b[?25l", "").replace("\x1b[?25h", "").split("\n"):
        lines.append(line.split("\r\x1b[2K")[-1].rstrip("\r"))
    return [x for x in lines if x]


def test_the_bar_is_still_while_idle_and_ctrl_c_leaves_one_bar_line(slow_job):
    job, console = slow_job
    with pytest.raises(typer.Exit) as e:
        common.run_job(lambda p, o: job, job.path, False)
    assert e.value.exit_code == 130
    before, after = job.screen
    assert before == after, "the bar was redrawn while no point finished"
    assert not job.threads, f"something could redraw the bar while idle: {job.threads}"
    assert common.WAITING in before.split("\r\x1b[2K")[-1]
    shown = visible_lines(job.out.getvalue())
    bar, message = shown[0], " ".join(" ".join(shown[1:]).split())  # the bar once, then this
    assert not any("computing" in line for line in shown[1:]), shown
    # 2 points 5 s after the start: 2.5 s/pt, and 98 more at that rate take 4 min 5 s.
    assert "2/100" in bar and "2.5 s/pt, ETA 0:04:05" in bar, bar
    assert bar.endswith("→ [b]digits_41x41.h5")
    # Two columns free: a terminal's '^C' echo stays on the bar's line, not a new one.
    assert console.measure(bar).maximum <= 78
    assert message.startswith(f"Interrupted: 2/100 points saved in {job.path}; run the same")


def test_a_long_output_name_is_cut_in_the_middle_not_the_counts(slow_job):
    """At 80 columns a 70-character name pushed out the bar, done/total and percentage."""
    job, console = slow_job
    job.path = Path("a_very_long_output_name_for_a_resnet_run_with_many_settings_encoded.h5")
    with pytest.raises(typer.Exit):
        common.run_job(lambda p, o: job, job.path, False)
    bar = visible_lines(job.out.getvalue())[0]
    assert bar.startswith("computing") and "2/100" in bar and "2%" in bar, bar
    assert bar.endswith("→ a_very_long_…_encoded.h5"), bar
    assert console.measure(bar).maximum <= 78


def points_done(path: Path) -> int:
    try:
        return surface_info(path).done
    except LandscapeError:  # not created yet
        return 0


def test_sigterm_says_what_is_saved_and_exits_143(tmp_path):
    out = tmp_path / "t.h5"
    cmd = [sys.executable, "-m", "tui_landscape", "compute", str(DIGITS_2D), "--out", str(out)]
    for o in ["model.checkpoint=", "grid.x=-1:1:41", "grid.y=-1:1:41", "compute.device=cpu",
              "compute.flush_seconds=0.05"]:  # fmt: skip
        cmd += ["--set", o]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and not (journal_path(out).exists() and points_done(out)):
            assert time.monotonic() < deadline, "no point was finished in time"
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == common.EXIT_TERMINATED == 143, stderr
    said = " ".join(stdout.split())
    assert "Terminated (SIGTERM): " in said and "run the same command to resume" in said
    n = int(said.split("Terminated (SIGTERM): ")[1].split("/")[0])
    assert 0 < n < 1681 and surface_info(out).done == n
    assert not journal_path(out).exists()  # folded into the file on the way out
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # this process: untouched


@pytest.fixture
def logger_levels():
    """Put back the levels ``configure_logging`` sets."""
    names = ["", *OUR_LOGGERS]
    saved = {n: logging.getLogger(n).level for n in names}
    yield
    for n, level in saved.items():
        logging.getLogger(n).setLevel(level)


def test_verbose_turns_on_our_debug_lines_only(logger_levels):
    configure_logging(verbose=True)
    assert logging.getLogger("engine.run").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("tui_landscape.app").isEnabledFor(logging.DEBUG)
    for lib in ("matplotlib.font_manager", "h5py._conv", "PIL.PngImagePlugin"):
        assert not logging.getLogger(lib).isEnabledFor(logging.INFO)
        assert logging.getLogger(lib).isEnabledFor(logging.WARNING)
    configure_logging(verbose=False)
    assert logging.getLogger("engine.recipes").isEnabledFor(logging.INFO)
    assert not logging.getLogger("engine.recipes").isEnabledFor(logging.DEBUG)


def test_verbose_export_prints_no_library_debug_lines(tmp_path):
    f = tmp_path / "s.h5"
    g = Grid.parse("-1:1:5", "-1:1:4")
    with SurfaceWriter.create(f, g, ["train_loss"], Provenance(), "d.h5") as w:
        for k in range(20):
            w.record(k, {"train_loss": float(np.sin(k)) + 2})
    cmd = [
        sys.executable,
        "-m",
        "tui_landscape",
        "-v",
        "plot",
        str(f),
        "-e",
        str(tmp_path / "s.png"),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "s.png").is_file()
    # h5py's "Creating converter from 3 to 5", matplotlib's font search and config lines.
    for noise in ("Creating converter", "findfont", "CACHEDIR", "matplotlib data path"):
        assert noise not in r.stderr, r.stderr


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost one
def test_a_ctrl_c_lost_in_a_weakref_callback_still_stops_the_run():
    """Python raises Ctrl-C's KeyboardInterrupt wherever the main thread is; in a weakref
    callback it is printed as 'Exception ignored' and lost (a pool run once went on to the
    end and exited 0). The handler's flag raises it at the next check."""
    import weakref

    class Thing:
        pass

    reached = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), common.signals_as_interrupts():
        t = Thing()
        ref = weakref.ref(t, lambda _: os.kill(os.getpid(), signal.SIGINT))
        del t  # the callback runs here, and its KeyboardInterrupt is swallowed
        reached.append(ref)
        common.check_terminated()
    assert reached, "the interrupt was raised at once: nothing to check here"
    assert signal.getsignal(signal.SIGINT) is before
    with common.signals_as_interrupts():  # the next block starts afresh
        common.check_terminated()
