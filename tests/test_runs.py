"""Runs that outlive the app and watching them (issue 17): ``lock_holder``, ``ps``, the plot
view and browser following a file being written, ``plot --watch``, a detached run in tmux.

Writers are real: another process holding the lock through ``SurfaceWriter`` (``Writer``), a
``Job`` from ``engine.run.prepare``, or a detached ``tui-landscape compute``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from engine.config import config_to_toml, load_config
from engine.formats import Provenance, SurfaceWriter, lock_holder, read_surface, surface_info
from engine.grid import Grid
from engine.run import prepare
from tests.conftest import REPO, sigint_as_in_a_terminal, wait_until
from tests.test_tui import listed, sync, wait_for
from tui_landscape import runs
from tui_landscape.cli import app as cli
from tui_landscape.detach import config_file_for, start_detached
from tui_landscape.screens.plot import PlotScreen

GRID = ("-1:1:4", "-1:1:4")  # 16 points
WRITER = """
import sys
import numpy as np
from engine.formats import Provenance, SurfaceWriter
from engine.grid import Grid
g = Grid.parse(*sys.argv[2:4])
X, Y = np.meshgrid(g.x.coordinates(), g.y.coordinates())
z = (X**2 + 2 * Y**2).ravel()
w = SurfaceWriter.create(sys.argv[1], g, ["train_loss"], Provenance(), "d.h5")
k = 0
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "close":
        break
    for _ in range(int(line)):
        w.record(k, {"train_loss": float(z[k])})
        k += 1
    w.flush()
    print(k, flush=True)
