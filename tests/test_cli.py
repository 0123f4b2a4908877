from __future__ import annotations

import re
import shutil

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.errors import LandscapeError
from engine.formats import read_surface
from engine.models import build_model
from engine.recipes import recipe_checkpoint
from tests.conftest import REPO
from tui_landscape.cli import app

runner = CliRunner()
SMALL = ["--set", "grid.x=-1:1:3", "--set", "grid.y=-1:1:3"]
# The sample configs run recipe:digits_cnn; it is trained once, before any test (conftest).
pytestmark = pytest.mark.usefixtures("digits_cnn_recipe")


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.startswith("tui-landscape ")


def test_compute_then_info(chdir_tmp):
    cfg = REPO / "sample_configs" / "digits_2d.toml"
    r = invoke("compute", cfg, *SMALL, "--out", "s.h5")
    assert r.exit_code == 0, r.output
    assert "Computed 9 points" in r.stdout and "Minimum train_loss" in r.stdout
    assert (chdir_tmp / "s.h5").exists() and (chdir_tmp / "s.directions.h5").exists()
    again = invoke("compute", cfg, *SMALL, "--out", "s.h5")
    assert again.exit_code == 0 and "already complete" in again.stdout
    info = invoke("info", "s.h5")
    assert info.exit_code == 0, info.output
    for text in (
        "tui-landscape format v2",
        "9/9 (100%)",
        "train_loss",
        "test_acc",
        "(x=0, y=0), the grid point nearest 0",
    ):
        assert text in info.stdout
    stored = invoke("info", "s.h5", "--config")
    assert 'x = "-1:1:3"' in stored.stdout and "[directions]" in stored.stdout


def test_default_output_name_comes_from_the_config(chdir_tmp):
    shutil.copy(REPO / "sample_configs" / "digits_2d.toml", chdir_tmp / "mine.toml")
    r = invoke("compute", "mine.toml", "--set", "grid.x=-1:1:2", "--set", "grid.y=")
    assert r.exit_code == 0, r.output
    assert (chdir_tmp / "mine.h5").exists()


def test_info_reads_reference_files(tmp_path):
    x = np.linspace(-1, 1, 3)
    with h5py.File(tmp_path / "ref.h5", "w") as h:
        h["xcoordinates"], h["ycoordinates"] = x, x
        h["train_loss"] = np.arange(9.0).reshape(3, 3) + 1
    r = invoke("info", tmp_path / "ref.h5")
    assert r.exit_code == 0, r.output
    assert "reference" in r.stdout and "9/9" in r.stdout


def test_demo_prints_plots(tmp_path):
    r = invoke("demo", "--out", tmp_path, "--points", "5")
    assert r.exit_code == 0, r.output
    assert any(0x2800 <= ord(c) <= 0x28FF for c in r.stdout)  # braille iso-lines and curves
    assert "train loss, 2D" in r.stdout and "1D slice" in r.stdout
    # Piped (no colour), every 1D series has its own legend marker: loss and accuracy, each set.
    legend = re.findall(r"[L⅃] (\S\S) (\w+_(?:loss|acc))", r.stdout)
    markers = {name: m for m, name in legend}
    assert len(markers) >= 2 and len(set(markers.values())) == len(markers), legend
    assert (tmp_path / "demo_2d.h5").exists() and (tmp_path / "demo_1d.h5").exists()


