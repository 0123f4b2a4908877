"""A loss function's other metrics, ``<split>_<name>``, are surfaces everywhere: the format
(writer, journal, resume, reader, a foreign writer's file), `info`, `plot`, `compare`, the
app's surface switch, and files without an accuracy."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from engine.formats import (
    Provenance,
    SurfaceWriter,
    journal_path,
    read_journal,
    read_surface,
    surface_info,
    surface_names,
)
from engine.grid import Grid
from tests.test_tui import sync, wait_for
from tui_landscape.app import create_app
from tui_landscape.cli import app as cli_app
from tui_landscape.plots.spec import resolve
from tui_landscape.plots.terminal import draw
from tui_landscape.screens.compare import CompareScreen
from tui_landscape.screens.plot import PlotScreen

runner = CliRunner()
# The order every reader gives, whatever order the writer was handed.
ORDERED = ("train_loss", "train_abs_err", "test_loss", "test_abs_err")


def invoke(*args):
    return runner.invoke(cli_app, [str(a) for a in args])


def values(g: Grid, a: float = 1.0) -> dict[str, np.ndarray]:
    """Loss a x^2 + 2 y^2 + 0.1 (minimum at the centre), its metrics made from it."""
    x = g.x.coordinates()
    y = g.y.coordinates() if g.y is not None else np.zeros(1)
    X, Y = np.meshgrid(x, y)
    loss = (a * X**2 + 2 * Y**2 + 0.1).reshape(g.shape)
    return {
        "train_loss": loss,
        "train_abs_err": np.sqrt(loss),
        "train_acc": 90.0 - loss,
        "test_loss": 2 * loss,
        "test_abs_err": 3 * loss,
    }


def metric_file(path, names=("test_abs_err", "train_loss", "test_loss", "train_abs_err"),
                grid=("-1:1:9", "-1:1:7"), a: float = 1.0, skip=()):  # fmt: skip
    g = Grid.parse(*grid)
    v = values(g, a)
    with SurfaceWriter.create(path, g, list(names), Provenance(), "d.h5") as w:
        for k in range(g.size):
            if k not in skip:
                w.record(k, {n: float(v[n].reshape(-1)[k]) for n in names})
    return path


# ---------------------------------------------------------------------------------------------
# the format


def test_surface_names_picks_surfaces_in_one_order():
    found = surface_names([
        "test_abs_err", "max_eig", "train_zeta", "completed", "proj_xcoord", "train_acc",
        "failed_index", "xcoordinates", "dir_file", "test_loss", "train_loss", "valid_loss",
        "train_", "train_1x", "train_a-b", "train_a\n", "Train_loss", "hvp_products",
    ])  # fmt: skip
    assert found == (
        "train_loss", "train_acc", "train_zeta", "test_loss", "test_abs_err",
        "max_eig", "hvp_products",
    )  # fmt: skip


@pytest.mark.parametrize(
    "names",
    [[], ["completed"], ["proj_xcoord"], ["train_loss", "train_loss"], ["train_loss", "x y"],
     ["train_loss", "validation_loss"], ["train_loss", "train_a\n"]],
)  # fmt: skip
def test_the_writer_refuses_names_that_are_not_surfaces(tmp_path, names):
    p = tmp_path / "s.h5"
    with pytest.raises(ValueError, match="Expected `names`"):
        SurfaceWriter.create(p, Grid.parse("-1:1:5", ""), names, Provenance(), "d.h5")
    assert not p.exists()
    metric_file(p)  # the lock was given back


def test_extra_metrics_go_through_journal_checkpoint_and_resume(tmp_path):
    p, copy = tmp_path / "a.h5", tmp_path / "b.h5"
    g = Grid.parse("-1:1:9", "-1:1:7")
    v = values(g)
    names = ["test_abs_err", "train_loss", "test_loss", "train_abs_err"]
    point = {n: float(v[n].reshape(-1)[5]) for n in names}
    w = SurfaceWriter.create(p, g, names, Provenance(), "d.h5")
    try:
        assert w.names == list(ORDERED)
        w.record(5, point)
        w.flush()  # in the journal only
        s = read_surface(p)
        assert tuple(s.values) == ORDERED and s.n_done == 1
        assert s.values["train_abs_err"].reshape(-1)[5] == point["train_abs_err"]
        info = surface_info(p)
        assert info.names == ORDERED and info.done == 1
        records = read_journal(journal_path(p), str(s.attrs["id"]), g.size, info.names)
        assert [r["v"] for r in records] == [point]
        # The file and its journal as a killed run leaves them: resumed with every metric.
        shutil.copy(p, copy)
        shutil.copy(journal_path(p), journal_path(copy))
    finally:
        w.close()
    with SurfaceWriter.resume(read_surface(copy)) as r:
        assert r.names == list(ORDERED) and int(r.completed.sum()) == 1
        for k in range(g.size):
            if k != 5:
                r.record(k, {n: float(v[n].reshape(-1)[k]) for n in ORDERED})
    s = read_surface(copy)
    assert s.n_done == g.size and not journal_path(copy).exists()
    for n in ORDERED:
        np.testing.assert_array_equal(s.values[n], v[n])


def test_a_foreign_writers_metrics_are_found_and_its_other_datasets_are_not(tmp_path):
    """As a foreign writer stores them: the reference's (nx, ny) allocation, -1 where
    unfinished, metrics as float32 and as integers, and datasets named like metrics that
    are not surfaces (text, wrong size, a group, links) or not a split's (valid_loss)."""
    p = tmp_path / "foreign.h5"
    nx, ny = 8, 5
    x, y = np.linspace(-1, 1, nx), np.linspace(-1, 1, ny)
    X, Y = np.meshgrid(x, y)
    loss = (X**2 + Y**2).ravel()
    loss[3] = -1.0
    with h5py.File(p, "w") as f:
        f["xcoordinates"], f["ycoordinates"] = x, y
        f["train_loss"] = loss.reshape(nx, ny)
        f["train_abs_err"] = np.sqrt(np.abs(loss)).astype(np.float32).reshape(nx, ny)
        f["test_top5"] = np.arange(nx * ny, dtype=np.int32).reshape(nx, ny)
        f["train_notes"] = np.array([b"x"] * (nx * ny)).reshape(nx, ny)
        f["train_short"] = np.zeros(nx)
        f.create_group("train_group")
        f["train_alias"] = h5py.SoftLink("/train_loss")
        f["train_elsewhere"] = h5py.ExternalLink("/nonexistent.h5", "/train_loss")
        f["valid_loss"] = loss.reshape(nx, ny)
        f["proj_xcoord"] = np.zeros(nx * ny)
    s = read_surface(p)
    assert tuple(s.values) == ("train_loss", "train_abs_err", "test_top5")
    assert surface_info(p).names == tuple(s.values)
    assert s.values["test_top5"][1, 2] == 10  # flat index 1 * nx + 2: reshaped as (ny, nx)
    assert np.isnan(s.values["train_loss"].reshape(-1)[3])
    np.testing.assert_allclose(s.values["train_abs_err"][2], np.sqrt(X**2 + Y**2)[2], rtol=1e-6)


