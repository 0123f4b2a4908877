from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine.errors import ConfigError, LandscapeError
from engine.formats import SURFACE_FORMAT as FORMAT
from engine.formats import Provenance, SurfaceWriter, read_surface
from engine.grid import Grid


def f(x, y):
    """A surface whose value tells where it was computed."""
    return 10 * x + y + 100


def write_reference_file(path, x, y, unfinished=()):
    """Like the reference's crunch: (nx, ny) arrays filled in meshgrid flat order, -1 unfinished."""
    xx, yy = np.meshgrid(x, y)
    with h5py.File(path, "w") as h:
        h["xcoordinates"] = x
        h["ycoordinates"] = y
        h["dir_file"] = "model.h5_weights_xignore=biasbn_xnorm=filter.h5"
        for name in ("train_loss", "train_acc"):
            vals = -np.ones((len(x), len(y)))
            flat = vals.ravel()
            for k in range(flat.size):
                if k not in unfinished:
                    flat[k] = f(xx.ravel()[k], yy.ravel()[k])
            h[name] = vals


@pytest.mark.parametrize(("nx", "ny"), [(5, 5), (5, 3)])
def test_reference_layout_reads_in_the_right_orientation(tmp_path, nx, ny):
    x, y = np.linspace(-1, 1, nx), np.linspace(-2, 2, ny)
    write_reference_file(tmp_path / "ref.h5", x, y, unfinished={2})
    s = read_surface(tmp_path / "ref.h5")
    assert s.layout == "reference" and s.shape == (ny, nx)
    assert s.dir_file.startswith("model.h5")
    z = s.values["train_loss"]
    for i in range(ny):
        for j in range(nx):
            if (i, j) == (0, 2):
                assert np.isnan(z[i, j]) and not s.completed[i, j]
            else:
                assert z[i, j] == pytest.approx(f(x[j], y[i]))
    assert s.n_done == nx * ny - 1


def test_reference_1d(tmp_path):
    x = np.linspace(-1, 1, 7)
    with h5py.File(tmp_path / "r1.h5", "w") as h:
        h["xcoordinates"] = x
        h["train_loss"] = 2 * x + 5
        h["test_loss"] = np.where(x > 0.5, -1.0, x + 5)
    s = read_surface(tmp_path / "r1.h5")
    assert s.grid.ndim == 1
    np.testing.assert_allclose(s.values["train_loss"], 2 * x + 5)
    assert np.isnan(s.values["test_loss"][-1])


def test_round_trip_with_mask_and_zero_loss(tmp_path):
    g = Grid.parse("-1:1:4", "0:1:3")
    w = SurfaceWriter.create(
        tmp_path / "s.h5", g, ["train_loss", "train_acc"], Provenance(config="x"), "d.h5"
    )
    for k in range(g.size - 1):
        a, b = g.point(k)
        w.record(k, {"train_loss": 0.0 if k == 0 else f(a, b), "train_acc": 50.0})
    w.close()
    s = read_surface(tmp_path / "s.h5")
    assert s.layout == "tui-landscape" and s.attrs["format"] == FORMAT
    assert s.completed[0, 0] and s.values["train_loss"][0, 0] == 0.0  # a true 0 is finished
    assert not s.completed[-1, -1] and np.isnan(s.values["train_loss"][-1, -1])
    with h5py.File(tmp_path / "s.h5") as h:  # the reference's view: -1 where unfinished
        assert h["train_loss"].shape == (3, 4) and h["train_loss"][2, 3] == -1
        assert h["dir_file"][()] == b"d.h5"
    i, j = 1, 2
    assert s.values["train_loss"][i, j] == pytest.approx(f(s.x[j], s.y[i]))


