"""Hostile input found by a review of every command: files others wrote (surfaces, projections,
configs, checkpoints) and user code that misbehaves. Each ends in one clear line and a non-zero
exit, never a traceback, a hang or a silent success.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest


def _cli(*args):
    from typer.testing import CliRunner

    from tui_landscape.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _one_line(r) -> str:
    out = r.output
    assert "Traceback" not in out, out
    assert len(out.strip().splitlines()) == 1, out
    return out


def _reference(path, **datasets):
    """A surface in the reference code's layout (no attributes), with ``datasets`` replaced."""
    x = np.linspace(-1, 1, 5)
    data = {"xcoordinates": x, "train_loss": x**2, **datasets}
    with h5py.File(path, "w") as f:
        for name, value in data.items():
            if isinstance(value, h5py.Empty | h5py.SoftLink):
                f[name] = value
            elif value is h5py.Group:
                f.create_group(name)
            else:
                f[name] = value
    return path


@pytest.mark.parametrize(
    ("datasets", "reason"),
    [
        ({"train_loss": np.ones(5, complex)}, "its train_loss is not a dataset of real numbers"),
        ({"train_loss": np.zeros(5, [("a", "f8"), ("b", "i4")])}, "train_loss is not a dataset"),
        ({"train_loss": np.array([b"a"] * 5)}, "its train_loss is not a dataset of real numbers"),
        ({"xcoordinates": np.array([b"a", b"b"])}, "its xcoordinates is not a dataset of real"),
        (
            {"xcoordinates": np.array([-1e308, 0, 1e308]), "train_loss": np.zeros(3)},
            "not finite and strictly increasing",
        ),
        ({"train_loss": h5py.Empty("f8")}, "'train_loss' has shape (0,), the grid needs (5,)"),
        ({"dir_file": np.zeros(3)}, "its dir_file is not text"),
        ({"dir_file": h5py.Group}, "dir_file"),
    ],
    ids=[
        "complex",
        "compound",
        "text",
        "text-coords",
        "span-overflows",
        "no-dataspace",
        "dir-file-numbers",
        "dir-file-group",
    ],
)
@pytest.mark.parametrize("command", ["info", "plot", "compare"])
def test_a_surface_of_odd_dtypes_and_shapes_is_one_line_in_every_command(
    tmp_path, datasets, reason, command
):
    """These were tracebacks (a compound or a group), a silent cast (complex: the imaginary
    part dropped, with numpy's warning on stderr) or a plot that failed on NaN coordinates."""
    p = _reference(tmp_path / "s.h5", **datasets)
    r = _cli(command, p, *([p] if command == "compare" else []))
    assert r.exit_code == 1, r.output
    assert reason in _one_line(r)


def test_the_app_lists_a_surface_of_odd_dtypes_as_unreadable(tmp_path):
    from engine.errors import LandscapeError
    from engine.formats import surface_info

    p = _reference(tmp_path / "s.h5", train_loss=np.ones(5, complex))
    with pytest.raises(LandscapeError, match="not a dataset of real numbers"):
        surface_info(p)


def _projection(path, **datasets):
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value
    return path


@pytest.mark.parametrize(
    "datasets",
    [
        {"proj_xcoord": np.zeros(3), "proj_ycoord": np.zeros(5)},
        {"proj_xcoord": np.ones(3, complex), "proj_ycoord": np.zeros(3)},
        {"proj_xcoord": np.array([b"a"] * 3), "proj_ycoord": np.zeros(3)},
    ],
    ids=["lengths-differ", "complex", "text"],
)
def test_a_projection_file_that_holds_no_path_is_one_line(tmp_path, datasets):
    """These were tracebacks (numpy's broadcast or conversion error) or a silent cast."""
    from tests.test_tui import small_file

    s = small_file(tmp_path / "s.h5")
    r = _cli("plot", s, "--path", _projection(tmp_path / "p.h5", **datasets), "--width", 60)
    assert r.exit_code == 1
    assert "is not a readable projection file: its proj_xcoord and proj_ycoord" in _one_line(r)


