"""Hessian maps through the ordinary run: file layout, orientation, CLI, curvature directions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.config import load_config
from engine.formats import read_spectrum, read_surface
from engine.hessian import extreme_eigenvalues
from engine.run import prepare
from tui_landscape.cli import app

SMALL = [
    "model.arch=digits_mlp",
    "model.kwargs={hidden = 16}",
    "data.subset=200",
    'data.splits=["train"]',
    "grid.x=-1:1:3",
    "grid.y=-0.5:0.5:2",  # non-square: orientation shows
    "hessian.enabled=true",
    "hessian.trace_samples=5",
    "compute.device=cpu",
]


def test_eigenvalue_maps_are_stored_in_the_grids_orientation(tmp_path):
    cfg = load_config(None, SMALL)
    job = prepare(cfg, tmp_path / "h.h5")
    assert job.todo() == [0, 1, 2, 5, 4, 3]  # snake order, for warm starts
    job.run()
    s = read_surface(tmp_path / "h.h5")
    assert s.values["max_eig"].shape == (2, 3) and s.completed.all()
    assert (s.values["hvp_products"] > 0).all()
    # Z[i, j] is at (x[j], y[i]): recompute one off-center point directly.
    land = job.landscape
    i, j = 1, 0
    land.perturbation.set(float(s.x[j]), float(s.y[i]))
    ex = extreme_eigenvalues(land.hvp(), 1e-6)
    assert s.values["max_eig"][i, j] == pytest.approx(ex.lmax, rel=1e-2)
    assert s.values["min_eig"][i, j] == pytest.approx(ex.lmin, rel=5e-2, abs=1e-3)
    assert s.values["max_eig"][i, j] >= s.values["min_eig"][i, j]


def test_hessian_command_prints_the_center_and_the_ratio_map(tmp_path):
    sets = []
    for o in SMALL:
        sets += ["--set", o]
    r = CliRunner().invoke(app, ["hessian", "--out", str(tmp_path / "c.h5"), *sets,
                                 str(tmp_path / "none.toml")])  # fmt: skip
    assert r.exit_code == 2  # a missing config file is one clear line
    cfgfile = tmp_path / "c.toml"
    cfgfile.write_text("")
    r = CliRunner().invoke(app, ["hessian", str(cfgfile), "--out", str(tmp_path / "c.h5"), *sets])
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())  # rich wraps at the terminal width
    assert "At the center (" in out and "lambda_max" in out and "Hutchinson, 5" in out
    assert "hessian.params = '2d'" in out and "biases and norm weights left out" in out
    assert "worst residual" in out and "top 5:" in out
    assert "ratio" in r.stdout and "colour: 0 " in r.stdout
    p = CliRunner().invoke(app, ["plot", str(tmp_path / "c.h5"), "--kind", "ratio"])
    assert p.exit_code == 0, p.output


def test_hessian_directions_are_the_top_and_bottom_eigenvectors(tmp_path):
    cfg = load_config(None, [*SMALL[:-2], "directions.kind=hessian", "grid.x=-0.02:0.02:3",
                             "grid.y=-0.02:0.02:3"])  # fmt: skip
    job = prepare(cfg, tmp_path / "d.h5")
    ds = job.landscape.perturbation
    x = torch.cat([d.reshape(-1) for d in job.landscape.ds.x])
    assert float(x.norm()) == pytest.approx(1.0, rel=1e-4)
    job.run()
    s = read_surface(tmp_path / "d.h5")
    # The axes are the eigenvectors: v' H v along them is lambda_max and lambda_min.
    land = job.landscape
    land.perturbation.reset()
    hvp = land.hvp()
    names = [n for n, _ in land.model.named_parameters()]
    lmax, lmin = (float(land.ds.attrs[k]) for k in ("lmax", "lmin"))
    for axis, want in ((land.ds.x, lmax), (land.ds.y, lmin)):
        parts = dict(zip(names, axis, strict=True))
        v = torch.cat([parts[n].reshape(-1) for n in hvp.names]).double().numpy()
        assert float(v @ hvp(v)) == pytest.approx(want, rel=1e-3, abs=1e-5)
    assert lmin < 0 < lmax  # an untrained model sits on a saddle
    z = s.values["train_loss"]
    assert np.isfinite(z).all() and ds is not None


def test_residuals_convergence_and_the_centre_spectrum_are_stored(tmp_path):
    cfg = load_config(None, [*SMALL, "hessian.density_probes=2", "hessian.density_steps=8"])
    job = prepare(cfg, tmp_path / "r.h5")
    job.run()
    s = read_surface(tmp_path / "r.h5")
    assert (s.values["hessian_converged"] == 1).all()
    lmax = s.values["max_eig"]
    assert (s.values["max_eig_residual"] <= 1e-3 * np.abs(lmax)).all()
    assert (s.values["min_eig_residual"] <= 1e-3 * np.fmax(np.abs(s.values["min_eig"]),
                                                           1e-2 * np.abs(lmax))).all()  # fmt: skip
    sp = read_spectrum(tmp_path / "r.h5")
    assert sp is not None and sp["params"] == "2d" and sp["trace_probes"] == 5
    assert sp["top_k"].shape == (5,) and sp["lmax"] == sp["top_k"][0]
    assert sp["slq_nodes"].shape == (2, 8) and sp["density"].shape == sp["density_grid"].shape
    # A resume reads the stored spectrum back instead of computing it again.
    again = prepare(cfg, tmp_path / "r.h5")
    assert again.spectrum is not None and again.spectrum["trace"] == sp["trace"]
    again.close()


def test_center_only_run_and_info(tmp_path):
    cfgfile = tmp_path / "c.toml"
    cfgfile.write_text("")
    sets = []
    for o in SMALL:
        if not o.startswith("grid."):
            sets += ["--set", o]
    out = tmp_path / "center.h5"
    r = CliRunner().invoke(app, ["hessian", str(cfgfile), "--center", "--out", str(out), *sets])
    assert r.exit_code == 0, r.output
    s = read_surface(out)
    assert s.completed.shape == (1,) and s.x.tolist() == [0.0]
    i = CliRunner().invoke(app, ["info", str(out)])
    assert i.exit_code == 0, i.output
    text = " ".join(i.stdout.split())
    assert "hessian.params = '2d'" in text and "worst residual" in text
    assert "trace" in text and "Hutchinson, 5 Rademacher probes" in text
    d = CliRunner().invoke(app, ["plot", str(out), "--kind", "density", "--width", "80"])
    assert d.exit_code == 0, d.output  # the density a real run stored draws
    assert "center.h5: eigenvalue density (SLQ, 5 probes x 40 steps)" in d.stdout
    # One point is only for a Hessian run.
    plain = [o for o in sets if "hessian" not in o]
    plain = [o for k, o in enumerate(plain) if o != "--set" or plain[k + 1 : k + 2] != ["--set"]]
    c = CliRunner().invoke(app, ["compute", str(cfgfile), "--out", str(tmp_path / "x.h5"),
                                 "--set", "grid.x=0:0:1", *plain])  # fmt: skip
    assert c.exit_code == 2 and "only for a Hessian run" in c.output, c.output