def test_one_writer_and_readers_while_it_writes(tmp_path):
    g = Grid.parse("0:1:3")
    w = SurfaceWriter.create(tmp_path / "w.h5", g, ["train_loss"], Provenance(), "d.h5")
    w.record(0, {"train_loss": 1.5})
    w.flush()
    s = read_surface(tmp_path / "w.h5")  # `info` while a run goes on
    assert s.n_done == 1 and s.values["train_loss"][0] == 1.5
    with pytest.raises(LandscapeError, match="being computed by another process"):
        SurfaceWriter.resume(s)
    with pytest.raises(LandscapeError, match="being computed by another process"):
        SurfaceWriter.create(tmp_path / "w.h5", g, ["train_loss"], Provenance(), "d.h5")
    w.close()
    SurfaceWriter.resume(read_surface(tmp_path / "w.h5")).close()


def test_check_output_refuses_what_prepare_would(tmp_path, monkeypatch):
    """The app's setup makes these checks before Run is offered (issue 17)."""
    import os

    from engine.formats import check_output

    assert check_output(tmp_path / "a.h5") == tmp_path / "a.h5"
    with pytest.raises(ConfigError, match="to end in .h5"):
        check_output(tmp_path / "a.txt")
    with pytest.raises(ConfigError, match="output folder does not exist"):
        check_output(tmp_path / "no" / "a.h5")
    (tmp_path / "d.h5").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        check_output(tmp_path / "d.h5")
    w = SurfaceWriter.create(
        tmp_path / "w.h5", Grid.parse("0:1:3"), ["train_loss"], Provenance(), "d.h5"
    )
    with pytest.raises(LandscapeError, match=f"another process \\(pid {os.getpid()}\\)"):
        check_output(tmp_path / "w.h5")
    w.close()
    check_output(tmp_path / "w.h5")  # a finished file is resumed or refused later, by config
    monkeypatch.setattr(os, "access", lambda *a, **k: False)  # root may write anywhere
    with pytest.raises(ConfigError, match="cannot write to the output folder"):
        check_output(tmp_path / "a.h5")


def test_nan_and_inf_survive(tmp_path):
    g = Grid.parse("0:1:3")
    w = SurfaceWriter.create(tmp_path / "n.h5", g, ["train_loss"], Provenance(), "d.h5")
    w.record(0, {"train_loss": float("nan")})
    w.record(1, {"train_loss": float("inf")})
    w.close()
    s = read_surface(tmp_path / "n.h5")
    assert s.completed.tolist() == [True, True, False]
    assert np.isnan(s.values["train_loss"][0]) and np.isinf(s.values["train_loss"][1])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_surface(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(LandscapeError, match="not an HDF5 file"):
        read_surface(tmp_path / "text.h5")
    g = Grid.parse("-1:1:11", "-1:1:11")
    SurfaceWriter.create(tmp_path / "full.h5", g, ["train_loss"], Provenance(), "d.h5").close()
    data = (tmp_path / "full.h5").read_bytes()
    (tmp_path / "trunc.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(LandscapeError, match="trunc.h5"):
        read_surface(tmp_path / "trunc.h5")
    with h5py.File(tmp_path / "other.h5", "w") as h:
        h["weights"] = np.zeros(3)
    with pytest.raises(LandscapeError, match="not a surface file"):
        read_surface(tmp_path / "other.h5")
    with h5py.File(tmp_path / "future.h5", "w") as h:
        h.attrs["format"], h.attrs["format_version"] = FORMAT, 99
        h["xcoordinates"] = np.zeros(3)
    with pytest.raises(LandscapeError, match="format version 99"):
        read_surface(tmp_path / "future.h5")


@pytest.mark.usefixtures("digits_mlp_recipe")
def test_a_refused_second_run_leaves_the_first_runs_directions_alone(tmp_path):
    from engine.config import load_config
    from engine.formats import directions_path
    from engine.run import prepare

    sets = ["model.arch=digits_mlp", "model.checkpoint=recipe:digits_mlp", "grid.x=-1:1:3"]
    job = prepare(load_config(None, sets), tmp_path / "s.h5")
    before = directions_path(tmp_path / "s.h5").read_bytes()
    with pytest.raises(LandscapeError, match="being computed by another process"):
        prepare(load_config(None, [*sets, "directions.seed=5"]), tmp_path / "s.h5", overwrite=True)
    assert directions_path(tmp_path / "s.h5").read_bytes() == before
    job.run()