@pytest.mark.parametrize("ratio", [np.zeros(1), np.array([b"a", b"b"])], ids=["one", "text"])
def test_a_malformed_explained_variance_only_drops_the_percentages(tmp_path, ratio):
    """The path is still drawn; the axes say "PC" without a share (an IndexError before)."""
    from engine.formats import read_trajectory
    from tests.test_tui import small_file

    s = small_file(tmp_path / "s.h5")
    p = _projection(
        tmp_path / "p.h5",
        proj_xcoord=np.zeros(3),
        proj_ycoord=np.zeros(3),
        explained_variance_ratio_=ratio,
    )
    assert read_trajectory(p).explained is None
    assert _cli("plot", s, "--path", p, "--width", 60).exit_code == 0


def test_a_direction_file_named_as_a_fifo_does_not_block_plot_path(tmp_path):
    """A surface whose ``dir_file`` names a FIFO: looking up the path's explained variance
    there blocked in HDF5's open until a writer came (``plot --path`` hung). A subprocess,
    because the blocked open holds the GIL: no thread of the test could time it out."""
    import os
    import subprocess
    import sys

    from tests.test_tui import small_file

    s = small_file(tmp_path / "s.h5")
    with h5py.File(s, "r+") as f:
        del f["dir_file"]
        f["dir_file"] = "pipe"
    os.mkfifo(tmp_path / "pipe")
    p = _projection(tmp_path / "p.h5", proj_xcoord=np.zeros(3), proj_ycoord=np.zeros(3))
    cmd = [sys.executable, "-m", "tui_landscape", "plot", s, "--path", p, "--width", "60"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("plot --path blocked on the FIFO its surface's dir_file names")
    assert r.returncode == 0, r.stderr


def test_the_app_shows_a_pca_surface_whose_path_is_malformed_and_says_why(tmp_path):
    """A surface of ours holding a path that is not numbers: the app crashed on opening it."""
    import asyncio

    from tests.test_tui import small_file, wait_for
    from tui_landscape.app import create_app
    from tui_landscape.screens.plot import PlotScreen

    s = small_file(tmp_path / "s.h5")
    with h5py.File(s, "r+") as f:
        f["proj_xcoord"] = np.array([b"a"] * 3)
        f["proj_ycoord"] = np.zeros(3)

    async def drive():
        app = create_app(s)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen), timeout=30)
            await wait_for(pilot, lambda: app.screen.view.surface is not None, timeout=30)
            said = [n.message for n in app._notifications]
            return app.screen.view.trajectory, said

    trajectory, said = asyncio.run(drive())
    assert trajectory is None
    assert any("is not a readable projection file" in m for m in said)


