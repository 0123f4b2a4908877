"""`plot` and `compare` on every kind of file: ours and the reference's, 1D and 2D, square or
not, with NaN and unfinished points; exports; the shared scale of `compare`."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from engine.formats import Provenance, SurfaceWriter, read_surface
from engine.grid import Grid
from tui_landscape.cli import app
from tui_landscape.plots.spec import levels_for, parse_levels, resolve, tick_format
from tui_landscape.plots.views import render, render_compare

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def paraboloid(nx: int, ny: int | None, a: float = 1.0, b: float = 2.0):
    x = np.linspace(-1, 1, nx)
    if ny is None:
        return x, None, a * x**2 + 0.1
    y = np.linspace(-1, 1, ny)
    X, Y = np.meshgrid(x, y)
    return x, y, a * X**2 + b * Y**2 + 0.1


def reference_file(path, nx, ny, *, eig=False, a=1.0):
    """A file as the reference writes it: (nx, ny)-allocated arrays, -1 where unfinished."""
    x, y, z = paraboloid(nx, ny, a)
    with h5py.File(path, "w") as f:
        f["xcoordinates"] = x
        if y is not None:
            f["ycoordinates"] = y
        flat = z.ravel().copy()
        flat[1] = -1  # one unfinished point
        shape = (nx,) if y is None else (nx, ny)  # the reference's allocation
        f["train_loss"] = flat.reshape(shape)
        f["train_acc"] = (100 - flat).reshape(shape)
        if eig:
            f["max_eig"] = (10 + z).ravel().reshape(shape)
            f["min_eig"] = (-z).ravel().reshape(shape)
    return path


def our_file(path, nx, ny, *, nan_at=(), unfinished=()):
    g = Grid.parse(f"-1:1:{nx}", f"-1:1:{ny}" if ny else "")
    _, _, z = paraboloid(nx, ny)
    names = ["train_loss", "train_acc"]
    with SurfaceWriter.create(path, g, names, Provenance(), "d.h5") as w:
        for k, v in enumerate(z.ravel()):
            if k in unfinished:
                continue
            v = float("nan") if k in nan_at else float(v)
            w.record(k, {"train_loss": v, "train_acc": 50.0})
    return path


@pytest.fixture
def files(tmp_path):
    return {
        "square": our_file(tmp_path / "sq.h5", 9, 9, nan_at={3}, unfinished={5, 6}),
        "wide": our_file(tmp_path / "wide.h5", 11, 5, nan_at={0}),
        "one": our_file(tmp_path / "one.h5", 15, None, unfinished={2}),
        "ref": reference_file(tmp_path / "ref.h5", 7, 7),
        "ref_wide": reference_file(tmp_path / "refw.h5", 8, 5, eig=True),
        "ref_1d": reference_file(tmp_path / "ref1.h5", 9, None),
    }


@pytest.mark.parametrize("kind", ["auto", "contour", "filled", "heatmap", "curve"])
@pytest.mark.parametrize("name", ["square", "wide", "one", "ref", "ref_wide", "ref_1d"])
def test_every_kind_draws_every_file(files, kind, name):
    r = invoke("plot", files[name], "--kind", kind, "--width", 70, "--height", 16)
    assert r.exit_code == 0, r.output
    assert "min " in r.stdout


def test_missing_points_are_drawn_as_missing_not_zero(tmp_path):
    # Everything unfinished except two points of value 5: zero must not appear as a minimum.
    g = Grid.parse("-1:1:5", "-1:1:5")
    with SurfaceWriter.create(tmp_path / "m.h5", g, ["train_loss"], Provenance(), "d.h5") as w:
        w.record(0, {"train_loss": 5.0})
        w.record(24, {"train_loss": 6.0})
    s = read_surface(tmp_path / "m.h5")
    text = render(s, "train_loss", "heatmap", width=40, height=10, color=False)
    assert "colour: 5 " in text and "0 " not in text.split("colour:")[1]
    body = "\n".join(text.splitlines()[1:-3])
    assert body.count(".") + body.count("@") > 0 and " " in body  # blanks where missing
    assert "min 5 at (-1, -1)" in render(s, "train_loss", width=60, height=14, color=False)


def test_a_one_point_wide_grid_draws(tmp_path):
    # Our grids have num >= 2; the reference's can have one row (ycoordinates of length 1).
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f["xcoordinates"], f["ycoordinates"] = np.linspace(-1, 1, 7), np.zeros(1)
        f["train_loss"] = (1.0 + np.arange(7.0)).reshape(7, 1)
    for kind in ("auto", "heatmap", "filled"):
        r = invoke("plot", tmp_path / "r.h5", "--kind", kind, "--width", 60)
        assert r.exit_code == 0, r.output
    pytest.importorskip("matplotlib")  # each file a curve; matplotlib's contour() refused it
    r = invoke("compare", tmp_path / "r.h5", tmp_path / "r.h5", "--export", tmp_path / "c.png")
    assert r.exit_code == 0 and (tmp_path / "c.png").stat().st_size > 0, r.output


def test_ratio_map_uses_the_references_fixed_scale(files):
    r = invoke("plot", files["ref_wide"], "--kind", "ratio", "--width", 60, "--height", 12)
    assert r.exit_code == 0, r.output
    assert "colour: 0 " in r.stdout and " 0.5" in r.stdout
    r = invoke("plot", files["square"], "--kind", "ratio", "--width", 60)
    assert r.exit_code == 2 and "no Hessian eigenvalues" in r.stderr


def test_training_path_over_contours_with_pc_labels(files, tmp_path):
    with h5py.File(tmp_path / "proj.h5", "w") as f:
        f["proj_xcoord"] = np.array([0.8, 0.5, 0.2, 0.0])
        f["proj_ycoord"] = np.array([0.6, 0.3, 0.1, 0.0])
        f["explained_variance_ratio_"] = np.array([0.6123, 0.2001])
    r = invoke("plot", files["square"], "--path", tmp_path / "proj.h5", "--width", 80)
    assert r.exit_code == 0, r.output
    assert "1st PC: 61.23 %" in r.stdout and "2nd PC: 20.01 %" in r.stdout


def test_levels_in_the_references_form_and_bad_levels(files):
    r = invoke("plot", files["square"], "--levels", "0.1:3:0.5", "--width", 70)
    assert r.exit_code == 0 and "levels 0.1..2.6" in r.stdout, r.output
    for bad in ("1:0:0.1", "a:b:c", "0:1:0", "-3"):
        r = invoke("plot", files["square"], "--levels", bad)
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r.output)


def test_unknown_surface_and_kind_are_one_line(files):
    r = invoke("plot", files["square"], "--surface", "test_loss")
    assert r.exit_code == 2 and "has no surface 'test_loss'" in r.stderr
    r = invoke("plot", files["square"], "--kind", "pie")
    assert r.exit_code == 2 and "--kind" in r.stderr


def test_sharpness_is_printed_for_loss_surfaces(files):
    # The paraboloid x^2 + 2 y^2 on 11 x 5 points: steps 0.2 and 0.5, too coarse for a fit
    # within 0.35 (the fit needs 7 points), which says so instead of a number.
    r = invoke("plot", files["wide"], "--width", 60)
    assert "curvature x n/a, y n/a (quadratic fit within 0.35)" in r.stdout
    assert "  x n/a: 3 finite points within 0.35 of the minimum (the fit needs 7)" in r.stdout
    r = invoke("plot", files["wide"], "--width", 60, "--fit-radius", 0.7)
    assert "curvature x 2, y n/a (quadratic fit within 0.7)" in r.stdout  # x fitted exactly
    r = invoke("plot", files["wide"], "--fit-radius", 0)
    assert r.exit_code == 2 and "Expected `fit_radius` > 0, but got 0.0." in r.stderr
    assert r.stdout == ""  # refused before anything is drawn


def test_compare_shares_one_scale_and_names_the_sharper(tmp_path):
    flat = reference_file(tmp_path / "flat.h5", 9, 9, a=0.5)
    sharp = reference_file(tmp_path / "sharp.h5", 9, 9, a=4.0)
    s = [read_surface(flat), read_surface(sharp)]
    lv = levels_for(np.concatenate([x.values["train_loss"].ravel() for x in s]))
    texts = render_compare(s, "train_loss", width=100, height=14, color=False)
    for t in texts:
        assert f"levels {lv[0]:.3g}..{lv[-1]:.3g}" in t  # the same levels in both maps
    r = invoke("compare", flat, sharp, "--width", 60)
    assert r.exit_code == 0, r.output
    assert "sharpest by mean rise within r=0.25: sharp.h5; flattest: flat.h5" in r.stdout
    heat = invoke("compare", flat, sharp, "--kind", "heatmap", "--width", 60)
    scales = re.findall(r"colour: (\S+) .* (\S+)$", heat.stdout, re.M)
    assert len(scales) == 2 and scales[0] == scales[1]


def test_compare_refuses_1d_with_2d_and_overlays_1d(files):
    r = invoke("compare", files["one"], files["square"])
    assert r.exit_code == 2 and "cannot compare 1D and 2D" in r.stderr
    r = invoke("compare", files["one"], files["ref_1d"], "--width", 60)
    assert r.exit_code == 0 and "one.h5" in r.stdout and "ref1.h5" in r.stdout, r.output
    r = invoke("compare", files["one"])
    assert r.exit_code == 2


def test_vtp_export_from_plot(files, tmp_path):
    r = invoke("plot", files["wide"], "--export", tmp_path / "s.vtp")
    assert r.exit_code == 0, r.output
    piece = ET.parse(tmp_path / "s.vtp").getroot().find(".//Piece")
    assert piece is not None and int(piece.get("NumberOfPoints")) > 0


def test_png_export_from_plot_and_compare(files, tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    r = invoke("plot", files["wide"], "--export", tmp_path / "s.png", "--dpi", 50)
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "s.png").size == (300, 225)
    r = invoke("plot", files["one"], "--export", tmp_path / "c.svg")
    assert r.exit_code == 0 and (tmp_path / "c.svg").read_bytes().lstrip().startswith(b"<")
    r = invoke("compare", files["ref"], files["square"], "--export", tmp_path / "cmp.png")
    assert r.exit_code == 0 and (tmp_path / "cmp.png").exists(), r.output
    r = invoke("plot", files["wide"], "--kind", "surface3d", "--export", tmp_path / "3d.png")
    assert r.exit_code == 0, r.output


def test_the_commands_fit_radius_is_the_engines_and_info_takes_it(files):
    import inspect

    from engine.sharpness import FIT_RADIUS
    from tui_landscape.cli.compare import compare
    from tui_landscape.cli.info import info
    from tui_landscape.cli.plot import plot

    for command in (plot, compare, info):  # spelt in the CLI: --help imports no numpy
        assert inspect.signature(command).parameters["fit_radius"].default == FIT_RADIUS
    r = invoke("info", files["wide"], "--fit-radius", 0.7, "--margin", 0.5)
    assert r.exit_code == 0, r.output
    assert "curvature x 2, y n/a (quadratic fit within 0.7)" in r.stdout
    assert "basin width (loss <= min + 0.5)" in r.stdout
    r = invoke("info", files["wide"], "--radius", 0)
    assert r.exit_code == 2 and "Expected `radius` > 0" in r.stderr


def test_a_grid_coarser_than_the_radius_has_no_mean_rise_and_compare_falls_back(tmp_path):
    from engine.sharpness import format_sharpness, sharpness

    a = reference_file(tmp_path / "a.h5", 7, 7, a=0.5)  # step 1/3 > r = 0.25
    b = reference_file(tmp_path / "b.h5", 7, 7, a=4.0)
    s = read_surface(a)
    sh = sharpness(s.x, s.y, s.values["train_loss"])
    assert np.isnan(sh.mean_increase)
    assert "no grid point within r" in format_sharpness(sh)[-1]
    # Nor a curvature within 0.35 (3 points): the notes say why, the verdict that it cannot.
    r = invoke("compare", a, b, "--width", 60)
    out = " ".join(r.stdout.split())
    assert "note: curvature n/a (a.h5 x, y; b.h5 x, y): 3 finite points within 0.35 of" in out
    assert "sharpest: not measurable" in out
    # Within 1.1 each axis has 7 points: the verdict falls back on the curvature.
    r = invoke("compare", a, b, "--width", 60, "--fit-radius", 1.1)
    out = " ".join(r.stdout.split())
    assert "sharpest by mean curvature: b.h5; flattest: a.h5" in out
    assert "quadratic fit within 1.1" in out
    same = reference_file(tmp_path / "c.h5", 9, 9)
    twin = reference_file(tmp_path / "d.h5", 9, 9)
    r = invoke("compare", same, twin, "--width", 60)
    assert "tie" in r.stdout and "sharpest by" not in r.stdout


def test_compare_1d_with_2d_says_only_the_error(files):
    r = invoke("compare", files["square"], files["one"])
    assert r.exit_code == 2 and "note:" not in r.stdout


def test_export_into_a_missing_folder_is_refused(files, tmp_path):
    pytest.importorskip("matplotlib")
    r = invoke("plot", files["wide"], "--export", tmp_path / "no" / "such" / "f.png")
    assert r.exit_code == 2 and "output folder does not exist" in r.stderr
    assert not (tmp_path / "no").exists()


def basin_file(path):
    """A loss around a sharp minimum: positive and spanning decades (log-spaced levels)."""
    g = Grid.parse("-1:1:11", "-1:1:9")
    X, Y = np.meshgrid(g.x.coordinates(), g.y.coordinates())
    z = 1e-3 + 30 * (X**2 + Y**2) ** 2
    with SurfaceWriter.create(path, g, ["train_loss"], Provenance(), "d.h5") as w:
        for k, v in enumerate(z.ravel()):
            w.record(k, {"train_loss": float(v)})
    return path


@pytest.mark.parametrize(
    ("name", "kind", "levels"),
    [
        ("basin", "auto", None),  # log-spaced levels around the minimum
        ("square", "contour", None),  # the reference's 0.1..10 every 0.5 (NaN and unfinished)
        ("wide", "filled", None),  # bands: the same levels
        ("ref", "contour", "4"),  # a count
        ("square", "auto", "0.3:2.9:0.4"),  # the reference's vmin:vmax:step
    ],
)
def test_the_terminal_plot_and_the_png_of_one_file_draw_the_same_levels(
    files, tmp_path, name, kind, levels
):
    """`plot FILE` and `plot FILE --export F.png` draw their levels at the same values: the
    terminal's title names the range it drew, the figure's contours lie at the spec's levels."""
    pytest.importorskip("matplotlib")
    from tui_landscape.plots.export import spec_figure

    path = basin_file(tmp_path / "basin.h5") if name == "basin" else files[name]
    opts = ["--kind", kind] + (["--levels", levels] if levels else [])
    text = invoke("plot", path, *opts, "--width", 100, "--height", 16)
    assert text.exit_code == 0, text.output
    r = invoke("plot", path, *opts, "--export", tmp_path / "f.png", "--dpi", 30)
    assert r.exit_code == 0 and (tmp_path / "f.png").stat().st_size > 0, r.output
    spec = resolve(read_surface(path), "train_loss", kind, levels=parse_levels(levels), figure=True)
    lv = spec.levels
    assert lv.size >= 4
    drawn = spec_figure(spec, dpi=30).axes[0].collections[0].levels  # contour or contourf
    np.testing.assert_allclose(drawn, lv, rtol=1e-12)
    fmt = tick_format([lv[0], lv[-1]])
    assert f"levels {fmt % lv[0]}..{fmt % lv[-1]}" in text.stdout  # filled bands name theirs too


