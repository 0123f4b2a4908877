"""Hostile input: files that others wrote, planted to run code or to break a reader.

Each case ends in one clear line (a ``LandscapeError``) and does nothing the file asks for.
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from engine.config import DataConfig
from engine.data import load_splits
from engine.errors import LandscapeError
from tests.conftest import REPO, wait_until
from tests.test_datasets import write_cifar10


class _Payload:
    """Unpickling this runs a shell command: what a planted 'CIFAR batch' would do."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_batch_with_a_code_payload_is_refused_and_not_run(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "payload-ran"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    with open(batch, "wb") as f:
        pickle.dump({"data": _Payload(marker), "labels": []}, f)
    with pytest.raises(LandscapeError) as e:
        load_splits(DataConfig(dataset="cifar10", root=str(tmp_path)))
    msg = str(e.value)
    assert str(batch) in msg and "is not a CIFAR batch" in msg and "system" in msg
    assert "\n" not in msg
    assert not marker.exists()


def test_cifar_batch_that_is_not_a_dict_is_one_line(tmp_path):
    write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(LandscapeError, match="is not a CIFAR batch .a list, not a dict."):
        load_splits(DataConfig(dataset="cifar10", root=str(tmp_path), splits=("test",)))


@pytest.mark.parametrize(("protocol", "numpy1"), [(2, True), (2, False), (4, False), (5, False)])
def test_cifar_batches_of_every_protocol_and_numpy_load(tmp_path, protocol, numpy1):
    """The real files are protocol-2 pickles made with numpy 1.x (``numpy.core``)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        raw = pickle.dumps({"data": data, "labels": [3, 7], "batch_label": name}, protocol)
        if numpy1:  # protocol 2 names globals as text lines, so the name can be swapped
            raw = raw.replace(b"numpy._core", b"numpy.core")
            assert b"numpy.core.multiarray\n_reconstruct" in raw
        (folder / name).write_bytes(raw)
    s = load_splits(DataConfig(dataset="cifar10", root=str(tmp_path), raw=True))
    assert s["test"].y.tolist() == [3, 7]
    np.testing.assert_allclose(s["test"].x.flatten(1).numpy() * 255, data, atol=1e-3)


@pytest.mark.parametrize("spec", ["-1e308:1e308:5", "1:1.0000000000000002:5", "0:5e-324:4"])
def test_grid_whose_points_are_not_finite_and_distinct_is_refused(spec):
    from engine.errors import ConfigError
    from engine.grid import parse_axis

    with pytest.raises(ConfigError, match="not finite and distinct") as e:
        parse_axis(spec)
    assert "`grid.x`" in str(e.value)


@pytest.mark.parametrize("spec", ["mps", "xla", "cuda:7"])
def test_a_device_this_machine_lacks_is_one_line(spec):
    from engine.devices import resolve_device
    from engine.errors import ConfigError

    if spec == "mps":
        import torch

        if torch.backends.mps.is_available():
            pytest.skip("this machine has an MPS device")
    with pytest.raises(ConfigError, match="`compute.device`") as e:
        resolve_device(spec)
    assert "\n" not in str(e.value)


class _WrongBatch:
    """A model that returns one row whatever the batch: every point would fail alike."""

    @staticmethod
    def make():
        import torch
        from torch import nn

        class M(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(64, 10)

            def forward(self, x):
                return self.fc(x.flatten(1)).mean(0, keepdim=True)

        torch.manual_seed(0)
        return M()


def test_a_model_whose_output_has_the_wrong_batch_size_is_refused_before_any_file(tmp_path):
    from engine.config import load_config
    from engine.run import prepare

    cfg = load_config(None, ["model.arch=tests.test_hostile:wrong_batch_model", "grid.x=-1:1:5"])
    with pytest.raises(LandscapeError, match=r"outputs of shape \(1, 10\) for a batch of 2"):
        prepare(cfg, tmp_path / "s.h5")
    assert not list(tmp_path.iterdir())


def wrong_batch_model():
    return _WrongBatch.make()


def _tui(*args):
    from typer.testing import CliRunner

    from tui_landscape.cli import app

    return CliRunner().invoke(app, ["tui", *map(str, args)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[grid]\nz = 1\n", "grid.z"), ("[grid\n", "is not valid TOML")],
)
def test_app_with_a_bad_config_is_one_line_before_it_starts(tmp_path, text, expected):
    (tmp_path / "bad.toml").write_text(text)
    r = _tui(tmp_path / "bad.toml")
    assert r.exit_code == 2 and expected in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_app_with_a_damaged_surface_is_one_line_before_it_starts(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    r = _tui(tmp_path / "bad.h5")
    assert r.exit_code == 1 and "bad.h5" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_app_that_ended_on_an_unhandled_error_exits_non_zero(tmp_path, monkeypatch):
    """The real app, run headless by ``tui``, meets an error nothing handles (planted in its
    browser): Textual ends the app, and ``tui`` exits with its non-zero code."""
    import threading

    import tui_landscape.app
    from tui_landscape.screens.browser import BrowserScreen

    def broken(self):
        raise RuntimeError("planted: the browser cannot list its folder")

    monkeypatch.setattr(BrowserScreen, "on_mount", broken)
    real, apps = tui_landscape.app.create_app, []

    def headless(target):  # the CLI's own app; CliRunner gives it no terminal to draw on
        app = real(target)
        run = app.run
        app.run = lambda: run(headless=True)
        apps.append(app)
        return app

    monkeypatch.setattr(tui_landscape.app, "create_app", headless)
    # The deadline: an app that did not crash would run on; this ends it with code 0.
    timer = threading.Timer(60, lambda: apps[0].call_from_thread(apps[0].exit))
    timer.start()
    try:
        r = _tui(tmp_path)
    finally:
        timer.cancel()
    assert apps[0].return_code == 1
    assert r.exit_code == 1 and "RuntimeError: planted" in r.output, r.output


@pytest.mark.parametrize(
    "text", ["a = " + "[" * 5000 + "]" * 5000, "a = " + "{b = " * 5000 + "1" + "}" * 5000]
)
def test_toml_nested_thousands_deep_is_one_line(tmp_path, text):
    from typer.testing import CliRunner

    from tui_landscape.cli import app

    (tmp_path / "deep.toml").write_text(text)
    r = CliRunner().invoke(app, ["compute", str(tmp_path / "deep.toml")])
    assert r.exit_code == 2 and "nested too deeply" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_a_set_value_nested_thousands_deep_is_one_line():
    from engine.config import load_config
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match=r"`--set data.mean`: the value is nested too deeply"):
        load_config(None, ["data.mean=" + "[" * 5000 + "]" * 5000])


@pytest.mark.parametrize("item", ["data.std=[nan]", "data.mean=[inf]", "data.std=[-inf]"])
def test_non_finite_normalisation_is_refused(item):
    from engine.config import load_config
    from engine.errors import ConfigError

    key = item.split("=")[0]
    other = "data.mean=[0.5]" if key == "data.std" else "data.std=[0.5]"
    with pytest.raises(ConfigError, match="value to be finite"):
        load_config(None, [item, other])


# --- surface files, side files and journals that someone else wrote ---------------------------

DIGITS = ["model.checkpoint=recipe:digits_cnn", "data.subset=64"]
# The tests from here on run recipe:digits_cnn: trained once per session, before any test of
# this file (conftest), so that no test's duration depends on the order they run in.
pytestmark = pytest.mark.usefixtures("digits_cnn_recipe")
CONFIG_1D = REPO / "sample_configs" / "digits_1d.toml"


def _cli(*args):
    from typer.testing import CliRunner

    from tui_landscape.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _compute_args(out, grid="grid.x=-1:1:3") -> list:
    return ["compute", CONFIG_1D, "--out", out, *[a for o in [*DIGITS, grid] for a in ("--set", o)]]


def _one_clean_line(r) -> str:
    out = r.output
    assert "Traceback" not in out and "\x1b" not in out, out
    assert len(out.strip().splitlines()) == 1, out
    return out


def _job(out, extra=()):
    from engine.config import load_config
    from engine.run import prepare

    return prepare(load_config(None, [*DIGITS, "grid.x=-1:1:5", *extra]), out)


def test_the_output_is_locked_before_it_is_read(tmp_path):
    """Two runs on one output: the second is refused while the first holds it (it used to
    check first, lock later, and replace the first's surface and directions)."""
    out = tmp_path / "s.h5"
    first = _job(out)
    with pytest.raises(LandscapeError, match="being computed by another process"):
        _job(out, ["directions.seed=7"])
    first.run()
    with pytest.raises(LandscapeError, match="different config"):
        _job(out, ["directions.seed=7"]).run()


def test_two_computes_started_together_keep_one_surface(tmp_path):
    """Two runs of different configs started together on one output: one takes the lock,
    the other is refused while the first is under way (its grid takes minutes), and the
    file is the first's. The first is then stopped (SIGTERM) and keeps what it did."""
    import signal
    import subprocess
    import sys

    from engine.formats import read_surface

    out = tmp_path / "s.h5"
    args = [*map(str, _compute_args(out, "grid.x=-1:1:100001")), "--set", "directions.seed="]
    cmds = [[sys.executable, "-m", "tui_landscape", *args[:-1], args[-1] + s] for s in "12"]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in cmds]
    try:
        wait_until(lambda: any(p.poll() is not None for p in procs), 300, "a run refused")
        loser = next(p for p in procs if p.poll() is not None)
        winner = procs[1 - procs.index(loser)]
        assert winner.poll() is None, "the winner ended: its grid was to take minutes"
        assert loser.returncode == 1
        err = loser.stderr.read().decode()
        assert "Traceback" not in err and "being computed by another process" in err, err
        # The lock is taken before the batch-size probe: stopped before its first point, the
        # winner rightly writes nothing, so wait for its file (a race on a loaded machine).
        wait_until(lambda: out.exists() or winner.poll() is not None, 300, "the first points")
        winner.send_signal(signal.SIGTERM)
        assert winner.wait(timeout=60) == 143
    finally:
        for p in procs:
            p.kill()
            p.communicate()
    seed = (1, 2)[procs.index(winner)]
    assert f"seed = {seed}" in read_surface(out).attrs["config"]