def test_a_known_surface_of_the_wrong_size_is_still_refused(tmp_path):
    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        f["xcoordinates"] = np.linspace(-1, 1, 5)
        f["train_abs_err"] = np.zeros(5)
        f["train_loss"] = np.zeros(4)
    r = invoke("info", p)
    assert r.exit_code != 0 and "'train_loss' has shape (4,), the grid needs (5,)" in r.output


# ---------------------------------------------------------------------------------------------
# the command line


def test_info_lists_every_metric(tmp_path):
    r = invoke("info", metric_file(tmp_path / "m.h5"))
    assert r.exit_code == 0, r.output
    rows = [ln.split()[:2] for ln in r.stdout.splitlines() if ln.strip()]
    listed = [row[0] for row in rows if row[0] in ORDERED]
    assert listed == list(ORDERED)
    assert ["train_abs_err", f"{np.sqrt(0.1):.5g}"] in rows  # its minimum


def test_plot_draws_a_metric_and_an_unknown_name_lists_the_files_surfaces(tmp_path):
    f = metric_file(tmp_path / "m.h5")
    r = invoke("plot", f, "--surface", "train_abs_err", "--width", 80)
    assert r.exit_code == 0, r.output
    assert "m.h5: train_abs_err" in r.stdout and "min 0.3162 at (0, 0)" in r.stdout
    r = invoke("plot", f, "--surface", "train_acc")
    assert r.exit_code == 2
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "has no surface 'train_acc'; it has: " + ", ".join(ORDERED) in r.stderr
    assert "<split>_<metric>" in " ".join(invoke("plot", "--help").stdout.split())


