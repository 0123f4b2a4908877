"""VTK XML PolyData export: counts, geometry and values, read back with a plain XML parser."""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ConfigError, LandscapeError
from engine.vtp import write_vtp

_DTYPES = {"Float32": "<f4", "Float64": "<f8", "Int32": "<i4", "Int64": "<i8"}
_HEADERS = {"UInt32": "<u4", "UInt64": "<u8"}


def _decode(da: ET.Element, header_type: str) -> np.ndarray:
    """A DataArray's values, from ascii text or from VTK's base64 header + data stream."""
    dtype = np.dtype(_DTYPES[da.get("type")])
    text = (da.text or "").strip()
    if da.get("format") == "ascii":
        return np.array(text.split(), dtype=np.float64).astype(dtype)
    assert da.get("format") == "binary"
    raw = base64.b64decode(text)
    hdt = np.dtype(_HEADERS[header_type])
    nbytes = int(np.frombuffer(raw[: hdt.itemsize], hdt)[0])
    body = raw[hdt.itemsize :]
    assert len(body) == nbytes  # the header counts exactly the data bytes
    return np.frombuffer(body, dtype)


def _read(path: Path) -> dict:
    """Parse a .vtp into counts and decoded arrays, checking declared sizes against data."""
    root = ET.parse(path).getroot()
    assert root.get("type") == "PolyData"
    assert root.get("byte_order") == "LittleEndian"
    header_type = root.get("header_type", "UInt32")
    piece = root.find("PolyData/Piece")
    out = {k: int(piece.get(f"NumberOf{k}")) for k in ("Points", "Verts", "Lines", "Strips")}
    out["Polys"] = int(piece.get("NumberOfPolys"))
    formats = {da.get("format") for da in root.iter("DataArray")}
    assert len(formats) == 1
    out["format"] = formats.pop()

    pd = piece.find("PointData")
    (scalars,) = pd.findall("DataArray")
    out["name"] = scalars.get("Name")
    assert pd.get("Scalars") == out["name"]
    out["values"] = _decode(scalars, header_type)
    pts = piece.find("Points/DataArray")
    assert pts.get("NumberOfComponents") == "3"
    out["points"] = _decode(pts, header_type).reshape(-1, 3)
    assert len(out["points"]) == len(out["values"]) == out["Points"]
    for tag in ("Polys", "Lines"):
        el = piece.find(tag)
        if el is None:
            out[tag.lower()] = []
            continue
        arrays = {da.get("Name"): _decode(da, header_type) for da in el.findall("DataArray")}
        conn, offs = arrays["connectivity"], arrays["offsets"]
        assert len(offs) == out[tag]
        assert offs[-1] == len(conn)
        starts = np.concatenate([[0], offs[:-1]])
        out[tag.lower()] = [conn[a:b].tolist() for a, b in zip(starts, offs, strict=True)]
        assert conn.min() >= 0 and conn.max() < out["Points"]
    return out


