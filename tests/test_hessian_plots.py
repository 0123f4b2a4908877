"""What the plots, `info` and the app show of a Hessian file: the accuracy of its eigenvalues
(worst residual, points not converged, hessian.params) and the eigenvalue density (issue 24).

The files are written directly (no model): known eigenvalues, residuals and a density whose
mass and peak the drawings must keep.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.formats import Provenance, SurfaceWriter, read_spectrum, read_surface, spectrum_datasets
from engine.grid import Grid
from tui_landscape.cli import app
from tui_landscape.plots import hessian as ph
from tui_landscape.plots.density import density_spec
from tui_landscape.plots.spec import resolve, surface_values
from tui_landscape.plots.terminal import FLAG_MARKER, draw

runner = CliRunner()
NAMES = ["train_loss", "max_eig", "min_eig", "max_eig_residual", "min_eig_residual",
         "hessian_converged", "hvp_products"]  # fmt: skip
BAD = {3, 7}  # flat indices whose eigenvalues did not converge
CONFIG = '[hessian]\nparams = "all"\ntol = 0.001\n'


def density_arrays():
    """A two-probe SLQ result (nodes, weights) and its density on a grid, as engine.spectrum
    draws it."""
    from engine.spectrum import density_on_grid

    nodes = np.array([[-0.5, 0.2, 0.25, 3.0], [-0.4, 0.2, 0.3, 2.9]])
    weights = np.array([[0.1, 0.5, 0.3, 0.1], [0.1, 0.6, 0.2, 0.1]])
    t, rho, sigma = density_on_grid(nodes, weights)
    return nodes, weights, t, rho, sigma


def hessian_file(path, *, spectrum=True, bad=BAD):
    """A 5 x 4 Hessian map: lambda_max 2 + x, lambda_min -0.1 y, residuals 1e-4 of lambda_max
    (and 0.5 of lambda_min at the unconverged points)."""
    g = Grid.parse("-1:1:5", "-1:1:4")
    X, Y = np.meshgrid(g.x.coordinates(), g.y.coordinates())
    lmax, lmin = (2 + X).ravel(), (-0.1 * Y - 0.05).ravel()
    extras = None
    if spectrum:
        nodes, weights, t, rho, sigma = density_arrays()
        extras = spectrum_datasets({
            "params": "all", "n": 1234, "tol": 1e-3, "lmax": 2.0, "lmin": -0.05,
            "lmax_residual": 2e-4, "lmin_residual": 1e-6, "converged": 1.0,
            "top_k": np.array([3.0, 2.9, 0.3]), "top_k_residual": np.zeros(3),
            "trace": 12.5, "trace_se": 0.25, "trace_probes": 50.0,
            "density_grid": t, "density": rho, "density_sigma": sigma,
            "slq_nodes": nodes, "slq_weights": weights,
        })  # fmt: skip
    with SurfaceWriter.create(path, g, NAMES, Provenance(config=CONFIG), "d.h5",
                              extras=extras) as w:  # fmt: skip
        for k in range(lmax.size):
            rmin = 0.5 * abs(lmin[k]) if k in bad else 1e-6
            w.record(k, {"train_loss": 1.0, "max_eig": lmax[k], "min_eig": lmin[k],
                         "max_eig_residual": 1e-4 * lmax[k], "min_eig_residual": rmin,
                         "hessian_converged": 0.0 if k in bad else 1.0,
                         "hvp_products": 30.0})  # fmt: skip
    return path


def test_the_relative_residual_is_what_the_solvers_tolerance_bounds():
    """plots.hessian keeps engine.hessian's floor (without importing torch for a plot)."""
    from engine.hessian import FLOOR, accepted

    assert ph.FLOOR == FLOOR
    rng = np.random.default_rng(0)
    for _ in range(200):
        lmax, lmin = rng.uniform(0.1, 10), rng.uniform(-1, 1) * 10 ** rng.uniform(-4, 0)
        value = rng.choice([lmax, lmin])
        res = 10 ** rng.uniform(-7, -1)
        rel = float(ph.relative_residual(value, res, lmax, lmin))
        assert (rel <= 1e-3) == accepted(value, res, max(abs(lmax), abs(lmin)), 1e-3)


def test_every_hessian_title_carries_the_worst_residual_and_the_params(tmp_path):
    s = read_surface(hessian_file(tmp_path / "h.h5"))
    a = ph.accuracy(s)
    # lambda_min's worst: 0.5 of itself at an unconverged point; lambda_max's 1e-4 of itself.
    assert a.worst_min == pytest.approx(0.5) and a.worst_max == pytest.approx(1e-4)
    assert a.bad == 2 and a.points == 20 and a.params == "all" and a.tol == 1e-3
    for name in ("ratio", "max_eig", "min_eig", "min_eig_residual", "hessian_converged"):
        spec = resolve(s, name)
        assert "worst residual 5.0e-01 x |lambda|" in spec.title, spec.title
        assert "params all" in spec.title and "2/20 NOT converged" in spec.title
    assert "residual" not in resolve(s, "train_loss").title  # a loss says nothing of it
    text = draw(resolve(s, "ratio"), width=100, height=16, color=False)
    assert "2/20 NOT converged (?) | worst residual 5.0e-01" in text.splitlines()[0]