w.close()
"""


class Writer:
    """Another process writing a surface: it holds the lock and journals points on request."""

    def __init__(self, path: Path, grid: tuple[str, str] = GRID) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), *grid], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdout.readline().strip() == "ready"

    def record(self, n: int) -> int:
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.write("close\n")
        self.proc.stdin.flush()
        assert self.proc.wait(timeout=30) == 0


def finished_file(path: Path, grid: tuple[str, str] = GRID) -> Path:
    g = Grid.parse(*grid)
    with SurfaceWriter.create(path, g, ["train_loss"], Provenance(), "d.h5") as w:
        for k in range(g.size):
            w.record(k, {"train_loss": float(k)})
    return path


def test_lock_holder_names_the_writer_and_no_one_after_it_or_for_hostile_locks(tmp_path):
    a = tmp_path / "a.h5"
    w = Writer(a)
    try:
        assert lock_holder(a) == w.proc.pid
        # A link planted at another file's lock name is not followed; a FIFO or garbage is no one's.
        os.symlink(tmp_path / "a.h5.lock", tmp_path / "link.h5.lock")
        os.mkfifo(tmp_path / "fifo.h5.lock")
        (tmp_path / "junk.h5.lock").write_bytes(b"\x1b[2J not a lock")
        for name in ("link.h5", "fifo.h5", "junk.h5", "none.h5"):
            assert lock_holder(tmp_path / name) is None, name
    finally:
        w.close()
    assert (tmp_path / "a.h5.lock").exists() and lock_holder(a) is None  # left behind, free


def test_ps_lists_a_file_being_written_and_not_one_whose_run_ended(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short paths: one line a run
    finished_file(tmp_path / "done.h5")  # its run ended: the lock file is there, not held
    assert (tmp_path / "done.h5.lock").exists()
    w = Writer(tmp_path / "live.h5")
    try:
        assert w.record(5) == 5
        # The points came within the file's first second (``updated`` keeps whole seconds, so
        # a second boundary in between would otherwise read as a second of work): no rate yet.
        import datetime as dt

        t = dt.datetime.fromisoformat(surface_info(tmp_path / "live.h5").updated).timestamp()
        os.utime(tmp_path / "live.h5.journal", (t, t))
        (tmp_path / "live.h5.log").write_text("computing...\n")
        (tmp_path / "junk.h5.journal").write_bytes(b"\x00{not json\n")  # no lock: not a run
        r = CliRunner().invoke(cli, ["ps"])
        assert r.exit_code == 0, r.output
        lines = [line.split() for line in r.output.splitlines()]
        assert lines[0] == ["file", "pid", "done", "rate", "left", "log"], r.output
        assert len(lines) == 2 and lines[1][0] == "live.h5", r.output
        assert lines[1][1:4] == [str(w.proc.pid), "5/16", "(31%)"], r.output
        assert lines[1][4:] == ["-", "-", "live.h5.log"], r.output  # no rate yet
        # A file named directly is looked at too.
        r = CliRunner().invoke(cli, ["ps", "live.h5", "done.h5", str(tmp_path)])
        assert r.exit_code == 0 and "live.h5" in r.output and "done.h5" not in r.output
    finally:
        w.close()
    r = CliRunner().invoke(cli, ["ps", str(tmp_path)])
    assert r.exit_code == 0 and r.output.strip() == "No surface is being written here."
    r = CliRunner().invoke(cli, ["ps", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "not found" in r.output


def test_ps_looks_in_subfolders_with_r_and_prints_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    w = Writer(tmp_path / "sub" / "deeper" / "live.h5")
    try:
        assert w.record(3) == 3
        r = CliRunner().invoke(cli, ["ps"])
        assert r.exit_code == 0 and "No surface is being written here." in r.output
        r = CliRunner().invoke(cli, ["ps", "-r"])
        assert r.exit_code == 0 and "live.h5" in r.output, r.output
        r = CliRunner().invoke(cli, ["ps", "--recursive", "--json"])
        assert r.exit_code == 0, r.output
        (run,) = json.loads(r.output)
        assert Path(run["path"]).resolve() == (tmp_path / "sub/deeper/live.h5").resolve()
        assert run["pid"] == w.proc.pid and run["done"] == 3 and run["total"] == 16
        assert run["log"] is None and run["failed"] == 0
    finally:
        w.close()
    r = CliRunner().invoke(cli, ["ps", "-r", "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == []


def test_run_status_rate_is_the_journals_points_over_the_time_since_the_checkpoint(
    tmp_path, monkeypatch
):
    f = tmp_path / "r.h5"
    g = Grid.parse(*GRID)
    with SurfaceWriter.create(f, g, ["train_loss"], Provenance(), "d.h5") as w:
        for k in range(6):
            w.record(k, {"train_loss": 1.0})
        w.flush()
        info = surface_info(f)
        assert info.journaled == 6 and info.done == 6
        import datetime as dt

        since = dt.datetime.fromisoformat(info.updated).timestamp()
        os.utime(f.with_name("r.h5.journal"), (since + 3, since + 3))
        st = runs.run_status(f)
        assert st is not None and st.pid == os.getpid()
        assert st.rate == pytest.approx(2.0) and st.eta == pytest.approx(5.0)
        # A resumed run: `updated` is the last run's checkpoint, its journal this run's own
        # points, so the time counts from its start (ps showed 35 s/pt for a 10 pt/s run).
        started = since + 1
        monkeypatch.setattr(runs, "process_start", lambda pid: started)
        log = f.with_name("r.h5.log")
        log.write_text("an earlier detached run's output\n")
        os.utime(log, (since - 60, since - 60))
        st = runs.run_status(f)
        assert st.rate == pytest.approx(3.0) and st.log is None  # the log is not this run's
        os.utime(log, (started + 0.5, started + 0.5))
        assert runs.run_status(f).log == log
        w.checkpoint()  # the journal is emptied: no rate until points arrive again
        st = runs.run_status(f)
        assert st.done == 6 and st.rate is None
    assert runs.run_status(f) is None


def test_process_start_is_this_process_s():
    t = runs.process_start(os.getpid())
    assert t is not None and 0 <= time.time() - t < 24 * 3600
    assert runs.process_start(2**22 + 12345) is None  # no such process


def job_config(tmp_path: Path, grid: str = "-1:1:4"):
    return load_config(
        None,
        ["model.arch=digits_mlp", "model.checkpoint=", f"grid.x={grid}", f"grid.y={grid}",
         "data.splits=['train']", "compute.device=cpu", "compute.flush_seconds=1000"],
    )  # fmt: skip


@sync
async def test_the_plot_view_redraws_as_points_arrive_and_not_when_nothing_changed(
    tmp_path, monkeypatch
):
    from tui_landscape.plots import terminal  # the view takes its draw from there, as it draws

    monkeypatch.setattr(runs, "WATCH_SECONDS", 0.05)
    out = tmp_path / "j.h5"
    job = prepare(job_config(tmp_path), out)
    points = job.points()
    for _ in range(3):
        next(points)
    job.writer.flush()  # what the run does every compute.flush_seconds

    draws, looks = [], []  # each draw's size; each look at the file
    real_draw, real_changed = terminal.draw, runs.Watch.changed

    def draw(spec, **kw):
        draws.append((kw["width"], kw["height"]))
        return real_draw(spec, **kw)

    monkeypatch.setattr(terminal, "draw", draw)
    monkeypatch.setattr(runs.Watch, "changed", lambda w: looks.append(1) or real_changed(w))
    app_ = create(out)
    async with app_.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app_.screen, PlotScreen) and draws)
        screen = app_.screen
        line = screen.query_one("#status")
        status = lambda: str(line.render())  # noqa: E731

        def laid_out() -> bool:
            """The layout follows the status text, and the view drew at its size. The status
            is one line or two (max-height 2): "running" dropped at the run's end, it shrank
            to one line and the map grew a row, a redraw that was counted in the next quiet
            spell when the layout came after the text was seen (the flaky failure)."""
            v = screen.view
            lines = min(len(status().splitlines()), 2)
            return line.size.height == lines and draws[-1] == (v.size.width, v.size.height)

        async def settled() -> None:
            """The last change's reads, layout and redraws are over."""
            await app_.workers.wait_for_complete()
            await wait_for(pilot, laid_out)
            await pilot.pause()

        await wait_for(pilot, lambda: "3/16 done, running" in status())

        async def quiet(n_looks: int = 8) -> int:
            """From a settled screen, let it look n times; return the draws meanwhile."""
            await settled()
            n, k = len(draws), len(looks)
            await wait_for(pilot, lambda: len(looks) >= k + n_looks)
            await settled()
            return len(draws) - n

        assert await quiet() == 0  # nothing written: nothing read, nothing drawn
        job.writer.checkpoint()  # a new file renamed in, the same points: read, not drawn
        assert await quiet() == 0
        assert screen.view.surface.n_done == 3
        for _ in range(4):
            next(points)
        n = len(draws)
        job.writer.flush()
        await wait_for(pilot, lambda: "7/16 done, running" in status())
        await settled()
        assert len(draws) == n + 1 and screen.view.surface.n_done == 7
        points.close()  # the run ends (as on Ctrl-C): its lock is released
        await wait_for(pilot, lambda: "7/16 done" in status() and "running" not in status())
        assert await quiet() == 0


