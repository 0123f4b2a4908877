"""The worker pool, the journal and faults: same surfaces as one process, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from engine.config import load_config
from engine.errors import LandscapeError
from engine.formats import SurfaceWriter, journal_path, read_surface
from engine.run import prepare
from tests.conftest import REPO, sigint_as_in_a_terminal, wait_until

# An untrained digits CNN (no recipe to train) on a small grid and 128 samples a split:
# seconds per surface, most of it the start-up of processes.
BASE = [
    "model.checkpoint=",
    "data.subset=128",
    "grid.x=-1:1:5",
    "grid.y=-1:1:4",
    "compute.device=cpu",
    "compute.flush_seconds=0.05",
    "compute.checkpoint_seconds=0.2",
]
DIGITS_2D = REPO / "sample_configs" / "digits_2d.toml"


def surface_of(path: Path, cfg_path: Path = DIGITS_2D, overrides=(), on_point=None):
    cfg = load_config(cfg_path, [*BASE, *overrides])
    job = prepare(cfg, path)
    summary = job.run(on_point)
    return read_surface(path), summary, job


def same(a, b) -> None:
    assert np.array_equal(a.completed, b.completed)
    assert a.values.keys() == b.values.keys()
    for n in a.values:
        np.testing.assert_array_equal(a.values[n], b.values[n], err_msg=n)  # NaN == NaN here


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return surface_of(tmp_path_factory.mktemp("single") / "one.h5")[0]


def test_two_workers_give_the_single_process_surface(tmp_path, single):
    s, summary, _ = surface_of(tmp_path / "two.h5", overrides=["compute.workers=2"])
    assert summary.workers == 2 and summary.done == summary.total == 20
    assert not journal_path(tmp_path / "two.h5").exists()  # folded at the end
    same(s, single)
    assert s.attrs["device"] == "cpu, cpu"


def test_a_killed_worker_is_replaced_and_the_surface_completes(tmp_path, single):
    killed = []

    def kill_one(r):
        if not killed:
            w = job_ref[0].pool.workers[0]
            os.kill(w.proc.pid, signal.SIGKILL)
            killed.append(w.proc.pid)

    cfg = load_config(DIGITS_2D, [*BASE, "compute.workers=2"])
    job = prepare(cfg, tmp_path / "k.h5")
    job_ref = [job]
    summary = job.run(kill_one)
    assert killed and job.pool.restarted >= 1
    assert summary.done == 20 and not summary.failed
    same(read_surface(tmp_path / "k.h5"), single)


FRAGILE = """
import torch
from torch import nn


class Fragile(nn.Module):
    '''Raises (or gives NaN) once its weights are moved far from where they started.'''

    def __init__(self, mode="raise"):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(64, 10)
        self.register_buffer("start", self.lin.weight.detach().clone())
        self.mode = mode

    def forward(self, x):
        far = (self.lin.weight - self.start).norm() > 0.75 * self.start.norm()
        out = self.lin(x.flatten(1))
        if bool(far):
            if self.mode == "raise":
                raise RuntimeError("too far")
            return out * float("nan")
        return out