@pytest.mark.parametrize("side", ["h5.tmp", "h5.journal", "h5.lock", "directions.h5"])
def test_a_link_planted_where_a_side_file_goes_is_refused(tmp_path, side):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / f"s.{side}").symlink_to(target)
    r = _cli(*_compute_args(tmp_path / "s.h5"))
    assert r.exit_code == 1
    assert "symbolic link" in _one_clean_line(r)
    assert target.read_text() == "keep me"


def test_a_direction_file_of_other_work_is_not_replaced_without_overwrite(tmp_path):
    other = tmp_path / "s.directions.h5"
    other.write_bytes(b"someone's notes, not a direction file")
    args = _compute_args(tmp_path / "s.h5")
    r = _cli(*args)
    assert r.exit_code == 1 and "does not hold this run's directions" in _one_clean_line(r)
    assert other.read_bytes() == b"someone's notes, not a direction file"
    assert not (tmp_path / "s.h5").exists() and not (tmp_path / "s.h5.lock").exists()
    assert _cli(*args, "--overwrite").exit_code == 0
    assert other.read_bytes() != b"someone's notes, not a direction file"


ESC = "\x1b]0;pwned\x07\x1b[2J"


def _surface(tmp_path, name="s.h5", **attrs):
    """A small finished surface of ours, then ``attrs`` written over its root attributes."""
    import h5py

    out = tmp_path / name
    _job(out).run()
    with h5py.File(out, "r+") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
    return out


def test_escape_sequences_and_markup_in_a_file_reach_no_terminal(tmp_path):
    out = _surface(
        tmp_path, tool_version=ESC, dir_type="[link=https://example.com]click[/link]",
        device="\x9b31m", created="[/bold]",
    )  # fmt: skip
    r = _cli("info", out)
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "\x07" not in r.output and "\x9b" not in r.output
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in r.output  # shown, written out
    assert "[link=https://example.com]click[/link]" in r.output  # literally, not a link
    assert "[/bold]" in r.output


@pytest.mark.parametrize(
    "line",
    [
        '{"k": true, "v": {"train_loss": 0.5, "train_acc": 1, "test_loss": 0.5, "test_acc": 1}}',
        '{"k": 1, "v": {}}',
        '{"k": 1, "v": [1, 2]}',
        '{"k": 1, "v": null}',
        '{"k": 1, "v": {"train_loss": "x", "train_acc": 1, "test_loss": 1, "test_acc": 1}}',
        '{"k": 99999999999, "v": {"train_loss": 1, "train_acc": 1, "test_loss": 1, "test_acc": 1}}',
        '{"k": 1, "error": 5}',
        "[1, 2, 3]",
        '"k"',
        '{"k": ' + "[" * 5000 + "]" * 5000 + "}",
    ],
)
def test_a_journal_line_that_is_not_a_record_is_skipped_with_its_line_number(
    tmp_path, line, caplog
):
    import h5py

    from engine.formats import journal_path, read_surface, surface_info

    out = tmp_path / "s.h5"
    job = _job(out)
    job.writer.close()  # a file with nothing finished
    with h5py.File(out, "r") as f:
        file_id = f.attrs["id"]
    good = '{"k": 2, "v": {"train_loss": 0.5, "train_acc": 1.0, "test_loss": 0.5, "test_acc": 1.0}}'
    journal_path(out).write_text(f'{{"id": "{file_id}"}}\n{line}\n{good}\n')
    with caplog.at_level("WARNING"):
        s = read_surface(out)
    assert s.n_done == 1 and s.completed.ravel()[2] and not s.failed
    assert "line 2 skipped" in caplog.text
    assert surface_info(out).done == 1


def test_a_journal_whose_header_is_not_an_object_is_ignored(tmp_path):
    from engine.formats import journal_path, read_surface

    out = tmp_path / "s.h5"
    _job(out).writer.close()
    journal_path(out).write_text('[1]\n{"k": 0, "error": "x"}\n')
    assert read_surface(out).n_done == 0 and not read_surface(out).failed


