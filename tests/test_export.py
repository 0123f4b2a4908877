"""Publication figures (tui_landscape.plots.export): formats, sizes, kinds, NaN, compare, path."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ConfigError, LandscapeError
from engine.formats import Provenance, Surface, SurfaceWriter, read_surface
from engine.grid import Grid
from engine.sharpness import eigen_ratio
from tui_landscape.plots import export as E
from tui_landscape.plots.spec import (
    SURFACE_KINDS,
    PlotSpec,
    grid_spec,
    levels_for,
    resolve,
    resolve_compare,
)

pytest.importorskip("matplotlib")
from matplotlib.image import imread

SMALL = {"size": (3.0, 2.0), "dpi": 60}  # 180 x 120 px: fast, still a real figure


def _grid(nx: int, ny: int, nan: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.linspace(-1.0, 1.0, nx)
    y = np.linspace(-0.5, 1.0, ny)
    X, Y = np.meshgrid(x, y)
    z = 0.2 + X**2 + 2.0 * Y**2 + 0.3 * X * Y
    if nan:
        z[1, 2] = np.nan
        z[-1, -1] = np.nan
    return x, y, z


GRIDS = {
    "square": _grid(9, 9),
    "nonsquare": _grid(7, 4),
    "nan": _grid(9, 9, nan=True),
    "row": _grid(7, 1),
    "column": _grid(1, 5),
}


def _png(path: Path, size: tuple[float, float], dpi: float) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert img.shape[:2] == (round(size[1] * dpi), round(size[0] * dpi))
    return img[..., :3]


def _non_white(img: np.ndarray) -> float:
    return float((img.min(axis=2) < 0.98).mean())


def _coloured(img: np.ndarray) -> float:
    """Share of saturated pixels: the viridis surface, not the grey 3D panes or black text."""
    return float((img.max(axis=2) - img.min(axis=2) > 0.16).mean())


def export_map(path: Path, x, y, z, *, kind: str = "contour", size=(6, 4.5), dpi=150, **kw) -> Path:
    """Arrays drawn as every front end draws them: resolved to a spec, then ``export_spec``."""
    return E.export_spec(path, grid_spec(x, y, z, kind=kind, **kw), size=size, dpi=dpi)


def surface_file(path: Path, x: str, y: str | None, z: np.ndarray) -> Surface:
    """``z`` (NaN: a failed point) written as a surface file over grid ``x``, ``y``, and read."""
    with SurfaceWriter.create(
        path, Grid.parse(x, y or ""), ["train_loss"], Provenance(), "d.h5"
    ) as w:
        for k, v in enumerate(np.ravel(z)):
            w.record(k, {"train_loss": float(v)})
    return read_surface(path)


@pytest.fixture
def figs(monkeypatch: pytest.MonkeyPatch) -> list:
    """The matplotlib figures each export call saves, to inspect what was drawn."""
    seen: list = []
    save = E._save

    def spy(fig, *args, **kwargs):
        seen.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(E, "_save", spy)
    return seen


# --- every kind on every grid ----------------------------------------------------------------


@pytest.mark.parametrize("grid", list(GRIDS))
@pytest.mark.parametrize("kind", SURFACE_KINDS)
def test_surface_every_kind_and_grid(tmp_path: Path, kind: str, grid: str, figs: list) -> None:
    x, y, z = GRIDS[grid]
    if kind == "ratio":
        z = z / 8
    out = export_map(tmp_path / f"{kind}.png", x, y, z, kind=kind, title=kind, **SMALL)
    assert out == tmp_path / f"{kind}.png"
    img = _png(out, SMALL["size"], SMALL["dpi"])
    assert _non_white(img) > 0.05
    ax = figs[-1].axes[0]
    if grid in ("row", "column"):  # one point wide: a curve, never a contour
        assert ax.name == "rectilinear" and not ax.collections
        line = ax.get_lines()[0]
        assert len(line.get_xdata()) == z.size
    else:
        assert ax.name == ("3d" if kind == "surface3d" else "rectilinear")
        assert ax.collections


def test_default_size_and_dpi(tmp_path: Path) -> None:
    x, y, z = GRIDS["nonsquare"]
    img = _png(export_map(tmp_path / "a.png", x, y, z), (6, 4.5), 150)
    assert img.shape[:2] == (675, 900)
    _png(export_map(tmp_path / "b.png", x, y, z, size=(4, 3), dpi=100), (4, 3), 100)


def test_surface3d_is_not_blank(tmp_path: Path) -> None:
    x, y, z = GRIDS["nan"]
    img = _png(export_map(tmp_path / "s.png", x, y, z, kind="surface3d"), (6, 4.5), 150)
    assert _non_white(img) > 0.05
    # The old Axes3D(fig) figure shows only its colour bar (~3.5 % coloured); ours the surface.
    assert _coloured(img) > 0.08


def test_log_scale(tmp_path: Path, figs: list) -> None:
    x, y, z = GRIDS["nan"]
    for kind in ("filled", "heatmap", "surface3d", "contour"):
        export_map(tmp_path / f"{kind}.png", x, y, z * 100, kind=kind, log=True, **SMALL)
    from matplotlib.colors import LogNorm

    assert isinstance(figs[1].axes[0].collections[0].norm, LogNorm)
    with pytest.raises(ConfigError, match="positive"):
        export_map(tmp_path / "neg.png", x, y, -z, kind="filled", log=True, **SMALL)


# --- NaN is missing, never zero --------------------------------------------------------------


def test_nan_is_masked_not_zero(tmp_path: Path, figs: list) -> None:
    x, y, z = GRIDS["nan"]
    export_map(tmp_path / "h.png", x, y, z, kind="heatmap", **SMALL)
    mesh = figs[-1].axes[0].collections[0]
    arr = mesh.get_array()
    assert np.ma.is_masked(arr)
    assert np.array_equal(np.ma.getmaskarray(arr).reshape(z.shape), np.isnan(z))
    assert mesh.norm.vmin >= np.nanmin(z) - 1e-12  # a NaN drawn as 0 would pull the scale down

    # Missing cells are left blank (white), a colour no viridis cell has.
    full = _png(
        export_map(tmp_path / "f.png", *_grid(2, 2), kind="heatmap", **SMALL),
        SMALL["size"],
        SMALL["dpi"],
    )
    xg, yg, zg = _grid(2, 2)
    zg[0, 1] = np.nan
    hole = _png(
        export_map(tmp_path / "n.png", xg, yg, zg, kind="heatmap", **SMALL),
        SMALL["size"],
        SMALL["dpi"],
    )
    white = lambda im: float((im.min(axis=2) > 0.98).mean())  # noqa: E731
    assert white(hole) > white(full) + 0.1


def _plot_area(img: np.ndarray, ax) -> np.ndarray:
    """The pixels inside ``ax`` (a 2-pixel inset keeps the frame out)."""
    b, h = ax.get_window_extent(), img.shape[0]
    return img[int(h - b.y1) + 2 : int(h - b.y0) - 2, int(b.x0) + 2 : int(b.x1) - 2]


def test_all_nan_surface_still_draws(tmp_path: Path, figs: list) -> None:
    """Nothing finished yet: an empty frame that says so, every cell blank, no minimum."""
    x, y, z = GRIDS["square"]
    for kind in SURFACE_KINDS:
        out = export_map(
            tmp_path / f"{kind}.png", x, y, np.full_like(z, np.nan), kind=kind, **SMALL
        )
        img = _png(out, SMALL["size"], SMALL["dpi"])
        ax = figs[-1].axes[0]
        assert [t.get_text() for t in ax.texts] == ["no finished points"], kind
        assert not ax.get_lines(), kind  # no star: there is no minimum to mark
        if kind != "surface3d":
            (mesh,) = ax.collections  # no iso-lines or bands, only the empty frame
            assert np.ma.getmaskarray(mesh.get_array()).all(), kind  # no NaN drawn as a value
        # Not one coloured pixel in the plot area (a NaN read as 0 would be painted).
        assert _coloured(_plot_area(img, ax)) == 0.0, kind
        # The same figure of finished points is coloured there: the check can fail.
        export_map(tmp_path / "full.png", x, y, z, kind=kind, **SMALL)
        full = _png(tmp_path / "full.png", SMALL["size"], SMALL["dpi"])
        assert _coloured(_plot_area(full, figs[-1].axes[0])) > 0.05, kind


def test_heatmap_orientation_and_extent(tmp_path: Path, figs: list) -> None:
    x = np.array([0.0, 1.0, 2.0])
    y = np.array([10.0, 20.0])
    z = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # z[i, j] at (x[j], y[i])
    export_map(tmp_path / "h.png", x, y, z, kind="heatmap", **SMALL)
    ax = figs[-1].axes[0]
    mesh = ax.collections[0]
    coords = mesh.get_coordinates()  # cell corners, (ny+1, nx+1, 2)
    centres = (coords[:-1, :-1] + coords[1:, 1:]) / 2
    values = mesh.get_array().reshape(z.shape)
    for i in range(2):
        for j in range(3):
            assert tuple(centres[i, j]) == pytest.approx((x[j], y[i]))
            assert values[i, j] == z[i, j]
    assert ax.get_xlim() == pytest.approx((-0.5, 2.5))
    assert ax.get_ylim() == pytest.approx((5.0, 25.0))  # y grows upwards
    star = ax.get_lines()[-1]  # the minimum, z[0, 0], marked at (x[0], y[0])
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (0.0, 10.0)


@pytest.mark.parametrize("compare", [False, True])
def test_filled_map_fills_the_basin(tmp_path: Path, figs: list, compare: bool) -> None:
    """The band below the first contour level is filled: the basin is never left white."""
    from dataclasses import replace

    from tui_landscape.plots.spec import grid_spec

    x = np.linspace(-1, 1, 41)
    X, Y = np.meshgrid(x, x)
    z = 0.01 + (X**2 + 2 * Y**2) ** 2  # a flat basin, then steep walls: log-spaced levels
    spec = grid_spec(x, x, z, kind="filled", mark_min=False)  # no star over the basin
    assert spec.levels[0] > z.min()  # the basin lies below the first level
    size = (6.0, 3.0) if compare else SMALL["size"]
    if compare:
        out = E.export_specs(tmp_path / "f.png", [spec, replace(spec, z=2 * z)], size=size, dpi=60)
    else:
        out = E.export_spec(tmp_path / "f.png", spec, **SMALL)
    img = _png(out, size, SMALL["dpi"])
    ax = figs[-1].axes[0]
    px, py = ax.transData.transform((0.0, 0.0))  # the minimum, in pixels from the bottom left
    r, c = img.shape[0] - round(float(py)), round(float(px))
    basin = img[r - 2 : r + 3, c - 2 : c + 3]
    assert basin.min(axis=2).max() < 0.9, basin  # viridis' darkest band, not white


def test_ratio_map_fixed_scale(tmp_path: Path, figs: list) -> None:
    r = eigen_ratio([-1.0, 2.0, 3.0, np.nan], [4.0, -8.0, 0.0, 1.0])
    assert r[:2] == pytest.approx([0.25, 0.25]) and np.isnan(r[2:]).all()

    x, y, _ = GRIDS["nonsquare"]
    z = np.full((y.size, x.size), -0.1)  # |ratio| = 0.1 -> 0.2 of the fixed 0..0.5 scale
    img = _png(
        export_map(tmp_path / "r.png", x, y, z, kind="ratio", **SMALL),
        SMALL["size"],
        SMALL["dpi"],
    )
    mesh = figs[-1].axes[0].collections[0]
    assert (mesh.norm.vmin, mesh.norm.vmax) == (0.0, 0.5)
    from matplotlib import colormaps

    want = np.array(colormaps["viridis"](0.2)[:3])
    assert (np.abs(img - want).max(axis=2) < 0.02).mean() > 0.3


# --- levels ----------------------------------------------------------------------------------


def test_levels() -> None:
    ref = levels_for(np.array([0.0, 2.3, np.nan, 5.2]))
    assert ref[0] == pytest.approx(0.1) and np.diff(ref) == pytest.approx(0.5)
    assert ref[-1] == pytest.approx(5.1)
    far = levels_for(np.array([50.0, np.nan, 60.0]))
    assert far.size == 15 and far[0] == 50.0 and far[-1] == 60.0
    small = levels_for(np.array([0.001, 0.02]))  # only one reference level would fit
    assert small.size == 15 and small[0] == pytest.approx(0.001)
    logl = levels_for(np.array([0.01, -1.0, 100.0]), log=True)
    assert logl[0] == pytest.approx(0.01) and logl[-1] == pytest.approx(100.0)
    assert np.diff(np.log10(logl)) == pytest.approx(np.full(14, 4 / 14))
    assert list(levels_for(np.ones(3), levels=[3, 1, 2])) == [1.0, 2.0, 3.0]
    assert levels_for(np.ones(4)).size > 1  # a constant surface still gets a range
    clipped = levels_for(np.array([0.0, 20.0]), vmin=2, vmax=6)
    assert clipped[0] == pytest.approx(2.1) and clipped[-1] == pytest.approx(5.6)


# --- formats and files -----------------------------------------------------------------------


def test_svg_pdf_and_suffixes(tmp_path: Path) -> None:
    x, y, z = GRIDS["nonsquare"]
    svg = export_map(tmp_path / "a.svg", x, y, z, kind="filled", **SMALL).read_bytes()
    assert svg.startswith(b"<?xml") and b"<svg" in svg[:1000]
    pdf = export_map(tmp_path / "a.pdf", x, y, z, kind="surface3d", **SMALL).read_bytes()
    assert pdf.startswith(b"%PDF-")
    _png(export_map(tmp_path / "UP.PNG", x, y, z, **SMALL), SMALL["size"], SMALL["dpi"])
    with pytest.raises(ConfigError, match=r"\.png, \.svg, \.pdf"):
        export_map(tmp_path / "a.jpg", x, y, z)
    with pytest.raises(ConfigError, match=r"\.png, \.svg, \.pdf"):
        E.export_spec(tmp_path / "noext", PlotSpec("curve", x, series={"loss": x}))
    with pytest.raises(ConfigError, match="contour, filled, heatmap, surface3d, ratio"):
        export_map(tmp_path / "a.png", x, y, z, kind="wireframe")


def test_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y, z = GRIDS["square"]
    target = tmp_path / "sub" / "fig.png"
    target.parent.mkdir()  # exports never create folders (a typo would make them silently)
    export_map(target, x, y, z, **SMALL)
    export_map(target, x, y, z, kind="heatmap", **SMALL)  # overwrites in place
    assert [p.name for p in target.parent.iterdir()] == ["fig.png"]
    before = target.read_bytes()

    from matplotlib.figure import Figure

    def broken(self, fname, **kwargs):
        Path(fname).write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_map(target, x, y, z, **SMALL)
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["fig.png"]

    def refused(self, fname, **kwargs):
        raise PermissionError(13, "Permission denied", str(fname))

    monkeypatch.setattr(Figure, "savefig", refused)  # the message names the user's file
    with pytest.raises(LandscapeError, match="cannot write .*fig.png: Permission denied") as e:
        export_map(target, x, y, z, **SMALL)
    assert ".tmp" not in str(e.value)


# --- 1D curves -------------------------------------------------------------------------------


def test_curve_with_nan(tmp_path: Path, figs: list) -> None:
    x = np.linspace(-1, 1, 21)
    loss = 1 + x**2
    loss[[3, 5, 6]] = np.nan  # point 4 stands alone between gaps
    acc = 90 - 10 * x**2
    acc[10] = np.nan
    spec = PlotSpec(
        "curve", x, series={"train": loss, "test": loss + 0.2}, right={"train acc": acc}, title="1D"
    )
    _png(E.export_spec(tmp_path / "c.png", spec), (6, 4.5), 150)
    ax, ax2 = figs[-1].axes
    first = ax.get_lines()[0]
    assert np.isnan(first.get_ydata()[3])  # a gap, not a zero
    lone = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 1]
    assert lone and lone[0].get_xdata()[0] == x[4]
    assert ax2.get_ylim() == (0, 100)
    assert ax.get_ylabel() == "loss" and ax2.get_ylabel() == "accuracy (%)"
    assert len(ax.get_legend().get_texts()) == 3
    log = PlotSpec("curve", x, series={"loss": loss}, log=True)
    E.export_spec(tmp_path / "log.svg", log, **SMALL)
    assert figs[-1].axes[0].get_yscale() == "log" and len(figs[-1].axes) == 1


# --- compare (resolve_compare, as `compare --export`) -----------------------------------------


@pytest.fixture
def three(tmp_path: Path) -> list[Surface]:
    """Three files to compare: one square, one 3 times higher with failed points, one smaller
    and not square."""
    _, _, z = GRIDS["square"]
    _, _, zn = GRIDS["nan"]
    _, _, zs = GRIDS["nonsquare"]
    return [
        surface_file(tmp_path / "sgd.h5", "-1:1:9", "-0.5:1:9", z),
        surface_file(tmp_path / "adam.h5", "-1:1:9", "-0.5:1:9", 3 * zn),
        surface_file(tmp_path / "big.h5", "-1:1:7", "-0.5:1:4", zs),
    ]


@pytest.mark.parametrize("kind", ["contour", "filled", "heatmap", "surface3d"])
def test_compare_shared_scale(tmp_path: Path, kind: str, figs: list, three: list) -> None:
    _, _, z = GRIDS["square"]
    for n in (2, 3) if kind in ("contour", "surface3d") else (3,):
        size = (3.0 * n, 2.5)
        specs = resolve_compare(three[:n], kind=kind, figure=True)
        _png(E.export_specs(tmp_path / f"c{n}.png", specs, size=size, dpi=60), size, 60)
        fig = figs[-1]
        panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        want = [f"{f}.h5: train_loss" for f in ("sgd", "adam", "big")]
        assert [ax.get_title() for ax in panels] == want[:n]
        norms = {(ax.collections[0].norm.vmin, ax.collections[0].norm.vmax) for ax in panels}
        assert len(norms) == 1  # one colour scale
        lo, hi = norms.pop()
        assert lo <= np.nanmin(z) + 0.1 and hi > np.nanmax(z) + 1  # spans both surfaces
        if kind in ("contour", "filled"):
            levels = {tuple(ax.collections[0].levels) for ax in panels}
            assert len(levels) == 1  # one set of levels
        if kind == "surface3d":
            assert len({ax.get_zlim() for ax in panels}) == 1
        assert len(fig.axes) == n + 1  # one colour bar for all


def test_compare_levels_and_default_size(tmp_path: Path, figs: list, three: list) -> None:
    specs = resolve_compare(three[:2], levels=[0.5, 1, 2, 3], figure=True)
    img = imread(E.export_specs(tmp_path / "c.png", specs, dpi=40))
    w, h = figs[-1].get_size_inches()
    assert img.shape[:2] == (round(h * 40), round(w * 40)) and w > h
    assert [list(ax.collections[0].levels) for ax in figs[-1].axes[:2]] == [[0.5, 1, 2, 3]] * 2


def test_compare_curves(tmp_path: Path, figs: list, three: list) -> None:
    x = np.linspace(-1, 1, 11)
    a = 1 + x**2
    a[2] = np.nan
    ones = [
        surface_file(tmp_path / "a.h5", "-1:1:11", None, a),
        surface_file(tmp_path / "b.h5", "-1:1:11", None, 2 * a),
    ]
    out = E.export_specs(tmp_path / "c.png", resolve_compare(ones, figure=True), **SMALL)
    _png(out, SMALL["size"], SMALL["dpi"])
    (ax,) = figs[-1].axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a.h5", "b.h5"]
    with pytest.raises(ConfigError, match="1D"):
        resolve_compare([ones[0], three[0]])


# --- PCA path (resolve with a trajectory, as `plot --path`) ----------------------------------


def test_path_plot(tmp_path: Path, figs: list) -> None:
    from types import SimpleNamespace

    _, _, z = GRIDS["nan"]
    s = surface_file(tmp_path / "s.h5", "-1:1:9", "-0.5:1:9", z)
    t = np.linspace(0, 1, 15)
    px, py = 0.8 * np.cos(5 * t) * (1 - t), 0.5 * np.sin(5 * t) * (1 - t)
    path = SimpleNamespace(x=px, y=py, explained=(0.6123, 0.2001))
    _png(E.export_spec(tmp_path / "p.png", resolve(s, trajectory=path, figure=True)), (6, 4.5), 150)
    ax = figs[-1].axes[0]
    assert ax.get_xlabel() == "1st PC: 61.23 %" and ax.get_ylabel() == "2nd PC: 20.01 %"
    assert ax.collections  # the contours
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert lines["path"].get_marker() == "." and len(lines["path"].get_xdata()) == 15
    assert lines["start"].get_xdata()[0] == px[0] and lines["end"].get_xdata()[0] == px[-1]
    assert lines["start"].get_marker() != lines["end"].get_marker()
    assert lines["start"].get_color() != lines["end"].get_color()
    # A one-row surface has no contours, but the path is still drawn.
    row = grid_spec(*GRIDS["row"], kind="contour", path=(px, py), mark_min=False)
    assert E.export_spec(tmp_path / "r.pdf", row).read_bytes()[:5] == b"%PDF-"
    assert not figs[-1].axes[0].collections and len(figs[-1].axes[0].get_lines()) == 3
    unknown = SimpleNamespace(x=px, y=py, explained=(np.nan, np.nan))
    E.export_spec(tmp_path / "u.png", resolve(s, trajectory=unknown, figure=True), **SMALL)
    assert (figs[-1].axes[0].get_xlabel(), figs[-1].axes[0].get_ylabel()) == ("1st PC", "2nd PC")


# --- matplotlib missing ----------------------------------------------------------------------


def _expect_missing(tmp_path: Path) -> None:
    x, y, z = GRIDS["square"]
    two = [grid_spec(x, y, z), grid_spec(x, y, z + 1)]
    calls = [
        lambda: export_map(tmp_path / "a.png", x, y, z),
        lambda: E.export_spec(tmp_path / "a.png", PlotSpec("curve", x, series={"loss": x})),
        lambda: E.export_specs(tmp_path / "a.png", two),
        lambda: E.export_spec(tmp_path / "a.png", grid_spec(x, y, z, path=(x, x))),
    ]
    for call in calls:
        with pytest.raises(ConfigError) as info:
            call()
        msg = str(info.value)
        assert msg == (
            "matplotlib is needed for --export; "
            "install it with: pip install 'tui-landscape[export]'"
        )
        assert "\n" not in msg and info.value.exit_code == 2
    assert not list(tmp_path.iterdir())


def test_missing_matplotlib_sys_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    _expect_missing(tmp_path)


def test_missing_matplotlib_import_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    _expect_missing(tmp_path)


@pytest.mark.parametrize("kind", ["contour", "filled"])
def test_compare_colour_bar_labels_are_distinct(tmp_path: Path, kind: str, figs: list) -> None:
    """Levels below 5e-5 all read "0.0000" with matplotlib's fixed decimals: never twice."""
    from tui_landscape.plots.spec import grid_spec, levels_for, limits_for

    x = np.linspace(-1, 1, 21)
    X, Y = np.meshgrid(x, x)
    z = 1e-6 + 0.05 * (X**2 + Y**2) ** 2
    for lv in (None, [1.0001, 1.0002, 1.0003, 1.0004]):  # log-spaced; close together
        zs = [z, 2 * z] if lv is None else [1 + z, 1 + 2 * z]
        joined = np.concatenate([a.ravel() for a in zs])
        levels = levels_for(joined, lv)
        scale = (levels, limits_for(joined, levels))
        specs = [
            grid_spec(x, x, a, kind=kind, title=t, scale=scale)
            for a, t in zip(zs, "ab", strict=True)
        ]
        E.export_specs(tmp_path / "c.png", specs, **SMALL)
        fig = figs[-1]
        fig.canvas.draw()
        labels = [t.get_text() for t in fig.axes[-1].get_yticklabels() if t.get_text()]
        assert len(labels) >= 3 and len(set(labels)) == len(labels), labels


@pytest.mark.parametrize(("base", "step"), [(0.001, 0.001), (1.0001, 0.0001)])
@pytest.mark.parametrize("kind", ["contour", "filled", "heatmap"])
def test_compare_colour_bar_of_a_narrow_range_is_distinct(
    tmp_path: Path, kind: str, base: float, step: float, figs: list
) -> None:
    """0.001..0.004 and 1.0001..1.0004 on one scale: every colour-bar label differs."""
    from tui_landscape.plots.spec import grid_spec, levels_for, limits_for

    x, y, z = GRIDS["square"]
    z = (z - z.min()) / (z.max() - z.min()) * 3  # 0 to 3
    zs = [base + step * z, base + step * z / 2]
    joined = np.concatenate([a.ravel() for a in zs])
    levels = levels_for(joined)
    scale = (levels, limits_for(joined, levels))
    specs = [
        grid_spec(x, y, a, kind=kind, title=t, scale=scale) for a, t in zip(zs, "ab", strict=True)
    ]
    E.export_specs(tmp_path / "c.png", specs, **SMALL)
    fig = figs[-1]
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[-1].get_yticklabels() if t.get_text()]
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