"""


def fragile_surface(tmp_path: Path, mode: str, workers: int) -> tuple:
    (tmp_path / "nets.py").write_text(FRAGILE)
    sys.path.insert(0, str(tmp_path))
    try:
        cfg = load_config(
            REPO / "sample_configs" / "digits_1d.toml",
            [
                "model.arch=nets:Fragile",
                f"model.kwargs={{mode = '{mode}'}}",
                "model.checkpoint=",
                "grid.x=-1:1:5",
                "compute.device=cpu",
                "compute.retries=1",
                f"compute.workers={workers}",
            ],
        )
        job = prepare(cfg, tmp_path / f"{mode}{workers}.h5")
        summary = job.run()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("nets", None)
    return read_surface(job.path), summary


@pytest.mark.parametrize("workers", [1, 2])
def test_a_point_that_raises_is_reported_failed_and_the_rest_finish(tmp_path, workers, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the workers import nets.py too
    s, summary = fragile_surface(tmp_path, "raise", workers)
    # x = -1 and x = 1 move the weights by their own norm: past 0.75 of it, they raise.
    assert sorted(summary.failed) == [0, 4] and summary.done == 3
    assert summary.failed[0] == "RuntimeError: too far"
    assert sorted(s.failed) == [0, 4] and list(s.completed) == [False, True, True, True, False]


def test_nan_results_survive_the_journal_and_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    s, summary = fragile_surface(tmp_path, "nan", 1)
    assert not summary.failed and summary.non_finite == 2
    assert s.completed.all()
    assert np.isnan(s.values["train_loss"][[0, 4]]).all()
    assert np.isfinite(s.values["train_loss"][1:4]).all()


def test_the_journal_is_read_and_a_torn_line_ignored(tmp_path):
    cfg = load_config(DIGITS_2D, BASE)
    job = prepare(cfg, tmp_path / "j.h5")
    w = job.writer
    nan = float("nan")
    w.record(3, dict.fromkeys(w.names, nan))
    w.record(5, {n: 1.5 for n in w.names})
    w.record_failure(7, "RuntimeError: x")
    w.flush()
    # A process killed while writing a line leaves it without its newline.
    with open(journal_path(w.path), "ab") as f:
        f.write(b'{"k": 9, "v": {"train_lo')
    s = read_surface(w.path)  # a reader sees journalled points before any checkpoint
    assert s.n_done == 2 and s.completed.ravel()[[3, 5]].all()
    assert np.isnan(s.values["train_loss"].ravel()[3]) and s.failed == {7: "RuntimeError: x"}
    # The writer is 'killed' (lock released without a checkpoint); a resume folds the journal.
    w._journal.close()
    w._lock.close()
    again = SurfaceWriter.resume(read_surface(w.path))
    assert again.completed.ravel()[[3, 5]].all() and again.failed == {7: "RuntimeError: x"}
    again.close()
    assert not journal_path(w.path).exists()
    s = read_surface(w.path)
    assert s.n_done == 2 and np.isnan(s.values["test_acc"].ravel()[3])
    assert s.values["test_acc"].ravel()[5] == 1.5 and s.failed == {7: "RuntimeError: x"}


def test_a_journal_of_another_file_is_ignored(tmp_path):
    cfg = load_config(DIGITS_2D, BASE)
    job = prepare(cfg, tmp_path / "a.h5")
    job.writer.close()
    journal_path(tmp_path / "a.h5").write_text('{"id": "someone-else"}\n{"k": 1, "v": {}}\n')
    assert read_surface(tmp_path / "a.h5").n_done == 0


def points_done(path: Path) -> int:
    """Points saved in ``path`` and its journal so far (-1: no surface there yet)."""
    try:
        return read_surface(path).n_done
    except LandscapeError:  # not created yet
        return -1


def test_sigkill_at_five_moments_then_resume_gives_the_uninterrupted_surface(tmp_path):
    """Five SIGKILLs, each at a moment a condition marks (while it starts, while it evaluates,
    right after a checkpoint), a resume after each, then the run to its end: the file opens
    cleanly after every kill, no finished point is lost, and the result equals an
    uninterrupted run."""
    overrides = [*BASE, "grid.x=-1:1:15", "grid.y=-1:1:15"]
    reference = tmp_path / "ref.h5"
    cfg = load_config(DIGITS_2D, overrides)
    prepare(cfg, reference).run()
    out = tmp_path / "killed.h5"
    cmd = [sys.executable, "-m", "tui_landscape", "compute", str(DIGITS_2D), "--out", str(out)]
    for o in overrides:
        cmd += ["--set", o]

    def stamp() -> tuple:
        return (out.stat().st_size, out.stat().st_mtime_ns) if out.exists() else None

    # When to kill each run, given the points done and the file's stamp when it started.
    moments = {
        "start-up (the interpreter started)": lambda n, st: True,
        "start-up (the surface file exists)": lambda n, st: out.exists(),
        "evaluation (a point done)": lambda n, st: points_done(out) > n,
        "the file rewritten (a checkpoint or a resume's fold)": lambda n, st: stamp() != st,
        "evaluation (three points done)": lambda n, st: points_done(out) >= n + 3,
    }
    done = [0]
    for what, moment in moments.items():
        n, st = max(points_done(out), 0), stamp()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(partial(moment, n, st), 120, f"the kill's moment, {what}", proc)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        if out.exists():
            s = read_surface(out)  # opens cleanly after every kill
            assert s.n_done >= done[-1], what
            done.append(s.n_done)
        else:
            done.append(0)
    print("points done after each kill:", done)
    assert done[3] > done[2] and done[5] >= done[4] + 3  # evaluation kills came late enough
    assert done[-1] < 225
    prepare(cfg, out).run()  # the resume to the end, here: a process start less
    same(read_surface(out), read_surface(reference))


def group_lifetime(pgid: int, limit: float) -> float | None:
    """Seconds until no process of the group is left, or None if some outlive ``limit``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def pool_run_under_way(out, points: int, stdout) -> tuple[subprocess.Popen, list[str]]:
    """``compute`` with 2 workers on a points x points grid, in its own process group (as a
    terminal's foreground job), once its first point is saved; and its overrides. All the
    samples: points slow enough that the run is still under way when the test stops it."""
    sets = [*BASE, "data.subset=0", f"grid.x=-1:1:{points}", f"grid.y=-1:1:{points}"]
    cmd = [sys.executable, "-m", "tui_landscape", "compute", str(DIGITS_2D), "--out", str(out)]
    for o in [*sets, "compute.workers=2"]:
        cmd += ["--set", o]
    proc = subprocess.Popen(
        cmd, stdout=stdout, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=sigint_as_in_a_terminal,
    )  # fmt: skip
    try:
        wait_until(lambda: points_done(out) > 0, 120, "the first point saved", proc)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, sets


def test_ctrl_c_ends_the_workers_and_leaves_a_resumable_file(tmp_path):
    out = tmp_path / "c.h5"
    proc, sets = pool_run_under_way(out, 11, subprocess.PIPE)  # Ctrl-C reaches every process
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "run the same command to resume" in " ".join(stdout.split())
    if group_lifetime(proc.pid, 10) is None:  # no worker outlives the parent
        pytest.fail("worker processes are still running after Ctrl-C")
    s = read_surface(out)
    assert 0 < s.n_done < 121
    # Resumable: here in one process (three process starts less than the command's pool).
    prepare(load_config(DIGITS_2D, sets), out).run()
    assert read_surface(out).n_done == 121


def test_workers_end_at_once_and_quietly_when_the_parent_is_killed(tmp_path):
    proc, _ = pool_run_under_way(tmp_path / "k.h5", 21, subprocess.DEVNULL)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)  # the parent only: its workers are left to notice
    proc.wait()
    lived = group_lifetime(proc.pid, 5)
    assert lived is not None and lived < 3, f"workers outlived their killed parent: {lived}"
    stderr = proc.stderr.read()  # every writer (the workers too) has closed the pipe
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