def test_a_resume_over_a_damaged_journal_ends_equal_to_a_clean_run(tmp_path):
    import h5py

    from engine.formats import journal_path, read_surface

    clean = tmp_path / "clean.h5"
    _job(clean).run()
    out = tmp_path / "s.h5"
    _job(out).writer.close()
    with h5py.File(out, "r") as f:
        file_id = f.attrs["id"]
    row = json.dumps({"train_loss": 0.0, "train_acc": 100.0, "test_loss": 0.0, "test_acc": 100})
    journal_path(out).write_text(
        f'{{"id": "{file_id}"}}\n{{"k": true, "v": {row}}}\n'
        '{"k": 3, "v": {}}\n{"k": 4, "v": null}\n{"k": 1, "error": ["not text"]}\n'
    )
    _job(out).run()
    a, b = read_surface(out), read_surface(clean)
    for name in b.values:
        np.testing.assert_array_equal(a.values[name], b.values[name])
    assert a.n_done == 5 and not journal_path(out).exists()


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ({"xcoordinates": [0.0, np.nan, 1.0, 2.0, 3.0]}, "not finite and strictly increasing"),
        ({"xcoordinates": [0.0, 0.0, 1.0, 2.0, 3.0]}, "not finite and strictly increasing"),
        ({"failed_index": [7], "failed_error": ["boom"]}, "not point indices of its grid"),
        ({"failed_index": [1], "failed_error": ["a", "b"]}, "do not pair up"),
        ({"@config": 5}, "config attribute is not text"),
    ],
)
@pytest.mark.parametrize("command", ["info", "plot", "compare", "compute"])
def test_a_malformed_surface_is_one_line_in_every_command(tmp_path, edit, reason, command):
    import h5py

    out = tmp_path / "s.h5"
    _job(out).run()
    with h5py.File(out, "r+") as f:
        for name, value in edit.items():
            if name.startswith("@"):
                f.attrs[name[1:]] = value
                continue
            if name in f:
                del f[name]
            text = isinstance(value[0], str)
            f[name] = np.asarray(value, dtype=h5py.string_dtype() if text else None)
    args = {
        "info": ["info", out],
        "plot": ["plot", out],
        "compare": ["compare", out, out],
        "compute": ["compute", CONFIG_1D, "--out", out, *[a for o in [*DIGITS, "grid.x=-1:1:5"]
                                              for a in ("--set", o)]],
    }[command]  # fmt: skip
    r = _cli(*args)
    assert r.exit_code == 1
    assert "is not a readable surface: " in _one_clean_line(r) and reason in r.output


def test_the_surface_file_does_not_grow_with_checkpoints(tmp_path):
    from engine.formats import Provenance, SurfaceWriter
    from engine.grid import Grid

    p = tmp_path / "s.h5"
    w = SurfaceWriter.create(
        p, Grid.parse("-1:1:11", "-1:1:11"), ["train_loss"], Provenance(), "d.h5"
    )
    w.record_failure(3, "x" * 200)
    sizes = []
    for k in range(200):
        w.record(k % 121, {"train_loss": float(k)})
        w.checkpoint()
        sizes.append(p.stat().st_size)
    w.close()
    assert max(sizes) - min(sizes[5:]) < 512, (min(sizes), max(sizes))


def test_the_app_lists_a_folder_of_damaged_and_hostile_files_and_opens_none_wrongly(tmp_path):
    """Pilot over a folder others wrote: a truncated file, NaN coordinates, markup that does not
    parse and escape sequences in attributes and in a file name. Everything is listed (the bad
    ones as unreadable), nothing crashes, and no escape byte or markup reaches the screen."""
    import asyncio

    from textual.widgets import DataTable

    from tests.test_tui import small_file, wait_for
    from tui_landscape.app import create_app
    from tui_landscape.screens.browser import BrowserScreen

    _hostile_folder(tmp_path)
    small_file(tmp_path / "\x1b[2Jname.h5")

    async def drive():
        app = create_app(tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen))
            await app.workers.wait_for_complete()
            await pilot.pause()
            table = app.screen.query_one(DataTable)
            rows = {
                str(table.get_row_at(i)[1]): [str(c) for c in table.get_row_at(i)[2:]]
                for i in range(table.row_count)
            }
            why = {r.path.name: r.detail for r in app.screen.listed}  # the status line's
            await pilot.press("down", "down", "down", "down", "enter")  # open a bad one
            await pilot.pause()
            return app, rows, why

    app, rows, why = asyncio.run(drive())
    assert set(rows) == {"\\x1b[2Jname.h5", "good.h5", "markup.h5", "nan.h5", "truncated.h5"}
    # At 120 columns the model, loss and direction kind come first (3 columns), then kind...
    assert rows["markup.h5"][3 + 4] == "[/bold]"  # shown as written
    assert rows["nan.h5"][3] == rows["truncated.h5"][3] == "unreadable"
    assert why["nan.h5"].startswith("nan.h5 is not a readable surface: its xcoord")
    assert app.return_code in (None, 0)


def test_a_rerun_on_a_finished_surface_leaves_no_side_file_but_the_lock(tmp_path):
    out = tmp_path / "s.h5"
    args = _compute_args(out)
    assert _cli(*args).exit_code == 0
    r = _cli(*args)
    assert r.exit_code == 0 and "already complete" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.directions.h5", "s.h5", "s.h5.lock"]