def accuracy_file(path):
    """Loss x^2 + 2 y^2 + 0.1 and accuracy 90 - 10 * loss: best at (0, 0), worst in a corner."""
    g = Grid.parse("-1:1:9", "-1:1:9")
    _, _, z = paraboloid(9, 9)
    with SurfaceWriter.create(path, g, ["train_loss", "train_acc"], Provenance(), "d.h5") as w:
        for k, v in enumerate(z.ravel()):
            w.record(k, {"train_loss": float(v), "train_acc": 90.0 - 10 * float(v)})
    return path


def test_an_accuracy_map_marks_and_reports_its_maximum(tmp_path):
    f = accuracy_file(tmp_path / "acc.h5")
    r = invoke("plot", f, "--surface", "train_acc", "--width", 80)
    assert r.exit_code == 0, r.output
    assert "max 89 at (0, 0)" in r.stdout and "min " not in r.stdout
    r = invoke("plot", f, "--width", 80)  # a loss keeps its minimum
    assert "min 0.1 at (0, 0)" in r.stdout
    pytest.importorskip("matplotlib")
    from tui_landscape.plots.export import spec_figure

    for kind in ("contour", "filled", "heatmap"):
        r = invoke(
            "plot", f, "--surface", "train_acc", "--kind", kind, "--width", 80, "--height", 16
        )
        assert "max 89 at (0, 0)" in r.stdout, (kind, r.stdout)  # every map kind names it
        r = invoke(
            "plot", f, "--surface", "train_acc", "--kind", kind, "--export", tmp_path / "a.png"
        )
        assert r.exit_code == 0, r.output
        fig = spec_figure(resolve(read_surface(f), "train_acc", kind, figure=True))
        stars = [ln for ln in fig.axes[0].lines if ln.get_marker() == "*"]
        assert len(stars) == 1 and (stars[0].get_xdata()[0], stars[0].get_ydata()[0]) == (0, 0)


