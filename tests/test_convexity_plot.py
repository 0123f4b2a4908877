"""The 2D train loss's own non-convexity as a map (``--surface convexity``): the ratio's
scale, on any 2D surface file, refused in one line where there is no 2D train loss."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from engine.formats import Provenance, SurfaceWriter, read_surface
from engine.grid import Grid
from engine.sharpness import RATIO_SCALE
from tui_landscape.cli import app
from tui_landscape.plots.spec import CONVEXITY_LABEL, resolve, surface_values

runner = CliRunner()


def surface_file(path, x="-1:1:7", y="-1:1:5"):
    """train_loss = x^2 - 0.25 y^2: a saddle whose ratio is 0.25 everywhere inside."""
    g = Grid.parse(x, y)
    ys = g.y.coordinates() if y else np.zeros(1)
    X, Y = np.meshgrid(g.x.coordinates(), ys)
    z = (X**2 - 0.25 * Y**2).ravel()
    with SurfaceWriter.create(path, g, ["train_loss"], Provenance(config=""), "d.h5") as w:
        for k in range(z.size):
            w.record(k, {"train_loss": float(z[k])})
    return path


def test_convexity_is_the_surfaces_own_ratio_drawn_on_the_ratio_scale(tmp_path):
    s = read_surface(surface_file(tmp_path / "s.h5"))
    z = surface_values(s, "convexity")
    assert np.allclose(z[1:-1, 1:-1], 0.25) and np.isnan(z[0]).all()
    spec = resolve(s, "convexity", "auto")
    assert spec.ratio and (spec.vmin, spec.vmax) == RATIO_SCALE  # the reference's fixed scale
    assert spec.zlabel == CONVEXITY_LABEL  # not the Hessian's |min eig / max eig|
    r = runner.invoke(app, ["plot", str(tmp_path / "s.h5"), "--surface", "convexity"])
    assert r.exit_code == 0, r.output
    assert "convexity" in r.output


def test_convexity_of_a_1d_file_is_one_clear_line(tmp_path):
    surface_file(tmp_path / "c.h5", y="")
    r = runner.invoke(app, ["plot", str(tmp_path / "c.h5"), "--surface", "convexity"])
    assert r.exit_code != 0
    assert "no 2D train_loss for a convexity map" in r.output and "Traceback" not in r.output


def test_a_missing_surface_lists_convexity_where_it_can_be_drawn(tmp_path):
    surface_file(tmp_path / "s.h5")
    r = runner.invoke(app, ["plot", str(tmp_path / "s.h5"), "--surface", "nope"])
    assert r.exit_code != 0 and "convexity" in r.output