def _hostile_folder(folder):
    """A folder as others leave it: a good file, markup and escape sequences in attributes, NaN
    coordinates, a truncated file."""
    import h5py

    from tests.test_tui import small_file

    small_file(folder / "good.h5")
    small_file(folder / "markup.h5")
    with h5py.File(folder / "markup.h5", "r+") as f:
        f.attrs["created"] = "[/bold]"
        f.attrs["tool_version"] = ESC
    small_file(folder / "nan.h5")
    with h5py.File(folder / "nan.h5", "r+") as f:
        f["xcoordinates"][3] = np.nan
    data = (folder / "good.h5").read_bytes()
    (folder / "truncated.h5").write_bytes(data[: len(data) // 2])


def test_the_real_app_in_tmux_over_a_folder_of_damaged_files(tmp_path):
    import shutil
    import subprocess
    import sys
    import time

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    _hostile_folder(tmp_path)
    session = f"th{int(time.time() * 1000) % 10**8}"
    cmd = f"env -u COLUMNS -u LINES {sys.executable} -m tui_landscape tui {tmp_path}; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd],
                   check=True)  # fmt: skip
    try:

        def pane() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout  # fmt: skip

        deadline, screen = time.monotonic() + 60, ""
        while time.monotonic() < deadline and not ("truncated.h5" in screen and "q Quit" in screen):
            screen = pane()
            time.sleep(0.2)
        assert "good.h5" in screen and screen.count("unreadable") == 2, screen
        assert "Traceback" not in screen
        title = subprocess.run(["tmux", "display-message", "-p", "-t", session, "#{pane_title}"],
                               capture_output=True, text=True).stdout  # fmt: skip
        assert "pwned" not in title
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "q Quit" in (screen := pane()):
            time.sleep(0.2)
        assert "Traceback" not in screen and "q Quit" not in screen, screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


# --- issue 23: files and locks ---


@pytest.fixture
def small_disk(tmp_path):
    """``mount(name, size)``: a real tmpfs of that size under ``tmp_path`` (root only), so a
    full disk is a full disk; unmounted afterwards. Skips where it cannot mount one."""
    import shutil
    import subprocess

    mounted = []

    def mount(name: str, size: str):
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a small tmpfs needs root and mount(8)")
        d = tmp_path / name
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                           capture_output=True, text=True)  # fmt: skip
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(d)
        return d

    yield mount
    for d in reversed(mounted):
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _pages(n: int) -> int:
    return -(-n // 4096)


def _disk_full_line(r, path) -> str:
    """The run's one line about the full disk, naming the file; no traceback, no h5py noise."""
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "Exception ignored" not in r.output, r.output
    lines = [line for line in r.output.splitlines() if "the disk is full" in line]
    assert len(lines) == 1 and str(path) in lines[0], r.output
    return lines[0]


def test_a_full_disk_at_the_checkpoint_keeps_every_journaled_point(tmp_path, small_disk):
    """A disk with room for the run's files and journal but not for the checkpoint's copy:
    the run used to rename the broken copy over the file, delete the journal and exit 0 with
    every point lost. Now it fails in one line, the journal keeps the points, and a rerun on a
    bigger disk resumes them (computing none again)."""
    import subprocess

    from engine.formats import journal_path, read_surface

    grid = "grid.x=-1:1:21"
    sized = tmp_path / "sized.h5"  # the same run on a roomy disk: sizes, and the values
    assert _cli(*_compute_args(sized, grid)).exit_code == 0
    room = _pages((tmp_path / "sized.directions.h5").stat().st_size)
    room += _pages(max(sized.stat().st_size, 12288)) + 3  # the lock, the journal, one page
    disk = small_disk("disk", f"{room * 4}k")
    out = disk / "s.h5"
    args = [*_compute_args(out, grid), "--set", "compute.checkpoint_seconds=1000"]
    r = _cli(*args)
    line = _disk_full_line(r, out)
    assert str(journal_path(out)) in line
    assert read_surface(out).n_done == 21  # the file's none, plus the journal's 21
    subprocess.run(["mount", "-o", "remount,size=1m", str(disk)], check=True)
    r = _cli(*args)
    assert r.exit_code == 0 and "Nothing to compute" in r.output, r.output
    assert not journal_path(out).exists()
    np.testing.assert_array_equal(
        read_surface(out).values["train_loss"], read_surface(sized).values["train_loss"]
    )


def test_a_full_disk_when_the_journal_grows_is_one_line_and_keeps_what_was_flushed(small_disk):
    from engine.formats import Provenance, SurfaceWriter, journal_path, read_surface
    from engine.grid import Grid

    disk = small_disk("disk", "32k")
    out = disk / "s.h5"
    g = Grid.parse("-1:1:21", "-1:1:21")
    w = SurfaceWriter.create(out, g, ["train_loss"], Provenance(), "d.h5")
    for k in range(10):
        w.record(k, {"train_loss": float(k)})
    w.flush()
    (disk / "ballast").write_bytes(b"x" * (os.statvfs(disk).f_bavail * 4096 - 256))
    for k in range(10, g.size):
        w.record(k, {"train_loss": float(k)})
    with pytest.raises(LandscapeError, match="the disk is full") as e:
        w.flush()
    assert "\n" not in str(e.value) and str(journal_path(out)) in str(e.value)
    with pytest.raises(LandscapeError, match="the disk is full"):
        w.close()
    # The failed append was cut back to its last whole line: the 10 flushed points read.
    assert read_surface(out).n_done == 10


_FSIZE = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process
from engine.errors import LandscapeError
from engine.formats import Provenance, SurfaceWriter
from engine.grid import Grid
out, when = sys.argv[1], sys.argv[2]
g = Grid.parse("-1:1:31", "-1:1:31")
limit = lambda n: resource.setrlimit(resource.RLIMIT_FSIZE, (n, resource.RLIM_INFINITY))
try:
    if when == "projection":  # a sibling: trajectory's projection file
        import numpy as np
        from engine.formats import write_projection
        limit(4096)
        write_projection(out, np.zeros((2000, 2)))
    if when == "create":
        limit(4096)
    w = SurfaceWriter.create(out, g, ["train_loss"], Provenance(), "d.h5")
    for k in range(10):
        w.record(k, {"train_loss": float(k)})
    w.flush()
    limit(4096)  # the journal of 10 points fits; that of every point does not
    for k in range(10, g.size):
        w.record(k, {"train_loss": float(k)})
    w.flush()
except LandscapeError as e:
    print(e)
    sys.exit(1)
"""


@pytest.mark.parametrize("when", ["create", "journal", "projection"])
def test_a_file_size_limit_is_one_line_naming_the_file(tmp_path, when):
    """``ulimit -f``: pages of h5py tracebacks and a SIGSEGV, or "[Errno 27] File too large"
    naming no file. Now one line that names it; what was flushed before stays readable."""
    import resource
    import signal
    import subprocess
    import sys

    from engine.formats import journal_path, read_surface

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))

    out = tmp_path / "s.h5"
    r = subprocess.run([sys.executable, "-c", _FSIZE, str(out), when], capture_output=True,
                       text=True, timeout=120, preexec_fn=limited)  # fmt: skip
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and "ulimit -f" in lines[0], r.stdout
    if when in ("create", "projection"):
        assert str(out) in lines[0] and not out.exists() and not (tmp_path / "s.h5.tmp").exists()
    else:
        assert str(journal_path(out)) in lines[0] and read_surface(out).n_done == 10


def test_a_file_size_limit_in_compute_is_one_line_and_a_rerun_without_it_works(tmp_path):
    import resource
    import signal
    import subprocess
    import sys

    assert _cli(*_compute_args(tmp_path / "warm.h5")).exit_code == 0  # the recipe is cached

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, resource.RLIM_INFINITY))

    out = tmp_path / "s.h5"
    cmd = [sys.executable, "-m", "tui_landscape", *map(str, _compute_args(out))]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=limited)
    assert r.returncode == 1, (r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert len(err.splitlines()) == 1 and "ulimit -f" in err, err
    assert str(tmp_path / "s.directions.h5") in err  # the file that outgrew the limit
    assert not (tmp_path / "s.directions.h5").exists()  # no half file to refuse the rerun
    assert _cli(*_compute_args(out)).exit_code == 0


def test_an_output_replaced_mid_run_is_not_folded_into(tmp_path):
    """Another surface put over the output while a run writes it: the checkpoint copied the
    stranger, merged its own arrays in and exited 0. Now it refuses in one line and keeps
    its journal; the other file is left as it was. A copy of the run's own file (the same
    id, another inode) is refused too."""
    import shutil

    from engine.formats import Provenance, SurfaceWriter, journal_path, read_surface
    from engine.grid import Grid

    g = Grid.parse("-1:1:5")
    out, other = tmp_path / "s.h5", tmp_path / "other.h5"
    with SurfaceWriter.create(other, g, ["train_loss"], Provenance(config="other"), "d.h5"):
        pass
    for stranger in ("another surface", "a copy of itself"):
        w = SurfaceWriter.create(out, g, ["train_loss"], Provenance(config="mine"), "d.h5")
        w.record(0, {"train_loss": 1.0})
        w.flush()
        if stranger == "a copy of itself":
            shutil.copy(out, tmp_path / "copy.h5")
            os.replace(tmp_path / "copy.h5", out)
        else:
            shutil.copy(other, tmp_path / "copy.h5")
            os.replace(tmp_path / "copy.h5", out)
        with pytest.raises(LandscapeError, match="was replaced") as e:
            w.checkpoint()
        assert "\n" not in str(e.value) and str(journal_path(out)) in str(e.value)
        with pytest.raises(LandscapeError, match="was replaced"):
            w.close()
        assert journal_path(out).stat().st_size > 0, stranger  # its point is kept
        if stranger == "another surface":
            s = read_surface(out)
            assert s.provenance.config == "other" and s.n_done == 0
        journal_path(out).unlink()
        out.unlink()


def test_two_detached_starts_on_one_output_refuse_the_second_at_once(tmp_path):
    """Both wrote FILE.h5.toml before either child held the lock, so one run computed the
    other's config. The first start now holds the output's lock and hands it to its run."""
    import time

    from engine.config import load_config
    from engine.formats import lock_holder, read_surface, run_config_path
    from tui_landscape.detach import start_detached

    def cfg(seed: int):
        return load_config(None, ["model.arch=digits_mlp", "model.checkpoint=",
                                  "grid.x=-1:1:3", "data.splits=['train']",
                                  "compute.device=cpu", f"directions.seed={seed}"])  # fmt: skip

    out = tmp_path / "o.h5"
    first = start_detached(cfg(1), out, cwd=tmp_path)
    try:
        assert lock_holder(out) == first.pid  # the run, not this process, is named
        with pytest.raises(LandscapeError, match="being computed by another process"):
            start_detached(cfg(2), out, cwd=tmp_path)
        assert load_config(run_config_path(out)) == cfg(1)
        deadline = time.monotonic() + 240
        while lock_holder(out) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lock_holder(out) is None, first.log.read_text()
        log = first.log.read_text()
        assert "Surface:" in log and "Traceback" not in log, log
        assert "seed = 1" in read_surface(out).provenance.config
    finally:
        if lock_holder(out) == first.pid:
            os.kill(first.pid, 15)


def test_a_lock_on_another_file_with_the_same_inode_number_is_no_one_s(small_disk):
    """On tmpfs (and overlay, btrfs) the holder was found by the inode number alone, so an
    unrelated flock elsewhere gave a false "being computed by pid N". Two fresh tmpfs give
    their first files the same inode number: a lock on one is not a lock on the other."""
    import fcntl

    from engine.formats import check_output, lock_holder

    a, b = small_disk("a", "64k"), small_disk("b", "64k")
    (a / "s.h5.lock").write_bytes(b"")
    (b / "s.h5.lock").write_bytes(b"")
    sa, sb = os.stat(a / "s.h5.lock"), os.stat(b / "s.h5.lock")
    if sa.st_ino != sb.st_ino:
        pytest.skip("this kernel numbers tmpfs inodes differently")
    fd = os.open(a / "s.h5.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert lock_holder(a / "s.h5") == os.getpid()
        assert lock_holder(b / "s.h5") is None
        assert check_output(b / "s.h5") == b / "s.h5"
    finally:
        os.close(fd)
    assert lock_holder(a / "s.h5") is None


def test_lock_holder_confirms_a_twin_inode_through_proc(tmp_path, monkeypatch):
    """Where the kernel's list names only an inode number on another anonymous device, the
    holder is confirmed through /proc/PID/fd and fdinfo; a lock it does not hold is no one's."""
    import fcntl

    from engine.formats import lock as lock_mod
    from engine.formats import lock_holder

    text = (
        "1: FLOCK  ADVISORY  WRITE 4242 00:2a:77 0 EOF\n"
        "1: -> FLOCK  ADVISORY  WRITE 99 00:2a:77 0 EOF\n"
        "2: POSIX  ADVISORY  WRITE 17 fe:00:5 0 EOF\n"
        "3: FLOCK  ADVISORY  READ 18 fe:00:6 0 EOF\n"
        "4: FLOCK  ADVISORY  WRITE junk\n"
    )
    assert lock_mod.parse_locks(text) == [((0, 0x2A), 77, 4242)]
    lock = tmp_path / "s.h5.lock"
    lock.write_bytes(b"")
    st = os.stat(lock)
    # This process on a twin: another device, same inode number, and it holds no lock here.
    twin = [((0, 999), st.st_ino, os.getpid())]
    monkeypatch.setattr(lock_mod, "_proc_locks", lambda: twin)
    monkeypatch.setattr(lock_mod.os, "major", lambda dev: 0)  # as tmpfs, overlay, btrfs
    assert lock_holder(tmp_path / "s.h5") is None
    fd = os.open(lock, os.O_RDWR)  # now it does hold this very file: confirmed
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert lock_holder(tmp_path / "s.h5") == os.getpid()
    finally:
        os.close(fd)