def test_deleting_a_surface_beside_a_fifo_named_h5_does_not_block(tmp_path):
    """The browser's delete asks every other ``*.h5`` of the folder whether it names the
    direction file; HDF5's open of a FIFO there blocked until a writer came."""
    import os
    import subprocess
    import sys

    from tests.test_tui import small_file

    s = small_file(tmp_path / "s.h5")
    (tmp_path / "s.directions.h5").write_bytes(b"")
    os.mkfifo(tmp_path / "other.h5")
    code = "import sys; from engine.formats import removable_sidecars as r; print(*r(sys.argv[1]))"
    try:
        r = subprocess.run(
            [sys.executable, "-c", code, s], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("removable_sidecars blocked on a FIFO named other.h5")
    assert r.returncode == 0 and "directions" in r.stdout, r.stderr


def _run_within(args, seconds=60):
    """``tui-landscape args`` in a subprocess, failing the test where it does not end."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "tui_landscape", *map(str, args)]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(cmd[3:])} did not end in {seconds} s")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_config_that_is_a_fifo_or_a_device_is_one_line_not_a_hang(tmp_path, kind):
    """``compute CONFIG`` read the config with a plain read: a FIFO blocked for ever, a link
    to /dev/zero filled memory."""
    import os

    config = tmp_path / "c.toml"
    if kind == "fifo":
        os.mkfifo(config)
    else:
        config.symlink_to("/dev/zero")
    for args in (["compute", config, "--out", tmp_path / "s.h5"], ["trajectory", config]):
        r = _run_within(args)
        assert r.returncode == 2 and "not a regular file" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_config_with_a_byte_order_mark_is_read(tmp_path):
    """Some Windows editors start UTF-8 files with a byte order mark: tomllib refused it as
    'Invalid statement (at line 1, column 1)'."""
    from engine.config import load_config

    config = tmp_path / "c.toml"
    config.write_bytes('\ufeff[grid]\nx = "-1:1:3"\n'.encode())
    assert load_config(config).grid.x == "-1:1:3"


def test_a_fifo_planted_as_a_surface_s_journal_does_not_block_reading_it(tmp_path):
    """``journal_bytes`` checked for a regular file after a plain open, which on a FIFO waits
    for a writer: ``info`` (and the browser's listing) hung."""
    import os

    from tests.test_tui import small_file

    s = small_file(tmp_path / "s.h5")
    os.mkfifo(tmp_path / "s.h5.journal")
    r = _run_within(["info", s])
    assert r.returncode == 0 and "63/63" in r.stdout, r.stderr


_USER_CODE = """
import sys

def raises():
    raise RuntimeError("first line\\nsecond line")

def exits():
    sys.exit(0)

def buggy(width=3):
    return len(width)  # the user's own TypeError

def no_parameters():
    import torch

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), 10)

    return Constant()
"""


@pytest.mark.parametrize(
    ("arch", "said"),
    [
        ("m.py:raises", "raised RuntimeError: first line second line"),
        ("m.py:exits", "the user's code called sys.exit(0)"),
        ("script.py:f", "the user's code called sys.exit(0)"),
        ("m.py:no_parameters", "has no parameters: a landscape moves a model's weights"),
        ("m.py:buggy", "'m.py:buggy' raised TypeError: object of type 'int' has no len()"),
    ],
    ids=[
        "multi-line-message",
        "exit-in-the-callable",
        "exit-on-import",
        "no-parameters",
        "own-type-error",
    ],
)
def test_user_code_that_exits_or_raises_on_many_lines_is_one_line_and_not_success(
    tmp_path, monkeypatch, arch, said
):
    """A model module that calls sys.exit(0) (a script run on import, its entry point not
    guarded) ended the command with exit 0, nothing printed and nothing written; a message
    of several lines was printed over several; a model without parameters was a traceback
    (StopIteration) in choosing the batch size; a TypeError of the callable's own was blamed
    on `model.kwargs`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(_USER_CODE)
    (tmp_path / "script.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "c.toml").write_text(f'[model]\narch = "{arch}"\n[data]\nsubset = 16\n')
    r = _cli("compute", "c.toml", "--out", "s.h5")
    assert r.exit_code == 1
    assert said in _one_line(r)


@pytest.mark.parametrize("kind", ["meta", "sparse"])
def test_a_checkpoint_of_meta_or_sparse_tensors_is_one_line(tmp_path, kind):
    """torch.save keeps meta and sparse tensors; load_state_dict then raised its own
    RuntimeError of many lines (a traceback)."""
    import torch

    from engine.errors import LandscapeError
    from engine.models.checkpoint import load_checkpoint

    model = torch.nn.Linear(3, 2)
    sd = model.state_dict()
    sd["weight"] = sd["weight"].to("meta") if kind == "meta" else sd["weight"].to_sparse()
    torch.save(sd, tmp_path / "c.pt")
    with pytest.raises(LandscapeError, match=f"tensors without dense values: weight \\({kind}"):
        load_checkpoint(model, tmp_path / "c.pt")


@pytest.mark.parametrize(
    "datasets",
    [
        {"train_loss": np.array([1e308, -1e308, 1.0, 2.0, 3.0])},
        {"xcoordinates": np.array([0.0, 1e-320, 2e-320]), "train_loss": np.zeros(3)},
    ],
    ids=["values-of-1e308", "coordinates-of-1e-320"],
)
def test_a_surface_plotext_cannot_scale_is_one_line(tmp_path, datasets):
    """plotext's axis arithmetic raised (ValueError: cannot convert float NaN to integer,
    OverflowError): a traceback in ``plot``, and the app crashed on opening the file."""
    p = _reference(tmp_path / "s.h5", **datasets)
    r = _cli("plot", p, "--width", 60)
    assert r.exit_code == 1
    assert "this plot cannot be drawn in the terminal" in _one_line(r)


def _open_in_app(path, *keys):
    """The app opened at ``path`` with ``keys`` pressed: its screen, the surface shown and the
    view's text."""
    import asyncio

    from tests.test_tui import wait_for
    from tui_landscape.app import create_app
    from tui_landscape.screens.plot import PlotScreen

    async def drive():
        app = create_app(path)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen), timeout=30)
            await wait_for(pilot, lambda: app.screen.view.surface is not None, timeout=30)
            for key in keys:
                await pilot.press(key)
            await pilot.pause()
            view = app.screen.view
            return app.screen, view.name_, str(view.render())

    return asyncio.run(drive())


