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
    from engine.formats import SurfaceWriter
    from engine.grid import Grid

    p = tmp_path / "s.h5"
    w = SurfaceWriter.create(p, Grid.parse("-1:1:11", "-1:1:11"), ["train_loss"], {}, "d.h5")
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
    assert rows["markup.h5"][4] == "[/bold]"  # shown as written
    assert rows["nan.h5"][0] == rows["truncated.h5"][0] == "unreadable"
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