def _bad_inputs(tmp):
    (tmp / "unknown_key.toml").write_text("[model]\narhc = 'digits_cnn'\n")
    (tmp / "text.h5").write_text("not hdf5")
    torch.save(build_model("digits_mlp").state_dict(), tmp / "mlp.pt")
    with h5py.File(tmp / "dirs.h5", "w") as h:
        g = h.create_group("xdirection")
        for k, p in enumerate(build_model("digits_mlp").parameters()):
            g[str(k)] = np.zeros(tuple(p.shape), dtype=np.float32)
    cfg = REPO / "sample_configs" / "digits_2d.toml"
    return [
        (["compute", tmp / "missing.toml"], 2, "Config file not found"),
        (["compute", tmp / "unknown_key.toml"], 2, "Unknown config key `model.arhc`"),
        (["compute", cfg, "--set", "grid.x=-1:1:0"], 2, "Expected `grid.x` to be 'min:max:num'"),
        (["compute", cfg, "--set", "grid.y=a:b:c"], 2, "but got 'a:b:c'"),
        (
            ["compute", cfg, "--set", "grid.x=-1:1:3000", "--set", "grid.y=-1:1:3000"],
            2,
            "at most 4,000,000 grid points",
        ),
        (
            ["compute", cfg, "--set", "directions.seed=99999999999999999999"],
            2,
            "Expected `directions.seed` between 0 and 2**63 - 1",
        ),
        (
            ["compute", cfg, "--set", "model.arch=digits_mlp"],
            2,
            "'recipe:digits_cnn' is a checkpoint of 'digits_cnn'",
        ),
        (["compute", cfg, "--set", "directions.target=x.pt"], 2, "only used with"),
        (["compute", cfg, "--set", "model.checkpoint=."], 2, "not a file"),
        (
            ["compute", cfg, "--set", "model.arch=resnet9000"],
            2,
            "Unknown architecture 'resnet9000'",
        ),
        (["compute", cfg, "--set", "data.dataset=cifar11"], 2, "Unknown data set 'cifar11'"),
        (["compute", cfg, "--set", f"model.checkpoint={tmp / 'no.pt'}"], 2, "checkpoint not found"),
        (
            ["compute", cfg, "--set", f"model.checkpoint={tmp / 'mlp.pt'}"],
            1,
            "does not fit the model",
        ),
        (
            [
                "compute",
                cfg,
                "--set",
                "directions.kind=file",
                "--set",
                f"directions.file={tmp / 'dirs.h5'}",
            ],
            1,
            "direction file",
        ),
        (
            [
                "compute",
                cfg,
                "--set",
                "directions.kind=file",
                "--set",
                f"directions.file={tmp / 'text.h5'}",
            ],
            1,
            "not a readable HDF5 file",
        ),
        (["compute", cfg, "--out", tmp / "text.h5"], 1, "not an HDF5 file"),
        (["compute", cfg, "--out", tmp / "out.txt"], 2, "Expected the output to end in .h5"),
        (["info", tmp / "missing.h5"], 2, "surface file not found"),
        (["info", tmp / "text.h5"], 1, "not an HDF5 file"),
    ]


def test_every_bad_input_is_one_line_and_its_exit_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe_checkpoint("recipe:digits_cnn")  # trained already, so stderr holds only the error
    for args, code, fragment in _bad_inputs(tmp_path):
        r = invoke(*args)
        where = " ".join(map(str, args))
        assert r.exit_code == code, (where, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (where, r.stderr)
        assert fragment in lines[0], (where, lines[0])
        assert "Traceback" not in r.output
    assert not (tmp_path / "digits_2d.h5").exists()  # no half-made output from any of them


FLAKY = """
from torch import nn


class Flaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 10)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 8:  # the start-up checks and two points succeed
            raise RuntimeError("boom")
        return self.lin(x.flatten(1))
"""


def test_points_that_fail_are_reported_and_the_rest_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(FLAKY)
    args = [
        "compute",
        REPO / "sample_configs" / "digits_1d.toml",
        "--set",
        "model.arch=nets.py:Flaky",
        "--set",
        "model.checkpoint=",
        "--set",
        "grid.x=-1:1:5",
        "--out",
        "f.h5",
    ]
    r = invoke(*args)
    assert r.exit_code == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "3 of 5 points failed on every try" in lines[0], lines
    assert "RuntimeError: boom" in lines[0] and "finished points are saved" in lines[0]
    s = read_surface(tmp_path / "f.h5")
    assert s.n_done == 2 and sorted(s.failed) == [2, 3, 4]
    assert s.failed[2] == "RuntimeError: boom"
    info = invoke("info", "f.h5")
    assert "3 points; first at x=0: RuntimeError: boom" in info.stdout
    (tmp_path / "nets.py").write_text(
        "from torch import nn\ndef five():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 5))\n"
    )
    args[3] = "model.arch=nets.py:five"
    r = invoke(*args[:-2], "--out", "g.h5")
    assert r.exit_code == 1, r.stderr
    assert "model gives 5 outputs per sample, but the train split has labels up to 9" in r.stderr


def test_truncated_file(tmp_path):
    x = np.linspace(-1, 1, 31)
    with h5py.File(tmp_path / "big.h5", "w") as h:
        h["xcoordinates"], h["ycoordinates"] = x, x
        h["train_loss"] = np.ones((31, 31))
    data = (tmp_path / "big.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    r = invoke("info", tmp_path / "cut.h5")
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1


def test_debug_shows_the_exception(tmp_path):
    r = invoke("--debug", "info", tmp_path / "x.h5")
    assert isinstance(r.exception, LandscapeError)
    with pytest.raises(LandscapeError):
        raise r.exception


def test_each_short_flag_has_one_meaning_across_commands():
    """`-s` was `--set` in compute and `--surface` in plot: a short flag names one long flag
    in every command that has it."""
    import typer.main

    from tui_landscape.cli import app

    meanings: dict[str, set[str]] = {}
    root = typer.main.get_command(app)
    for cmd in root.commands.values():  # type: ignore[attr-defined]
        for p in cmd.params:
            longs = [o for o in p.opts if o.startswith("--")]
            for short in (o for o in p.opts if len(o) == 2 and o.startswith("-")):
                meanings.setdefault(short, set()).update(longs)
    assert meanings["-s"] == {"--set"} and meanings["-o"] == {"--out"}
    assert all(len(longs) == 1 for longs in meanings.values()), meanings
