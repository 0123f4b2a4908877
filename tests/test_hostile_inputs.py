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