def test_an_exported_metric_is_labelled_by_split_and_name(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from tui_landscape.plots import export as ex

    figs = []
    save = ex._save
    monkeypatch.setattr(ex, "_save", lambda fig, *a, **kw: figs.append(fig) or save(fig, *a, **kw))
    f = metric_file(tmp_path / "m.h5")
    out = tmp_path / "m.png"
    r = invoke("plot", f, "--surface", "test_abs_err", "--kind", "filled", "--export", out)
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 0
    assert "test abs_err" in [ax.get_ylabel() for ax in figs[-1].axes]  # the colour bar


def test_compare_on_a_metric_both_files_hold(tmp_path):
    a = metric_file(tmp_path / "flat.h5", a=0.5)
    b = metric_file(tmp_path / "sharp.h5", names=("train_loss", "train_abs_err"), a=4.0)
    r = invoke("compare", a, b, "--surface", "train_abs_err", "--width", 60)
    assert r.exit_code == 0, r.output
    assert "flat.h5: train_abs_err" in r.stdout and "sharp.h5: train_abs_err" in r.stdout
    r = invoke("compare", a, b, "--surface", "test_abs_err")
    assert r.exit_code == 2
    assert "sharp.h5 has no surface 'test_abs_err'; it has: train_loss, train_abs_err" in " ".join(
        r.stderr.split()
    )


# ---------------------------------------------------------------------------------------------
# the app


@sync
async def test_the_surface_switch_reaches_every_metric(tmp_path):
    f = metric_file(tmp_path / "m.h5")
    app = create_app(f)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        await wait_for(pilot, lambda: app.screen.view.surface is not None)
        screen, seen = app.screen, []
        for _ in ORDERED:
            await pilot.press("s")
            seen.append(screen.view.name_)
        assert seen == [*ORDERED[1:], ORDERED[0]]
        await pilot.press("s")
        status = str(screen.query_one("#status").render())
        assert status.startswith(f"train_abs_err at (x=0, y=0) = {np.sqrt(0.1):.6g}"), status
        assert "m.h5: train_abs_err" in str(screen.view.render())


@sync
async def test_the_compare_screen_switches_to_a_metric_both_files_hold(tmp_path):
    a = metric_file(tmp_path / "a.h5", names=("train_loss", "train_acc", "train_abs_err"))
    b = metric_file(tmp_path / "b.h5", names=("train_loss", "train_abs_err"), a=4.0)
    app = create_app(a)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        app.push_screen(CompareScreen([a, b]))
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await wait_for(pilot, lambda: app.screen.surfaces is not None)  # read in a worker
        await pilot.press("s")  # train_acc is a's only: skipped
        assert app.screen.name_ == "train_abs_err"
        await pilot.pause()
        panes = [str(p.render()) for p in app.screen.query(".pane")]
        assert "a.h5: train_abs_err" in panes[0] and "b.h5: train_abs_err" in panes[1]


# ---------------------------------------------------------------------------------------------
# without an accuracy


def test_a_1d_file_without_accuracy_draws_its_loss_and_its_metric(tmp_path, monkeypatch):
    f = metric_file(tmp_path / "one.h5", names=("train_loss", "train_abs_err"), grid=("-1:1:15",))
    s = read_surface(f)
    loss = resolve(s, "train_loss")
    assert set(loss.series) == {"train_loss"} and not loss.right and loss.left_label == "loss"
    metric = resolve(s, "train_abs_err")
    assert set(metric.series) == {"train_abs_err"} and not metric.right
    assert metric.left_label == "train abs_err"
    assert "train abs_err" in draw(metric, width=70, height=20, color=False)
    for name in ("train_loss", "train_abs_err"):
        r = invoke("plot", f, "--surface", name, "--width", 70)
        assert r.exit_code == 0, r.output
    pytest.importorskip("matplotlib")
    from tui_landscape.plots import export as ex

    figs = []
    save = ex._save
    monkeypatch.setattr(ex, "_save", lambda fig, *a, **kw: figs.append(fig) or save(fig, *a, **kw))
    r = invoke("plot", f, "--export", tmp_path / "one.png")
    assert r.exit_code == 0, r.output
    assert len(figs[-1].axes) == 1  # no accuracy axis on the right


def test_a_1d_file_pairs_loss_with_accuracy_and_leaves_other_metrics_out(tmp_path):
    names = ("train_loss", "train_acc", "train_abs_err", "test_loss", "test_abs_err")
    s = read_surface(metric_file(tmp_path / "one.h5", names=names, grid=("-1:1:15",)))
    for name in ("train_loss", "train_acc"):
        spec = resolve(s, name)
        assert set(spec.series) == {"train_loss", "test_loss"} and set(spec.right) == {"train_acc"}


@pytest.mark.parametrize("kind", ["auto", "contour", "filled", "heatmap", "curve"])
def test_a_2d_file_without_accuracy_draws_every_kind(tmp_path, kind):
    f = metric_file(tmp_path / "two.h5", names=("train_loss", "train_abs_err"), skip={4})
    for name in ("train_loss", "train_abs_err"):
        r = invoke("plot", f, "--surface", name, "--kind", kind, "--width", 70)
        assert r.exit_code == 0, r.output
        assert f"two.h5: {name}" in r.stdout