def create(target):
    from tui_landscape.app import create_app

    return create_app(target)


@sync
async def test_the_browser_shows_a_running_file_and_follows_it(tmp_path, monkeypatch):
    from textual.widgets import DataTable

    monkeypatch.setattr(runs, "WATCH_SECONDS", 0.05)
    finished_file(tmp_path / "a.h5")
    app_ = create(tmp_path)
    async with app_.run_test(size=(120, 30)) as pilot:
        await listed(pilot)
        table = app_.screen.query_one(DataTable)

        def done(i: int) -> str:  # the "done" cell of row i (at 120 columns, the 9th)
            labels = [str(c.label) for c in table.columns.values()]
            return str(table.get_row_at(i)[labels.index("done")]) if table.row_count > i else ""

        assert table.row_count == 1 and done(0) == "100%"
        w = Writer(tmp_path / "b.h5")  # a new file: the folder changed, listed without F5
        try:
            await wait_for(pilot, lambda: done(1) == "running 0%")
            w.record(7)  # a flush: this row is described again, in place
            await wait_for(pilot, lambda: done(1) == "running 44%")
            assert done(0) == "100%" and table.row_count == 2
        finally:
            w.close()
        await wait_for(pilot, lambda: done(1) == "44%")  # the run ended: not running


def test_plot_watch_draws_as_points_arrive_and_ends_when_complete(tmp_path, monkeypatch):
    import tui_landscape.cli.plot as plot_cli

    monkeypatch.setattr(runs, "WATCH_SECONDS", 0.02)
    f = tmp_path / "w.h5"
    g = Grid.parse(*GRID)
    w = SurfaceWriter.create(f, g, ["train_loss"], Provenance(), "d.h5")
    frames: list[int] = []  # the done counts the watch printed
    real_frame = plot_cli._frame

    def frame(s, *a, **kw):
        frames.append(s.n_done)
        return real_frame(s, *a, **kw)

    monkeypatch.setattr(plot_cli, "_frame", frame)

    def write() -> None:
        # Each step waits for the watch to draw the last: every step must show.
        for step in range(4):
            for k in range(4 * step, 4 * step + 4):
                w.record(k, {"train_loss": float(k)})
            w.flush()
            deadline = time.monotonic() + 30
            while frames[-1:] != [4 * step + 4] and time.monotonic() < deadline:
                time.sleep(0.01)
        w.close()

    t = threading.Thread(target=write)
    t.start()
    r = CliRunner().invoke(cli, ["plot", str(f), "--watch", "--width", "60", "--height", "12"])
    t.join()
    assert r.exit_code == 0, r.output
    assert frames[0] in (0, 4) and frames[-1] == 16 and frames == sorted(set(frames)), frames
    assert r.output.count("points (") == len(frames) >= 4
    assert f"{f}: 16/16 points (100%)" in r.output