def test_unconverged_points_are_masked_and_marked_in_the_ratio_map(tmp_path):
    s = read_surface(hessian_file(tmp_path / "h.h5"))
    r = surface_values(s, "ratio")
    flat = r.ravel()
    assert np.isnan(flat[sorted(BAD)]).all()  # never drawn as if converged
    others = [k for k in range(flat.size) if k not in BAD]
    assert np.isfinite(flat[others]).all()
    spec = resolve(s, "ratio")
    fx, fy = spec.flagged
    # k = i * nx + j: 3 at (x[3], y[0]), 7 at (x[2], y[1])
    got = sorted(zip(fx.tolist(), fy.tolist(), strict=True))
    assert np.allclose(got, [(0.0, -1 / 3), (0.5, -1.0)])
    for kind in ("heatmap", "contour", "filled"):
        text = draw(resolve(s, "ratio", kind), width=60, height=16, color=False)
        body = "\n".join(text.splitlines()[1:])  # below the title (which names the marker)
        assert body.count(FLAG_MARKER) == 2, (kind, text)
    # The eigenvalue maps keep their values, with the same marks.
    assert np.isfinite(surface_values(s, "min_eig")).all()
    assert resolve(s, "min_eig").flagged is not None
    # A file whose points all converged has no marks and says so.
    ok = read_surface(hessian_file(tmp_path / "ok.h5", bad=set()))
    assert resolve(ok, "ratio").flagged is None
    assert "NOT converged" not in resolve(ok, "ratio").title


def test_the_exported_ratio_map_marks_unconverged_points(tmp_path):
    pytest.importorskip("matplotlib")
    from tui_landscape.plots.export import spec_figure

    s = read_surface(hessian_file(tmp_path / "h.h5"))
    fig = spec_figure(resolve(s, "ratio", figure=True))
    ax = fig.axes[0]
    marked = [ln for ln in ax.lines if ln.get_label() == "not converged"]
    assert len(marked) == 1 and len(marked[0].get_xdata()) == 2
    title = ax.get_title()  # broken between its parts: a figure cuts a wider one off
    assert "worst residual" in title and "params all" in title
    assert len(title.splitlines()) == 2 and all(len(x) <= 66 for x in title.splitlines())


def test_info_says_the_worst_residual_relative_to_what_and_the_unconverged_points(tmp_path):
    f = hessian_file(tmp_path / "h.h5")
    r = runner.invoke(app, ["info", str(f)])
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "hessian.params = 'all'" in out
    assert "0.0001 of lambda_max (relative to lambda_max)" in out
    assert "0.5 of lambda_min (relative to max(|lambda_min|, 0.01 |lambda_max|))" in out
    assert "2 of 20 points NOT converged" in out
    assert "trace 12.5 +- 0.25" in out and "plot --kind density" in out


def test_the_density_is_drawn_as_stored(tmp_path):
    f = hessian_file(tmp_path / "h.h5")
    sp = read_spectrum(f)
    spec = density_spec(sp, f)
    t, rho = spec.x, spec.series["density"]
    assert np.array_equal(t, sp["density_grid"]) and np.array_equal(rho, sp["density"])
    assert np.trapezoid(rho, t) == pytest.approx(1.0, abs=1e-3)  # the weights' mass
    assert spec.marks.tolist() == [3.0, 2.9, 0.3]
    legend = " ".join(spec.notes)
    assert "trace 12.5 +- 0.25 (Hutchinson, 50 probes" in legend
    assert "top 3 (lines): 3, 2.9, 0.3" in legend and "hessian.params = 'all'" in legend
    # The terminal's curve peaks where the stored density does.
    text = draw(spec, width=80, height=20, color=False)
    rows = text.splitlines()
    top = next(r for r in rows if re.search("[\u2801-\u28ff]", r))
    frame = next(r for r in rows if "┌" in r)
    left, right = frame.index("┌") + 1, frame.rindex("┐")
    cols = [m.start() for m in re.finditer("[\u2801-\u28ff]", top)]
    lo, hi = min(t.min(), spec.marks.min()), max(t.max(), spec.marks.max())
    want = left + (t[np.argmax(rho)] - lo) / (hi - lo) * (right - left - 1)
    assert min(abs(c - want) for c in cols) <= 2, (cols, want, text)
    assert "trace 12.5 +- 0.25" in text  # the legend below the plot
    log = draw(density_spec(sp, f, log=True), width=80, height=20, color=False)
    assert "log10 density" in log