def test_the_app_says_why_a_surface_cannot_be_drawn_and_stays_up(tmp_path):
    from tui_landscape.screens.plot import PlotScreen

    p = _reference(tmp_path / "s.h5", train_loss=np.array([1e308, -1e308, 1.0, 2.0, 3.0]))
    screen, _, text = _open_in_app(p)
    assert isinstance(screen, PlotScreen)
    assert "this plot cannot be drawn in the terminal" in text


def test_the_app_offers_the_ratio_only_where_both_eigenvalues_are(tmp_path):
    """A file with max_eig but no min_eig: the surface key ('s') offered the ratio, and
    drawing it raised out of the app (a crash)."""
    from tui_landscape.screens.plot import PlotScreen

    p = _reference(tmp_path / "s.h5", max_eig=np.ones(5))
    screen, name, _ = _open_in_app(p, "s", "s", "s")
    assert isinstance(screen, PlotScreen) and name == "max_eig"


def test_a_contour_of_a_huge_noisy_grid_is_drawn_at_the_plot_s_resolution(tmp_path):
    """1000 x 1000 points of noise: contourpy and plotext drew every iso-line segment of the
    full grid (minutes, the app frozen meanwhile); now the grid is thinned to the braille dots
    the plot has, its ends kept."""
    from tui_landscape.plots.terminal import _thinned

    x = np.linspace(-1, 1, 1000)
    tx, ty, tz = _thinned(x, x, np.zeros((1000, 1000)), 80, 24)
    assert (tx.size, ty.size, tz.shape) == (320, 192, (192, 320))
    assert tx[0] == ty[0] == -1 and tx[-1] == ty[-1] == 1
    from engine.formats import read_surface
    from tui_landscape.plots.views import render

    rng = np.random.default_rng(0)
    z = rng.random((1000, 1000), dtype=np.float32)
    p = _reference(tmp_path / "s.h5", xcoordinates=x, ycoordinates=x, train_loss=z)
    text = render(read_surface(p), kind="contour", width=80, height=24, color=False)
    assert len(text.splitlines()) == 24 and "⣿" in text


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ("text", "xdirection/0 is not a dataset of real numbers"),
        ("group", "xdirection/0 is not a dataset of real numbers"),
        ("not-a-group", "xdirection must hold datasets '0'..'N-1'"),
        ("type-array", None),  # read as the default type, as an unknown one is
    ],
)
def test_a_direction_file_others_wrote_is_one_line_or_read(tmp_path, edit, said):
    """``directions.kind = "file"`` with a file of datasets that are text or groups, an
    ``xdirection`` that is a dataset, a ``type`` that is an array: each was a traceback."""
    import torch

    from engine.directions import DirectionSet
    from engine.errors import LandscapeError
    from engine.formats import load_directions, save_directions

    p = tmp_path / "d.h5"
    save_directions(p, DirectionSet([torch.zeros(2, 3), torch.zeros(3)], None, "weights", {}))
    with h5py.File(p, "r+") as f:
        if edit == "type-array":
            f.attrs["type"] = np.zeros(3)
        elif edit == "not-a-group":
            del f["xdirection"]
            f["xdirection"] = np.zeros(3)
        else:
            del f["xdirection/0"]
            if edit == "text":
                f["xdirection/0"] = np.array([b"a"])
            else:
                f.create_group("xdirection/0")
    if said is None:
        assert load_directions(p).dir_type == "weights"
    else:
        with pytest.raises(LandscapeError, match=said):
            load_directions(p)