# --- issue 23: user losses ---
# Every batch of a user loss is checked (item 4), a loss that changes the model is undone per
# point and named (item 6), a model on the meta device is refused (item 14). The data's last
# batch (rows 8-11) carries a marker, so a loss misbehaves there and not on the first batch.


def _user_data():
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, generator=g)
    x[8:, 0] = 100.0  # the marker of the last batch
    return x, torch.randint(0, 2, (12,), generator=g)


def _user_compute(loss, model=None, x="-1:1:2", **config):
    import torch

    import tui_landscape as tl

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2) if model is None else model
    cfg = {"data.batch_size": 4, "compute.device": "cpu", **config}
    return tl.compute(model, _user_data(), loss=loss, x=x, progress=False, config=cfg)


def _ce(model, batch):
    import torch.nn.functional as F

    x, y = batch
    return F.cross_entropy(model(x), y, reduction="none"), (x[:, 0] == 100.0)


def _inf_count(model, batch):
    loss, _ = _ce(model, batch)
    return {"loss": loss, "count": loss * 0 + float("inf")}


def _negative_later(model, batch):
    loss, last = _ce(model, batch)
    return {"loss": loss, "count": 1.0 - 2.0 * last.double()}  # -1 on the last batch: no sync


def _nan_later(model, batch):
    loss, last = _ce(model, batch)
    return {"loss": loss, "count": (loss * 0 + 1).masked_fill(last, float("nan"))}


def _one_later(model, batch):
    loss, last = _ce(model, batch)
    return {"loss": loss[:1] if bool(last.any()) else loss}


def _two_columns_later(model, batch):
    loss, last = _ce(model, batch)
    return {"loss": loss[:, None].expand(-1, 2) if bool(last.any()) else loss}


def _metric_first_only(model, batch):
    loss, last = _ce(model, batch)
    return {"loss": loss} if bool(last.any()) else {"loss": loss, "extra": loss * 2}


