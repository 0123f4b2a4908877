"""Two gloo ranks under torchrun give exactly the single-process surface, resuming as well."""

from __future__ import annotations

import subprocess
import sys

from engine.config import load_config
from engine.formats import read_surface
from engine.run import prepare
from tests.conftest import REPO
from tests.test_pool import BASE, DIGITS_2D, same


def test_two_ranks_finish_a_surface_started_by_one_process(tmp_path):
    cfg = load_config(DIGITS_2D, BASE)
    prepare(cfg, tmp_path / "one.h5").run()
    # Seven points by one process, stopped (as by Ctrl-C), then two ranks resume it.
    job = prepare(cfg, tmp_path / "two.h5")
    points = job.points()
    for _ in range(7):
        next(points)
    points.close()
    assert read_surface(tmp_path / "two.h5").n_done == 7
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    cmd += ["-m", "tui_landscape", "compute", str(DIGITS_2D), "--out", str(tmp_path / "two.h5")]
    for o in BASE:
        cmd += ["--set", o]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 ranks (cpu)" in r.stdout and "13 to go" in r.stdout, r.stdout
    same(read_surface(tmp_path / "two.h5"), read_surface(tmp_path / "one.h5"))


def test_an_error_on_rank_0_ends_every_rank_with_one_line(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    cmd += ["-m", "tui_landscape", "compute", str(DIGITS_2D), "--out", str(tmp_path / "x.txt")]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode != 0
    assert r.stderr.count("Expected the output to end in .h5") == 2, r.stderr[-3000:]
    # torchrun prints its own report of the failed ranks; none of our code's frames show.
    assert "engine/" not in r.stderr and "tui_landscape/cli" not in r.stderr