def test_saving_a_config_over_a_fifo_is_one_line_not_a_hang(tmp_path):
    """The app's save edits an existing config in place: a FIFO at that name blocked the read
    (and would have blocked the write), freezing the app."""
    import os
    import subprocess
    import sys

    os.mkfifo(tmp_path / "c.toml")
    code = (
        "import sys\nfrom engine.config import load_config\nfrom engine.config_save import "
        "save_config\nfrom engine.errors import ConfigError\ntry:\n"
        "    save_config(load_config(None), sys.argv[1])\nexcept ConfigError as e:\n    print(e)"
    )
    try:
        r = subprocess.run(
            [sys.executable, "-c", code, tmp_path / "c.toml"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("save_config blocked on a FIFO")
    assert "Cannot edit" in r.stdout and "not a regular file" in r.stdout, r.stderr


def test_resuming_a_training_whose_config_is_a_fifo_is_one_line_not_a_hang(tmp_path):
    import os
    import subprocess
    import sys

    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"")
    os.mkfifo(run / "config.toml")
    code = (
        "import sys, torch\nfrom engine.config import load_config\nfrom engine.errors import "
        "LandscapeError\nfrom engine.train import train_run\ntry:\n    train_run(load_config("
        "None, ['data.subset=16']), __import__('pathlib').Path(sys.argv[1]), "
        "torch.device('cpu'), resume=True)\nexcept LandscapeError as e:\n    print(e)"
    )
    try:
        r = subprocess.run(
            [sys.executable, "-c", code, run], capture_output=True, text=True, timeout=90
        )
    except subprocess.TimeoutExpired:
        pytest.fail("train --resume blocked on a FIFO planted as the run's config.toml")
    assert "cannot resume from" in r.stdout and "not a regular file" in r.stdout, r.stderr


def test_a_data_set_the_model_cannot_take_is_one_line_not_two(tmp_path, monkeypatch):
    """float64 images: the channels-last trial failed first and said so in a line of its own
    before the one line of the refusal."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d64.py").write_text(
        "import torch\nfrom torch.utils.data import TensorDataset\n\n"
        "def data():\n"
        "    return TensorDataset(torch.randn(32, 1, 8, 8, dtype=torch.float64),"
        " torch.arange(32) % 10)\n"
    )
    config = tmp_path / "c.toml"
    config.write_text(
        '[model]\narch = "digits_cnn"\ncheckpoint = ""\n[data]\ndataset = "d64.py:data"\n'
        'splits = ["train"]\n[grid]\nx = "-1:1:3"\n'
    )
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    # A process of its own: the log line went to the real stderr, which CliRunner misses.
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tui_landscape", "compute", str(config), "--out", "s.h5"]
    r = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert len(lines) == 1 and "the model cannot evaluate the train split" in lines[0], lines