def test_compare_of_different_grids_says_so_in_the_verdict(tmp_path):
    flat = reference_file(tmp_path / "flat.h5", 9, 9, a=0.5)
    sharp = reference_file(tmp_path / "sharp.h5", 11, 9, a=4.0)
    r = invoke("compare", flat, sharp, "--width", 60)
    assert r.exit_code == 0, r.output
    verdict = " ".join(r.stdout[r.stdout.index("sharpest by") :].split())  # rich folds at 80
    assert verdict.startswith("sharpest by mean rise within r=0.25: sharp.h5")
    caveat = "(but the grids differ: the numbers agree only to within their sampling; not complete:"
    assert f"flat.h5 {caveat}" in verdict, verdict
    same = invoke("compare", flat, reference_file(tmp_path / "s2.h5", 9, 9, a=4.0), "--width", 60)
    assert "sharpest by" in same.stdout and "differ" not in same.stdout


def test_compare_names_unfinished_files_and_fits_80_columns(tmp_path, monkeypatch):
    """A surface 60% done was called sharpest with no word, and at 80 columns the rise column
    (the verdict's own number) was cut off (issue 17)."""
    import io

    from rich.console import Console

    import tui_landscape.cli.compare as compare_cli

    out = io.StringIO()  # an 80-column terminal
    term = Console(file=out, width=80, force_terminal=True, color_system=None, emoji=False)
    monkeypatch.setattr(compare_cli, "console", term)
    done = our_file(tmp_path / "a_long_name_for_a_resnet56_run.h5", 9, 9)
    part = our_file(tmp_path / "part.h5", 9, 9, unfinished=set(range(32)))
    r = invoke("compare", done, part, "--width", 80)
    assert r.exit_code == 0, r.output
    text = out.getvalue()
    table = text[text.index("file") :].splitlines()
    assert table[0].split()[-1] == "rise" and all(len(line) <= 80 for line in table)
    assert re.fullmatch(r"\d\.\d+", table[2].split()[-1]), table  # the rise, whole
    assert "part.h5 (60%)" in text  # its numbers are of the finished points only
    verdict = " ".join(text[text.index("(docs/sharpness.md)") + 19 :].split())
    # The unfinished file's rise is of its finished points only (0.0625 against 0.075 for the
    # same paraboloid): the verdict names it flattest, and says it is not complete.
    assert verdict == (
        "sharpest by mean rise within r=0.25: a_long_name_for_a_resnet56_run.h5; "
        "flattest: part.h5 (but not complete: part.h5 (60%))"
    ), verdict