def _count_first_only(model, batch):
    loss, last = _ce(model, batch)
    return {"loss": loss} if bool(last.any()) else {"loss": loss, "count": loss * 0 + 2}


@pytest.mark.parametrize(
    ("fn", "says"),
    [
        (_inf_count, "returned a `count` of inf for a sample; every count must be finite and > 0"),
        (_negative_later, "returned a `count` of -1 for a sample; every count must be finite"),
        (_nan_later, "returned a `count` of nan for a sample; every count must be finite"),
        (_one_later, "returned a tensor of shape (1,) for `loss`; it must give one value per"),
        (_two_columns_later, "returned a tensor of shape (4, 2) for `loss`; it must give one"),
        (_metric_first_only, "returned the keys ['loss'] on a later batch but ['loss', 'extra']"),
        (_count_first_only, "returned the keys ['loss'] on a later batch but ['loss', 'count']"),
    ],
    ids=["inf-count", "negative-later", "nan-later", "shape-1", "shape-B2", "metric", "count"],
)
def test_a_user_loss_is_checked_on_every_batch_not_only_the_first(fn, says):
    """Each was stored as a result without a word (issue 23, item 4): now its points fail
    with the line the first batch would have given."""
    with pytest.raises(LandscapeError) as e:
        _user_compute(fn)
    msg = str(e.value)
    assert says in msg and "\n" not in msg, msg
    assert fn.__qualname__ in msg  # names the loss