def test_the_exported_density_keeps_the_stored_curve(tmp_path):
    pytest.importorskip("matplotlib")
    f = hessian_file(tmp_path / "h.h5")
    r = runner.invoke(app, ["plot", str(f), "--kind", "density", "--export",
                            str(tmp_path / "d.png")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (tmp_path / "d.png").stat().st_size > 0
    from tui_landscape.plots.export import spec_figure

    sp = read_spectrum(f)
    ax = spec_figure(density_spec(sp, f)).axes[0]
    curve = ax.lines[0]
    assert np.array_equal(curve.get_xdata(), sp["density_grid"])
    assert np.array_equal(curve.get_ydata(), sp["density"])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("trace 12.5 +- 0.25" in x for x in labels) and any("top 3" in x for x in labels)


def test_plot_kind_density_in_the_terminal_and_without_a_spectrum(tmp_path):
    f = hessian_file(tmp_path / "h.h5")
    r = runner.invoke(app, ["plot", str(f), "--kind", "density", "--width", "90"])
    assert r.exit_code == 0, r.output
    assert "eigenvalue density" in r.stdout and "trace 12.5 +- 0.25" in r.stdout
    bare = hessian_file(tmp_path / "bare.h5", spectrum=False)
    r = runner.invoke(app, ["plot", str(bare), "--kind", "density"])
    assert r.exit_code == 2
    err = " ".join(r.stderr.split())
    assert "holds no eigenvalue density" in err and "hessian.density_probes" in err
    assert "Traceback" not in r.output


def test_the_app_shows_the_accuracy_and_the_density(tmp_path):
    """Pilot: a Hessian map's title and status say what did not converge; `k` goes on from
    the last map kind to the density, and back."""
    from tests.test_tui import sync, wait_for
    from tui_landscape.app import create_app
    from tui_landscape.screens.plot import PlotScreen

    @sync
    async def run(path, has_density: bool) -> None:
        app = create_app(path)
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, PlotScreen) and app.screen.view.surface is not None,
            )
            screen, v = app.screen, app.screen.view
            while v.name_ != "ratio":
                await pilot.press("s")
            assert "2/20 NOT converged (?)" in str(v.render())
            await pilot.press("down")  # from the centre (x=0, y=1/3) to an unconverged point
            status = str(screen.query_one("#status").render())
            assert "ratio at (x=0, y=-0.3333) = nan (NOT converged)" in status, status
            kinds = []
            for _ in range(4):  # the ratio's auto is a heat map, the last map kind
                await pilot.press("k")
                kinds.append(v.kind)
                if v.kind == "density":
                    text = str(v.render())
                    assert "eigenvalue density" in text and "trace 12.5 +- 0.25" in text
                    assert "top 3 (lines): 3, 2.9, 0.3" in text
            want = ["contour", "filled", "heatmap"]
            assert kinds == (["density", *want] if has_density else [*want, "contour"])

    run(hessian_file(tmp_path / "h.h5"), True)
    run(hessian_file(tmp_path / "bare.h5", spectrum=False), False)


def test_a_centre_only_file_offers_its_density_on_k(tmp_path):
    """`hessian --center` writes one point: no map to switch, but `k` shows the density."""
    from tests.test_tui import sync, wait_for
    from tui_landscape.app import create_app
    from tui_landscape.screens.plot import PlotScreen

    nodes, weights, t, rho, sigma = density_arrays()
    extras = spectrum_datasets({"params": "2d", "n": 10, "tol": 1e-3, "lmax": 3.0, "lmin": -0.4,
                                "lmax_residual": 0.0, "lmin_residual": 0.0, "converged": 1.0,
                                "top_k": np.array([3.0]), "density_grid": t, "density": rho,
                                "density_sigma": sigma, "slq_nodes": nodes,
                                "slq_weights": weights})  # fmt: skip
    path = tmp_path / "c.h5"
    g = Grid.parse("0:0:1")
    with SurfaceWriter.create(path, g, NAMES, Provenance(), "d.h5", extras=extras) as w:
        w.record(0, dict.fromkeys(NAMES, 1.0))

    @sync
    async def run() -> None:
        app = create_app(path)
        async with app.run_test(size=(90, 30)) as pilot:
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, PlotScreen) and app.screen.view.surface is not None,
            )
            v = app.screen.view
            assert app.screen.check_action("next_kind", ()) is True
            assert app.screen.check_action("slice", ()) is False
            await pilot.press("k")
            assert v.kind == "density" and "eigenvalue density" in str(v.render())
            await pilot.press("k")
            assert v.kind == "auto"

    run()


def test_a_file_without_residuals_says_so_and_compare_refuses_the_density(tmp_path):
    from tests.test_plot_cli import reference_file

    ref = reference_file(tmp_path / "ref.h5", 6, 5, eig=True)  # the reference's: no residuals
    s = read_surface(ref)
    title = resolve(s, "ratio").title
    assert "no residuals stored" in title and "params 2d" in title
    r = runner.invoke(app, ["compare", str(ref), str(ref), "--kind", "density"])
    assert r.exit_code == 2 and "plot FILE --kind density" in " ".join(r.stderr.split())