def test_plot_watch_gives_up_on_an_unfinished_file_no_run_writes(tmp_path, monkeypatch):
    import tui_landscape.cli.plot as plot_cli

    monkeypatch.setattr(runs, "WATCH_SECONDS", 0.02)
    monkeypatch.setattr(plot_cli, "WATCH_GRACE_SECONDS", 0.2)
    g = Grid.parse(*GRID)
    with SurfaceWriter.create(tmp_path / "u.h5", g, ["train_loss"], Provenance(), "d.h5") as w:
        w.record(0, {"train_loss": 1.0})
    r = CliRunner().invoke(cli, ["plot", str(tmp_path / "u.h5"), "--watch", "--width", "60"])
    assert r.exit_code == 1 and "no run has written it" in r.output, r.output
    assert f"compute --resume {tmp_path / 'u.h5'}" in " ".join(r.output.split())
    r = CliRunner().invoke(cli, ["plot", str(tmp_path / "u.h5"), "--watch", "-e", "x.png"])
    assert r.exit_code == 2 and "--export" in r.output
    # Not there, and no run starts it: said so after the grace, not "resume it".
    r = CliRunner().invoke(cli, ["plot", str(tmp_path / "none.h5"), "--watch"])
    assert r.exit_code == 2 and "does not exist and no run has started it" in r.output, r.output
    # There and not a surface, with no run writing it: said at once (it waited the grace).
    monkeypatch.setattr(plot_cli, "WATCH_GRACE_SECONDS", 3600.0)
    with h5py.File(tmp_path / "foreign.h5", "w") as h:
        h["data"] = [1, 2, 3]
    r = CliRunner().invoke(cli, ["plot", str(tmp_path / "foreign.h5"), "--watch"])
    assert r.exit_code != 0 and "not complete" not in r.output, r.output
    assert "foreign.h5" in r.output


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_plot_watch_redraws_in_place_at_80x24_and_says_when_the_writer_dies(tmp_path):
    """In a real 80x24 terminal: every frame replaces the last (nothing scrolls into the
    history, the status line stays on the top row), and a killed writer is said."""
    f = tmp_path / "w.h5"
    w = Writer(f, ("-1:1:9", "-1:1:9"))
    session = f"tlw{int(time.time() * 1000) % 10**8}"
    py, repo = shlex.quote(sys.executable), shlex.quote(str(REPO))
    cmd = (f"env -u COLUMNS -u LINES PYTHONPATH={repo} {py} -m tui_landscape plot "
           f"{shlex.quote(str(f))} --watch; sleep 30")  # fmt: skip

    def pane(history: bool = False) -> list[str]:
        args = ["tmux", "capture-pane", "-p", "-t", session, *(["-S", "-"] if history else [])]
        return subprocess.run(args, capture_output=True, text=True).stdout.splitlines()

    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd],
                   check=True)  # fmt: skip
    try:
        for n in (5, 20, 30):
            w.record(n)
            done = {5: "5/81", 20: "25/81", 30: "55/81"}[n]
            wait_until(lambda d=done: pane() and d in pane()[0], 60, f"the frame for {done}")
            assert "running" in pane()[0]
        # Nothing scrolled into the history: each frame replaced the last.
        assert len([x for x in pane(history=True) if x.strip()]) <= 24
        assert any("train_loss" in line for line in pane()[1:4])  # the plot's title in sight
        w.proc.kill()
        wait_until(lambda: "has stopped" in pane()[0], 30, "the status saying the run stopped")
        assert "55/81" in pane()[0]
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        w.proc.kill()