def test_the_per_batch_check_passes_a_good_weighted_loss_unchanged():
    """Counts that differ between batches but are all good pass the check, and the surface is
    the count-weighted mean of a plain loop over the samples."""
    import torch

    def weighted(model, batch):
        loss, last = _ce(model, batch)
        return {"loss": loss * 2, "count": (loss * 0 + 2).masked_fill(last, 4.0)}

    surf = _user_compute(weighted, x="-1:1:3")
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x, y = _user_data()
    with torch.no_grad():
        per = torch.nn.functional.cross_entropy(model(x), y, reduction="none").double()
    count = torch.full((12,), 2.0, dtype=torch.float64)
    count[8:] = 4.0
    centre = surf["train_loss"][len(surf["train_loss"]) // 2]
    assert centre == pytest.approx(float((per * 2).sum() / count.sum()), rel=1e-6)


class _Counted:
    """A model with a plain buffer, which the loss below bumps (issue 23, item 6)."""

    def __new__(cls):
        import torch

        m = torch.nn.Linear(3, 2)
        m.register_buffer("hits", torch.ones(()))
        return m


def _bumps_a_buffer(model, batch):
    loss, _ = _ce(model, batch)
    out = {"loss": loss + model.hits}  # the value depends on the buffer: order would show
    model.hits.add_(16)
    return out


def _plain_plus_one(model, batch):
    loss, _ = _ce(model, batch)
    return {"loss": loss + 1.0}


def test_a_loss_that_mutates_a_buffer_is_undone_per_point_and_named_once():
    import torch

    torch.manual_seed(0)
    model = _Counted()
    with pytest.warns(RuntimeWarning) as caught:
        surf = _user_compute(_bumps_a_buffer, model=model, x="-1:1:3")
    named = [w for w in caught if "_bumps_a_buffer" in str(w.message)]
    assert len(named) == 1 and "the buffer hits" in str(named[0].message)
    assert float(model.hits) == 1.0  # the caller's model as it came
    torch.manual_seed(0)
    plain = _user_compute(_plain_plus_one, model=_Counted(), x="-1:1:3")
    # every point saw hits == 1 on every batch but the bumps within one pass: same as +1
    # on the first batch of each pass, +17, +33 on the next: a fixed sum per point
    assert list(surf["train_loss"]) == pytest.approx(
        [v + (0 + 16 + 32) / 3 for v in plain["train_loss"]], rel=1e-6
    )


def test_a_loss_that_calls_train_is_put_back_in_eval_mode_each_point_and_named():
    import torch

    def trains(model, batch):
        model.train()
        loss, _ = _ce(model, batch)
        return {"loss": loss}

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2)
    )
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []

    def probe(model, batch):
        seen.append(model.training)  # the mode each call starts in
        return trains(model, batch)

    with pytest.warns(RuntimeWarning, match="probe.*changed the mode of"):
        _user_compute(probe, model=model)
    assert not model.training and not any(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # every pass (the check's and each point's) starts in eval mode again
    assert seen[0] is False and seen.count(False) >= 3


def test_a_model_on_the_meta_device_is_refused_in_one_line():
    import torch

    with pytest.raises(LandscapeError) as e:
        _user_compute(None, model=torch.nn.Linear(3, 2, device="meta"))
    msg = str(e.value)
    assert "meta device" in msg and "'weight'" in msg and "\n" not in msg


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_the_per_batch_check_adds_no_device_sync_on_cuda():
    """The counts are checked on the device: summing a loss over batches syncs nowhere; the
    point's one read of its sums is the only sync."""
    import torch

    from engine.evaluate import loss_sums, read_sums

    def weighted(model, batch):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(model(x), y, reduction="none")
        return {"loss": loss, "count": loss * 0 + 2, "m": loss}

    model = torch.nn.Linear(3, 2).cuda()
    x, y = (t.cuda() for t in _user_data())
    batches = [(x[i : i + 4], y[i : i + 4]) for i in range(0, 12, 4)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        sums, _ = loss_sums(weighted, model, batches, "cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert read_sums(sums, "weighted")["count"] == 24.0


# --- issue 23: inputs and signals ---

FRESH = ["model.checkpoint=", "data.subset=64"]  # the digits CNN at its initial weights


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("dtype", ["int64", "bool", "uint8"])
def test_an_integer_or_bool_checkpoint_is_refused_not_cast(tmp_path, suffix, dtype):
    """load_state_dict would copy 0/1 or integers into float weights without a word."""
    import torch
    from safetensors.torch import save_file
    from torch import nn

    from engine.models.checkpoint import load_checkpoint

    model = nn.Linear(3, 2)
    sd = {k: v.to(getattr(torch, dtype)) for k, v in model.state_dict().items()}
    path = tmp_path / f"ints{suffix}"
    save_file(sd, path) if suffix == ".safetensors" else torch.save(sd, path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(LandscapeError, match=f"dtype mismatch: weight {dtype} in checkpoint vs "
                       "float32 in model") as e:  # fmt: skip
        load_checkpoint(model, path)
    assert "\n" not in str(e.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # Within a kind a copy only rounds: float16 weights load into float32.
    save_file({k: v.half() for k, v in before.items()}, tmp_path / "half.safetensors")
    load_checkpoint(model, tmp_path / "half.safetensors")


def test_a_checkpoint_naming_a_blocked_module_is_refused_naming_the_global(tmp_path):
    import torch

    from engine.models.checkpoint import read_state_dict

    marker = tmp_path / "payload-ran"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": _Payload(marker)}, tmp_path / "e.pt")
    with pytest.raises(LandscapeError) as e:
        read_state_dict(tmp_path / "e.pt")
    msg = str(e.value)
    assert "was refused" in msg and "system" in msg and "would import or run" in msg, msg
    assert "\n" not in msg and "\x1b" not in msg
    assert not marker.exists()


def _remote_code_folder(folder, marker, model_type="tiny-evil"):
    folder.mkdir()
    config = {
        "model_type": model_type,
        "architectures": ["EvilModel"],
        "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")


@pytest.mark.parametrize("model_type", ["tiny-evil", "gpt2"])
def test_an_hf_folder_with_remote_code_is_refused_without_a_prompt(tmp_path, model_type):
    """transformers asked '[y/N]' on a terminal and ran the folder's code on 'y'."""
    import subprocess
    import sys

    pytest.importorskip("transformers")
    marker = tmp_path / "remote-code-ran"
    _remote_code_folder(tmp_path / "evil", marker, model_type)
    cmd = [sys.executable, "-m", "tui_landscape", "compute", str(CONFIG_1D), "--out",
           str(tmp_path / "s.h5"), "--set", f"model.arch=hf:{tmp_path / 'evil'}", *[
           a for o in FRESH for a in ("--set", o)]]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=120, env=env, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "asks to run its own code (evil.EvilConfig" in lines[0], r.stderr
    assert "trust_remote_code" in lines[0] and "[y/N]" not in r.stdout + r.stderr
    assert not marker.exists() and not (tmp_path / "s.h5").exists()


def test_trust_remote_code_must_be_a_boolean(tmp_path):
    from engine.errors import ConfigError
    from engine.models import build_model

    pytest.importorskip("transformers")
    _remote_code_folder(tmp_path / "evil", tmp_path / "m")
    with pytest.raises(ConfigError, match="`model.kwargs.trust_remote_code` to be true or false"):
        build_model(f"hf:{tmp_path / 'evil'}", {"trust_remote_code": "yes"})


def _failing_where(monkeypatch, fails):
    """Make grid points fail where ``fails(a)`` holds (the rest evaluate for real)."""
    from engine.landscape import Landscape

    real = Landscape.evaluate_many

    def evaluate_many(self, points):
        if any(fails(a) for a, _ in points):
            raise RuntimeError("boom")
        return real(self, points)

    monkeypatch.setattr(Landscape, "evaluate_many", evaluate_many)


@pytest.mark.parametrize("command", ["compute", "hessian"])
def test_a_first_point_that_fails_is_one_line_not_a_zero_division(tmp_path, monkeypatch, command):
    _failing_where(monkeypatch, lambda a: True)
    args = [command, CONFIG_1D, "--out", tmp_path / "s.h5"]
    for o in [*FRESH, "grid.x=-1:1:3", "compute.retries=0"]:
        args += ["--set", o]
    r = _cli(*args)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "ZeroDivision" not in r.output, r.output
    assert "3 of 3 points failed on every try" in r.output, r.output
    assert "Computed no point" in r.output and "already complete" not in r.output, r.output


def test_a_region_failing_at_the_grid_start_does_not_block_the_rest(tmp_path, monkeypatch):
    """The first 15 points fail: the run tries points elsewhere and finishes the other 16."""
    from engine.config import load_config
    from engine.formats import read_surface
    from engine.run import prepare

    _failing_where(monkeypatch, lambda a: a < -1e-9)
    cfg = load_config(None, [*FRESH, "grid.x=-1:1:31", "compute.retries=0"])
    summary = prepare(cfg, tmp_path / "s.h5").run()
    assert sorted(summary.failed) == list(range(15)) and summary.done == 16
    s = read_surface(tmp_path / "s.h5")
    assert s.n_done == 16 and sorted(s.failed) == list(range(15))


def test_a_loss_that_always_fails_still_stops_early_with_one_line(tmp_path, monkeypatch):
    from engine.config import load_config
    from engine.formats import read_surface
    from engine.run import ABORT_AFTER_FAILURES, PROBE_POINTS, prepare

    _failing_where(monkeypatch, lambda a: True)
    cfg = load_config(None, [*FRESH, "grid.x=-1:1:41", "compute.retries=0"])
    job = prepare(cfg, tmp_path / "s.h5")
    with pytest.raises(LandscapeError, match="spread over the grid, with none finished") as e:
        job.run()
    assert "\n" not in str(e.value) and "RuntimeError: boom" in str(e.value)
    tried = read_surface(tmp_path / "s.h5").failed
    assert len(tried) == ABORT_AFTER_FAILURES + PROBE_POINTS
    assert max(tried) >= 35 and any(15 <= k <= 25 for k in tried)  # the far end and the middle


USER_DATA = '''
import time

import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset


class Faulty(Dataset):
    """Eight good items, then item 5 raises what the test names."""

    def __init__(self, error=None, length=8, good=8):
        self.error, self.length, self.good = error, length, good

    def __len__(self):
        if isinstance(self.length, BaseException):
            raise self.length
        return self.length

    def __getitem__(self, i):
        if i == 5 and self.error is not None:
            raise self.error
        if i >= self.good:
            raise IndexError(f"index {i} out of range")
        return torch.full((8,), float(i)), i % 3


class Oops(Exception):
    pass


def key_error():
    return Faulty(KeyError("image"))


def index_error():
    return Faulty(IndexError("list index out of range"))


def zero_division():
    return Faulty(ZeroDivisionError("division by zero"))


def custom():
    return Faulty(Oops("corrupt record"))


def negative_len():
    return Faulty(length=-3)


def raising_len():
    return Faulty(length=RuntimeError("no index file"))


def lying_len():
    return Faulty(length=100, good=10)


def good():
    return Faulty()


def nothing():
    return None


class Many(Faulty):
    """A data set that fetches a batch at once (as Hugging Face datasets do)."""

    def __getitems__(self, indices):
        return [self[i] for i in indices]


def many_key_error():
    return Many(KeyError("image"))


def bad_collate(items):
    raise ValueError("my collate broke")


class Endless(IterableDataset):
    """Says 32 items and never ends."""

    def __init__(self, sized=True):
        self.sized = sized

    def __iter__(self):
        i = 0
        while True:
            yield torch.full((8,), float(i % 7)), i % 3
            i += 1

    def __len__(self):
        if not self.sized:
            raise TypeError("object of type 'Endless' has no len()")
        return 32


def endless():
    return Endless()


class Slow(Dataset):
    """Items that take a while: a streamed pass lasts long enough to be killed in it."""

    def __len__(self):
        return 64

    def __getitem__(self, i):
        time.sleep(0.01)
        return torch.full((8,), float(i % 5)), i % 3


def slow():
    return Slow()


def mlp():
    torch.manual_seed(0)
    return nn.Linear(8, 3)
'''


@pytest.fixture
def user_data(tmp_path):
    (tmp_path / "udata.py").write_text(USER_DATA)
    return str(tmp_path / "udata.py")


def _within(seconds, fn, *args, **kwargs):
    """``fn(...)``'s result or exception, failing the test if it has not ended in ``seconds``
    (a hang must not hang the suite)."""
    import threading

    box = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the test below
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} did not end within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _user_cfg(user_data, fn, **kw):
    return DataConfig(dataset=f"{user_data}:{fn}", splits=("train",), **kw)


@pytest.mark.parametrize(
    ("fn", "said"),
    [
        ("key_error", "reading item 5 raised KeyError: 'image'"),
        ("index_error", "reading item 5 raised IndexError: list index out of range"),
        ("zero_division", "reading item 5 raised ZeroDivisionError: division by zero"),
        ("custom", "reading item 5 raised Oops: corrupt record"),
        ("negative_len", "len() of the data set failed (ValueError: __len__() should return >= 0"),
        ("raising_len", "len() of the data set failed (RuntimeError: no index file)"),
        ("nothing", "returned a NoneType, not a Dataset, without __len__"),
        (
            "lying_len",
            "reading item 10 raised IndexError: index 10 out of range; its len() says 100",
        ),
    ],
)
@pytest.mark.parametrize("loss", ["crossentropy", "squared_error"])
def test_a_data_set_error_at_load_names_the_set_the_item_and_the_error(user_data, fn, said, loss):
    from engine.errors import DataSetError

    with pytest.raises(DataSetError) as e:
        load_splits(_user_cfg(user_data, fn, loss=loss))
    msg = str(e.value)
    assert msg.startswith("`data.dataset`") and said in msg and "\n" not in msg, msg
    assert "items must be" not in msg


@pytest.mark.parametrize("fn", ["key_error", "many_key_error"])
def test_an_item_error_in_a_streamed_loaders_worker_is_one_line(user_data, tmp_path, fn):
    """The DataLoader re-raises a worker's error with its traceback in the message."""
    from engine.config import load_config
    from engine.errors import DataSetError
    from engine.run import prepare

    sets = [f"model.arch={user_data}:mlp", "model.checkpoint=", f"data.dataset={user_data}:{fn}",
            "data.splits=['train']", "data.stream=true", "data.loader_workers=1",
            "data.batch_size=8", "grid.x=-1:1:3"]  # fmt: skip
    with pytest.raises(DataSetError) as e:
        _within(60, prepare, load_config(None, sets), tmp_path / "s.h5")
    msg = str(e.value)
    assert msg.startswith("`data.dataset`: reading item") and "\n" not in msg, msg
    assert "KeyError: 'image'" in msg and "Traceback" not in msg, msg


def test_a_collate_that_raises_is_blamed_not_the_items(user_data):
    cfg = _user_cfg(user_data, "good", collate=f"{user_data}:bad_collate", batch_size=4)
    with pytest.raises(LandscapeError) as e:
        load_splits(cfg)
    msg = str(e.value)
    assert msg.startswith("`data.collate`") and "failed on items 0..3 of `data.dataset`" in msg
    assert "ValueError: my collate broke" in msg and "items must be" not in msg, msg


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("loss", ["crossentropy", "squared_error"])
def test_a_data_set_that_never_ends_is_refused_not_read_forever(user_data, tmp_path, stream, loss):
    from engine.config import load_config
    from engine.errors import DataSetError
    from engine.formats import read_surface
    from engine.run import prepare

    sets = [f"model.arch={user_data}:mlp", "model.checkpoint=", f"data.dataset={user_data}:endless"]
    sets += ["data.splits=['train']", f"data.stream={str(stream).lower()}"]
    cfg = load_config(None, [*sets, "data.loader_workers=0", f"data.loss={loss}", "grid.x=-1:1:5"])
    expected = "`data.dataset` yields more than the 32 samples its len() says"

    def run():
        prepare(cfg, tmp_path / "s.h5").run()

    with pytest.raises(DataSetError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        _within(60, run)
    out = tmp_path / "s.h5"  # refused at load, or at the first point (which stops the run)
    assert not out.exists() or not read_surface(out).failed


@pytest.mark.parametrize("sized", [True, False])
def test_an_endless_dataloader_in_the_api_is_refused(user_data, sized):
    import importlib.util

    from torch.utils.data import DataLoader

    import tui_landscape as tl
    from engine.errors import DataSetError

    spec = importlib.util.spec_from_file_location("udata_api", user_data)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    loader = DataLoader(mod.Endless(sized), batch_size=8)
    said = "yields more than the 4 batches its len() says" if sized else "without len()"
    with pytest.raises(DataSetError, match=said.replace("(", r"\(").replace(")", r"\)")):
        _within(60, tl.compute, mod.mlp(), loader, x="-1:1:3", progress=False,
                config={"data.memory_mb": 1})  # fmt: skip


def _forked_children(pid: int) -> list[int]:
    """The processes forked by ``pid`` that run its own command line (a DataLoader's workers,
    not a helper program it runs), from Linux's /proc."""
    out = []
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return out
    for child in os.listdir("/proc"):
        if child.isdigit():
            try:
                with open(f"/proc/{child}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == pid:
                    with open(f"/proc/{child}/cmdline", "rb") as f:
                        if f.read() == cmdline:
                            out.append(int(child))
            except (OSError, ValueError, IndexError):
                continue
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_sigterm_to_the_process_group_of_a_streamed_run_exits_143_without_a_traceback(
    user_data, tmp_path
):
    """A scheduler's kill reached the DataLoader's workers too: the loader raised 'worker
    killed by signal' with a traceback, and the exit code was 143 or 1."""
    import signal
    import subprocess
    import sys
    import time

    sets = [f"model.arch={user_data}:mlp", "model.checkpoint=", f"data.dataset={user_data}:slow",
            "data.splits=['train']", "data.stream=true", "data.loader_workers=2",
            "data.batch_size=16", "grid.x=-1:1:200"]  # fmt: skip
    cmd = [sys.executable, "-m", "tui_landscape", "compute", str(CONFIG_1D), "--out",
           str(tmp_path / "s.h5"), *[a for o in sets for a in ("--set", o)]]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, cwd=tmp_path, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # Started, and in a streamed pass: the loader's workers are the run's children.
        while not _forked_children(p.pid) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert p.poll() is None, p.communicate()
        assert _forked_children(p.pid), "the run never started its loader's workers"
        os.killpg(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
    assert p.returncode == 143, (out, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    assert "Terminated (SIGTERM)" in out


def test_a_training_resume_from_a_planted_last_pt_names_the_refused_global(tmp_path):
    import torch

    from engine.config import config_to_toml, load_config
    from engine.train import train_run

    cfg = load_config(None, ["data.subset=64", "model.checkpoint="])
    (tmp_path / "config.toml").write_text(config_to_toml(cfg))
    marker = tmp_path / "payload-ran"
    torch.save({"model": {}, "x": _Payload(marker)}, tmp_path / "last.pt")
    with pytest.raises(LandscapeError, match="^cannot resume: checkpoint .* was refused") as e:
        train_run(cfg, tmp_path, torch.device("cpu"), resume=True)
    assert "system" in str(e.value) and "\n" not in str(e.value) and not marker.exists()


def test_an_estimate_whose_centre_fails_is_one_line(monkeypatch):
    """The setup screen's estimate caught only LandscapeError: a failing centre was lost."""
    from engine.config import load_config
    from engine.run import time_point

    _failing_where(monkeypatch, lambda a: True)
    with pytest.raises(LandscapeError, match="timing the centre point failed: RuntimeError: boom"):
        time_point(load_config(None, [*FRESH, "grid.x=-1:1:3"]))