def test_piped_1d_plot_gives_each_series_its_own_marker(files):
    r = invoke("plot", files["ref_1d"], "--width", 70)
    assert r.exit_code == 0, r.output
    legend = re.findall(r"[L⅃] (\S\S) (\w+_(?:loss|acc))", r.stdout)
    markers = {name: m for m, name in legend}
    assert set(markers) == {"train_loss", "train_acc"} and len(set(markers.values())) == 2, legend


def test_sharpness_of_an_unfinished_surface_says_so(tmp_path):
    part = our_file(tmp_path / "part.h5", 9, 9, unfinished=set(range(20)))
    r = invoke("plot", part, "--width", 80)
    assert r.exit_code == 0 and "sharpness of the finished points only (61/81):" in r.stdout
    r = invoke("info", part)
    assert "of the finished points only (61/81)" in " ".join(r.stdout.split())
    full = our_file(tmp_path / "full.h5", 9, 9)
    for cmd in ("plot", "info"):
        assert "finished points only" not in invoke(cmd, full).stdout


def test_an_accuracy_map_gets_levels_over_its_own_range(tmp_path):
    """An accuracy from 5% to 58% was given the loss's reference levels (0.1 to 10 every 0.5):
    the title said `levels 2.1..9.6` (5.1..9.6 here) and the 10-58% range was blank."""
    g = Grid.parse("-1:1:9", "-1:1:9")
    _, _, z = paraboloid(9, 9)  # 0.1 to 3.1
    acc = 58 - 53 * (z - 0.1) / 3  # 58% at the centre, 5% in the corners
    names = ["train_loss", "train_acc"]
    with SurfaceWriter.create(tmp_path / "a.h5", g, names, Provenance(), "d.h5") as w:
        for k, (v, a) in enumerate(zip(z.ravel(), acc.ravel(), strict=True)):
            w.record(k, {"train_loss": float(v), "train_acc": float(a)})
    r = invoke("plot", tmp_path / "a.h5", "--surface", "train_acc", "--width", 80)
    assert r.exit_code == 0, r.output
    lo, hi = map(float, re.search(r"levels (\S+)\.\.(\S+)", r.stdout).groups())
    assert lo < 10 and hi > 50, r.stdout  # the levels span the accuracy's range
    heat = invoke(
        "plot", tmp_path / "a.h5", "--surface", "train_acc", "-k", "heatmap", "--width", 80
    )
    assert re.search(r"colour: 5 \S+ 58$", heat.stdout, re.M), heat.stdout  # not cut at 10
    loss = invoke("plot", tmp_path / "a.h5", "--width", 80)  # a loss keeps the reference's
    assert "levels 0.1..3.1" in loss.stdout, loss.stdout