def test_ctrl_c_ends_plot_watch_cleanly(tmp_path):
    f = tmp_path / "c.h5"
    w = Writer(f)
    try:
        w.record(2)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        p = subprocess.Popen(
            [sys.executable, "-m", "tui_landscape", "plot", str(f), "--watch", "--width", "60"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=sigint_as_in_a_terminal,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        line = ""
        while "points (" not in line and time.monotonic() < deadline:
            line = p.stdout.readline()
        assert "2/16 points (12%), running" in line
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 130 and "Traceback" not in err, err
    finally:
        w.close()


def test_a_detached_run_reads_the_saved_config_or_one_written_beside_its_output(tmp_path):
    cfg = job_config(tmp_path)
    out = tmp_path / "o.h5"
    saved = tmp_path / "setup.toml"
    saved.write_text(config_to_toml(cfg))
    assert config_file_for(cfg, out, saved) == saved
    saved.write_text(config_to_toml(job_config(tmp_path, "-1:1:5")))  # saved, then changed
    written = config_file_for(cfg, out, saved)
    assert written == tmp_path / "o.h5.toml" and load_config(written) == cfg
    w = Writer(out)  # another run writes it: refused before anything starts
    try:
        with pytest.raises(Exception, match="being computed by another process"):
            start_detached(cfg, out, saved, cwd=tmp_path)
        assert not (tmp_path / "o.h5.log").exists()
    finally:
        w.close()


def _compute_pid(out: Path) -> int | None:
    """The detached ``compute`` writing ``out``, found by its command line."""
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"compute" in argv and str(out).encode() in argv:
                return int(d.name)
    return None


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]) != "Z"
    except OSError:
        return False


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_detached_run_outlives_the_app_and_its_terminal_in_tmux(tmp_path):
    """ctrl+g in the real app, then q and the terminal gone (tmux's hang-up): the run goes
    on in its own session, `ps` follows it, and it finishes the file with its log."""
    out = tmp_path / "d.h5"
    cfg = load_config(
        None,
        ["model.arch=digits_cnn", "model.checkpoint=", "grid.x=-1:1:10", "grid.y=-1:1:10",
         "data.splits=['train']", "compute.device=cpu", "compute.flush_seconds=0.2",
         f"output.path='{out}'"],
    )  # fmt: skip
    (tmp_path / "setup.toml").write_text(config_to_toml(cfg))
    session = f"tld{int(time.time() * 1000) % 10**8}"
    # Under pytest, readline has put COLUMNS and LINES in the environment: not the pane's.
    cmd = (f"cd {tmp_path} && env -u COLUMNS -u LINES PYTHONPATH={REPO} "
           f"{sys.executable} -m tui_landscape tui setup.toml")  # fmt: skip
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "140", "-y", "44", cmd],
                   check=True)  # fmt: skip

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                              capture_output=True, text=True).stdout  # fmt: skip

    def until(condition, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"{what}: {screen()}"
            time.sleep(0.1)

    pid = None
    try:
        until(lambda: "^g Detach" in screen(), "the setup screen")
        subprocess.run(["tmux", "send-keys", "-t", session, "C-g"], check=True)
        until(lambda: _compute_pid(out) is not None, "the detached run")
        pid = _compute_pid(out)
        until(lambda: "Compare marked" in screen(), "the browser")  # the app shows its folder
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        until(lambda: "Compare marked" not in screen(), "the app quitting")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)  # SIGHUP
    try:
        assert pid is not None and _alive(pid), "the run died with the app"
        assert os.getsid(pid) == pid  # its own session: no terminal's hang-up reaches it
        log = tmp_path / "d.h5.log"
        size = log.stat().st_size
        assert log.read_text().startswith("# ") and "compute" in log.read_text()
        seen: list[int] = []  # the done counts `ps` saw while it ran
        deadline = time.monotonic() + 90
        while _alive(pid) and time.monotonic() < deadline:
            st = runs.run_status(out)
            if st is not None and st.total and st.done not in seen:
                seen.append(st.done)
            time.sleep(0.05)
        assert not _alive(pid), "the run did not finish in time"
        # It went on, points arriving: on an idle machine the run may end between two looks,
        # so the finished file's count closes the list.
        seen.append(read_surface(out).n_done)
        assert len(set(seen)) >= 2 and seen == sorted(seen), seen
        r = CliRunner().invoke(cli, ["ps", str(tmp_path)])
        assert "No surface is being written" in r.output
        assert read_surface(out).n_done == 100
        assert log.stat().st_size > size and "Computed 100 points" in log.read_text()
        # The setup was saved unchanged: the run read it, and wrote no config of its own.
        assert not (tmp_path / "d.h5.toml").exists()
    finally:
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)


