"""`compute --resume FILE.h5` (the stored config, --set on top) and `compute --detach`."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import h5py
import numpy as np
from typer.testing import CliRunner

from engine.config import config_to_toml, load_config
from engine.formats import lock_holder, read_surface
from engine.run import prepare
from tests.conftest import REPO, wait_until
from tui_landscape.cli import app as cli

SETS = [
    "model.arch=digits_mlp", "model.checkpoint=", "data.subset=64", "grid.x=-1:1:5",
    "grid.y=-1:1:3", "data.splits=['train']", "compute.device=cpu", "directions.seed=3",
]  # fmt: skip


def _toml(path: Path) -> None:
    path.write_text(config_to_toml(load_config(None, SETS)))


def _unfinished(out: Path, points: int = 4) -> None:
    """A file whose run stopped after ``points`` points (as after a kill or Ctrl-C)."""
    job = prepare(load_config(None, SETS), out)
    it = job.points()
    for _ in range(points):
        next(it)
    it.close()  # checkpoints the finished points, releases the lock


def test_resume_continues_from_the_stored_config_without_repeating_the_flags(chdir_tmp):
    out = chdir_tmp / "s.h5"
    _unfinished(out)
    assert read_surface(out).n_done == 4
    r = CliRunner().invoke(cli, ["compute", "--resume", str(out)])
    assert r.exit_code == 0, r.output
    s = read_surface(out)
    assert s.n_done == 15
    fresh = chdir_tmp / "fresh.h5"
    _toml(chdir_tmp / "c.toml")
    r = CliRunner().invoke(cli, ["compute", "c.toml", "-o", str(fresh)])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(s.values["train_loss"], read_surface(fresh).values["train_loss"],
                               rtol=1e-6)  # fmt: skip


def test_resume_takes_sets_that_do_not_change_values_and_refuses_those_that_do(chdir_tmp):
    out = chdir_tmp / "s.h5"
    _unfinished(out)
    r = CliRunner().invoke(cli, ["compute", "--resume", str(out), "-s", "directions.seed=4"])
    assert r.exit_code == 1 and "different config" in r.output and "directions.seed" in r.output
    r = CliRunner().invoke(cli, ["compute", "--resume", str(out), "-s", "compute.flush_seconds=1"])
    assert r.exit_code == 0, r.output


def test_resume_refuses_what_it_cannot_continue(chdir_tmp):
    runner = CliRunner()
    r = runner.invoke(cli, ["compute", "--resume", "nowhere.h5"])
    assert r.exit_code == 2 and "no surface file at nowhere.h5" in r.output
    ref = chdir_tmp / "ref.h5"  # the reference code's layout: no config stored
    with h5py.File(ref, "w") as f:
        f["xcoordinates"] = np.linspace(-1, 1, 3)
        f["train_loss"] = np.zeros(3)
    r = runner.invoke(cli, ["compute", "--resume", str(ref)])
    assert r.exit_code == 2 and "stores no config" in r.output, r.output
    r = runner.invoke(cli, ["compute", "c.toml", "--resume", str(ref)])
    assert r.exit_code == 2 and "leave out CONFIG" in r.output
    r = runner.invoke(cli, ["compute"])
    assert r.exit_code == 2 and "Missing CONFIG" in r.output
    (chdir_tmp / "junk.h5").write_bytes(b"not hdf5 at all")
    r = runner.invoke(cli, ["compute", "--resume", "junk.h5"])
    assert r.exit_code != 0 and "Traceback" not in r.output


def test_detach_starts_the_run_in_its_own_session_and_returns(chdir_tmp, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    out = chdir_tmp / "d.h5"
    t0 = time.monotonic()
    _toml(chdir_tmp / "c.toml")
    r = CliRunner().invoke(cli, ["compute", "c.toml", "-s", "compute.flush_seconds=0.5",
                                 "-o", str(out), "--detach"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "in the background" in r.output and "d.h5.log" in r.output
    pid = int(re.search(r"\(pid\s+(\d+)\)", r.output).group(1))
    assert os.getsid(pid) == pid != os.getsid(0)  # a session of its own (torch still loads)
    assert time.monotonic() - t0 < 30  # it returned, it did not compute
    log = chdir_tmp / "d.h5.log"
    assert log.is_file() and (chdir_tmp / "d.h5.toml").is_file()  # --set keys: config beside

    def finished() -> bool:
        return out.is_file() and lock_holder(out) is None and read_surface(out).n_done == 15

    wait_until(finished, 240, "the detached run finishing its file")
    text = log.read_text()
    assert "compute" in text.splitlines()[0] and "Traceback" not in text, text