def _surface(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.linspace(-1.0, 1.0, nx)
    y = np.linspace(-0.5, 0.5, ny)
    z = x[None, :] ** 2 + 3.0 * y[:, None] ** 2 + 0.25  # (ny, nx), distinct along each axis
    return x, y, z


@pytest.mark.parametrize("binary", [True, False])
def test_square_grid_counts(tmp_path: Path, binary: bool) -> None:
    x, y, z = _surface(5, 5)
    path = tmp_path / "s.vtp"
    assert write_vtp(path, x, y, z, binary=binary) == (25, 16)
    r = _read(path)
    assert r["format"] == ("binary" if binary else "ascii")
    assert (r["Points"], r["Polys"], r["Lines"]) == (25, 16, 0)
    assert r["name"] == "train_loss"
    assert all(len(c) == 4 for c in r["polys"])
    np.testing.assert_array_equal(r["values"], z.ravel())
    np.testing.assert_array_equal(r["points"][:, 2], z.ravel())


@pytest.mark.parametrize("binary", [True, False])
def test_non_square_grid_is_not_transposed(tmp_path: Path, binary: bool) -> None:
    x, y, z = _surface(7, 4)  # nx = 7, ny = 4: z is (4, 7)
    path = tmp_path / "ns.vtp"
    assert write_vtp(path, x, y, z, binary=binary, name="test_acc") == (28, 18)
    r = _read(path)
    assert (r["Points"], r["Polys"], r["name"]) == (28, 18, "test_acc")
    by_xy = {(p[0], p[1]): p[2] for p in r["points"]}
    for i in range(4):
        for j in range(7):
            assert by_xy[(x[j], y[i])] == z[i, j]
    # Every quad spans one x step and one y step, with z at its corners from the right node.
    pts = r["points"]
    for cell in r["polys"]:
        cx, cy = sorted(set(pts[cell, 0])), sorted(set(pts[cell, 1]))
        assert len(cx) == 2 and len(cy) == 2
        assert np.searchsorted(x, cx[1]) - np.searchsorted(x, cx[0]) == 1
        assert np.searchsorted(y, cy[1]) - np.searchsorted(y, cy[0]) == 1


@pytest.mark.parametrize("binary", [True, False])
def test_missing_points_are_dropped_with_their_cells(tmp_path: Path, binary: bool) -> None:
    x, y, z = _surface(5, 4)  # 20 points, 4 * 3 = 12 cells
    z[1, 2] = np.nan  # interior: touches 4 cells
    z[0, 0] = np.nan  # corner: touches 1 cell
    path = tmp_path / "nan.vtp"
    assert write_vtp(path, x, y, z, binary=binary) == (18, 7)
    r = _read(path)
    assert (r["Points"], r["Polys"]) == (18, 7)
    assert np.isfinite(r["points"]).all() and np.isfinite(r["values"]).all()
    written = {(p[0], p[1]) for p in r["points"]}
    assert (x[2], y[1]) not in written and (x[0], y[0]) not in written
    # Remapped indices still name the right nodes: each value equals its point's z.
    np.testing.assert_array_equal(r["values"], r["points"][:, 2])
    np.testing.assert_array_equal(r["values"], z[np.isfinite(z)])


def test_zmax_clips(tmp_path: Path) -> None:
    x, y, z = _surface(6, 5)
    path = tmp_path / "clip.vtp"
    write_vtp(path, x, y, z, zmax=1.0)
    r = _read(path)
    np.testing.assert_array_equal(r["values"], np.minimum(z, 1.0).ravel())
    assert r["values"].max() == 1.0
    root = ET.parse(path).getroot()
    assert float(root.find(".//PointData/DataArray").get("RangeMax")) == 1.0


def test_zmax_zero_or_negative_means_no_clipping(tmp_path: Path) -> None:
    x, y, z = _surface(4, 4)
    write_vtp(tmp_path / "a.vtp", x, y, z, zmax=0.0)
    np.testing.assert_array_equal(_read(tmp_path / "a.vtp")["values"], z.ravel())


def test_log_is_log_of_z_plus_point_one_after_clipping(tmp_path: Path) -> None:
    x, y, z = _surface(4, 6)
    path = tmp_path / "log.vtp"
    write_vtp(path, x, y, z, log=True, zmax=1.2, binary=False)
    r = _read(path)
    expected = np.log(np.minimum(z, 1.2) + 0.1).ravel()
    np.testing.assert_allclose(r["values"], expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(r["points"][:, 2], r["values"])


def test_log_rejects_values_it_cannot_take(tmp_path: Path) -> None:
    x, y, z = _surface(4, 4)
    z[0, 0] = -0.5
    with pytest.raises(LandscapeError, match=r"log\(z \+ 0.1\)"):
        write_vtp(tmp_path / "bad.vtp", x, y, z, log=True)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize(("nx", "ny"), [(5, 5), (7, 4), (3, 2)])
def test_interpolation_to_10_by_10(tmp_path: Path, binary: bool, nx: int, ny: int) -> None:
    x, y, z = _surface(nx, ny)
    path = tmp_path / "interp.vtp"
    assert write_vtp(path, x, y, z, interp=10, binary=binary) == (100, 81)
    r = _read(path)
    assert (r["Points"], r["Polys"]) == (100, 81)
    xs, ys = np.unique(r["points"][:, 0]), np.unique(r["points"][:, 1])
    np.testing.assert_allclose(xs, np.linspace(x[0], x[-1], 10))
    np.testing.assert_allclose(ys, np.linspace(y[0], y[-1], 10))
    # The grid's corners are sample points, so interpolation reproduces them.
    by_xy = {(p[0], p[1]): p[2] for p in r["points"]}
    for i, j in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert by_xy[(x[j], y[i])] == pytest.approx(z[i, j])
    assert r["values"].min() >= z.min() and r["values"].max() <= z.max()


def test_interpolation_of_a_descending_axis(tmp_path: Path) -> None:
    x, y, z = _surface(5, 6)
    path = tmp_path / "desc.vtp"
    write_vtp(path, x[::-1], y, z[:, ::-1], interp=10)
    by_xy = {(p[0], p[1]): p[2] for p in _read(path)["points"]}
    assert by_xy[(x[-1], y[0])] == pytest.approx(z[0, -1])
    assert by_xy[(x[0], y[-1])] == pytest.approx(z[-1, 0])


def test_interpolation_refuses_missing_points(tmp_path: Path) -> None:
    x, y, z = _surface(5, 5)
    z[2, 2] = np.nan
    path = tmp_path / "i.vtp"
    with pytest.raises(LandscapeError, match="interpolation needs a finished surface"):
        write_vtp(path, x, y, z, interp=10)
    assert not path.exists()


@pytest.mark.parametrize("binary", [True, False])
def test_1d_curve_is_one_polyline(tmp_path: Path, binary: bool) -> None:
    x = np.linspace(-1.0, 1.0, 9)
    z = x**2
    path = tmp_path / "line.vtp"
    assert write_vtp(path, x, None, z, binary=binary) == (9, 1)
    r = _read(path)
    assert (r["Points"], r["Lines"], r["Polys"]) == (9, 1, 0)
    assert r["lines"] == [list(range(9))]
    np.testing.assert_array_equal(r["points"], np.column_stack([x, np.zeros(9), z]))


def test_1d_curve_with_gap_and_interp(tmp_path: Path) -> None:
    x = np.linspace(-1.0, 1.0, 9)
    z = x**2
    z[4] = np.nan
    path = tmp_path / "gap.vtp"
    assert write_vtp(path, x, None, z) == (8, 2)  # the gap breaks the line in two
    assert _read(path)["lines"] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert write_vtp(path, x, None, x**2, interp=20) == (20, 1)
    r = _read(path)
    np.testing.assert_allclose(r["points"][:, 0], np.linspace(-1, 1, 20))


def test_replaces_target_and_leaves_no_temporary(tmp_path: Path) -> None:
    x, y, z = _surface(4, 3)
    path = tmp_path / "out.vtp"
    path.write_text("old")
    write_vtp(path, x, y, z)
    assert _read(path)["Points"] == 12
    assert sorted(os.listdir(tmp_path)) == ["out.vtp"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"z": np.zeros((7, 4))}, ConfigError, r"shape \(ny, nx\) = \(4, 7\)"),
        ({"y": None}, ConfigError, "1D surface needs z of shape"),
        ({"x": np.array([0.0, 2.0, 1.0, 3.0, 4.0, 5.0, 6.0])}, ConfigError, "monotonic"),
        ({"interp": 1}, ConfigError, "at least 2"),
        ({"interp": 2.5}, ConfigError, "integer"),
        ({"name": ""}, ConfigError, "name"),
        ({"z": np.full((4, 7), np.nan)}, LandscapeError, "no finished"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path: Path, kwargs: dict, error: type, match: str):
    x, y, z = _surface(7, 4)
    args = {"x": x, "y": y, "z": z} | kwargs
    path = tmp_path / "bad.vtp"
    with pytest.raises(error, match=match) as info:
        write_vtp(path, args.pop("x"), args.pop("y"), args.pop("z"), **args)
    assert "\n" not in str(info.value)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_name_is_escaped(tmp_path: Path) -> None:
    x, y, z = _surface(3, 3)
    write_vtp(tmp_path / "n.vtp", x, y, z, name='loss <"a">')
    assert _read(tmp_path / "n.vtp")["name"] == 'loss <"a">'