def test_a_surface_file_beside_the_run_files_is_all_the_browser_lists(tmp_path):
    """The log and config a detached run leaves are not surfaces."""
    from tui_landscape.screens.listing import surface_files

    finished_file(tmp_path / "s.h5")
    (tmp_path / "s.h5.log").write_text("log")
    (tmp_path / "s.h5.toml").write_text("")
    assert [p.name for p in surface_files(tmp_path)] == ["s.h5"]


@sync
async def test_ctrl_g_on_the_setup_starts_the_run_detached_and_shows_its_folder(
    tmp_path, monkeypatch
):
    """What ctrl+g starts and writes (the tmux test follows such a run to its end): a
    ``compute`` process of its own on a config that names the setup's output, its command in
    the log the toast names; and the app shows the output's folder."""
    import re
    import shlex

    from textual.widgets import Button, Input

    from tests.test_tui import setup_config
    from tui_landscape.screens.browser import BrowserScreen
    from tui_landscape.screens.setup import SetupScreen

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    app_ = create(setup_config(tmp_path, "-1:1:3"))
    pid = None
    try:
        async with app_.run_test(size=(140, 44)) as pilot:
            await wait_for(pilot, lambda: isinstance(app_.screen, SetupScreen))
            s = app_.screen
            s.query_one("#out", Input).value = "sub/x.h5"
            await wait_for(pilot, lambda: not s.query_one("#run", Button).disabled)
            cfg = s.cfg
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: isinstance(app_.screen, BrowserScreen))
            assert app_.screen.folder == tmp_path / "sub"
            toast = next(n.message for n in app_._notifications if "detached" in n.message)
        m = re.fullmatch(r"Running x\.h5 detached \(pid (\d+)\); log: (.+)", toast)
        assert m, toast
        pid, log = int(m[1]), Path(m[2])
        # The log's first line is the command the process runs: compute CONFIG --out FILE.
        argv = shlex.split(log.read_text().splitlines()[0].split(" $ ", 1)[1])
        assert argv[1:4] == ["-m", "tui_landscape", "compute"] and argv[5:] == [
            "--out", str(tmp_path / "sub" / "x.h5")
        ]  # fmt: skip
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1] == [
            a.encode() for a in argv
        ]  # that process, started and in its own session (it outlives the app)
        assert os.getsid(pid) == pid
        # The config it runs is the setup, its output named: the file resumes the same surface.
        want = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, path="sub/x.h5"))
        assert load_config(Path(argv[4])) == want
    finally:
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)
