"""engine.formats: the names are the reference's, surface_info agrees with read_surface while
reading no surface, sidecars finds the side files, projection files round-trip."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import engine.formats.layout as layout_mod
from engine.errors import ConfigError, LandscapeError
from engine.formats import (
    LAYOUT_OURS,
    LAYOUT_REFERENCE,
    Provenance,
    SurfaceWriter,
    has_trajectory,
    path_datasets,
    read_surface,
    read_trajectory,
    save_directions,
    sidecars,
    surface_info,
    write_projection,
)
from engine.formats import constants as C
from engine.grid import Grid
from tests.conftest import REPO
from tests.test_storage import write_reference_file


def test_the_names_are_the_reference_s():
    """Renaming a constant would change every file written: the reference's names stay."""
    assert (C.XCOORDS, C.YCOORDS, C.DIR_FILE) == ("xcoordinates", "ycoordinates", "dir_file")
    assert C.SURFACE_NAMES == ("train_loss", "train_acc", "test_loss", "test_acc")
    assert C.HESSIAN_NAMES[:2] == ("max_eig", "min_eig")
    assert (C.PROJ_X, C.PROJ_Y) == ("proj_xcoord", "proj_ycoord")
    assert (C.XDIRECTION, C.YDIRECTION) == ("xdirection", "ydirection")
    assert C.PCA_NAMES == ("explained_variance_ratio_", "singular_values_", "explained_variance_")
    assert C.UNFINISHED == -1.0


def test_a_new_surface_file_holds_exactly_the_documented_names(tmp_path):
    g = Grid.parse("-1:1:4", "0:1:3")
    with SurfaceWriter.create(
        tmp_path / "s.h5", g, ["train_loss"], Provenance(dir_type="states"), "d.h5"
    ):
        pass
    with h5py.File(tmp_path / "s.h5") as h:
        assert set(h) == {C.XCOORDS, C.YCOORDS, "train_loss", C.MASK, C.DIR_FILE}
        assert set(h.attrs) == {
            C.ATTR_FORMAT,
            C.ATTR_FORMAT_VERSION,
            C.ATTR_TOOL_VERSION,
            C.ATTR_CREATED,
            C.ATTR_UPDATED,
            C.ATTR_ID,
            C.ATTR_DIR_TYPE,
        }
        assert h.attrs[C.ATTR_FORMAT] == C.SURFACE_FORMAT
        assert h.attrs[C.ATTR_FORMAT_VERSION] == C.SURFACE_FORMAT_VERSION


@pytest.fixture
def reads(monkeypatch):
    """The datasets surface_info reads whole (it must read no surface)."""
    seen: list[str] = []
    real = layout_mod.Root.read

    def spy(self, name):
        seen.append(name)
        return real(self, name)

    monkeypatch.setattr(layout_mod.Root, "read", spy)
    return seen


def test_surface_info_of_a_run_in_progress_agrees_with_read_surface(tmp_path, reads):
    g = Grid.parse("-1:1:5", "-1:1:3")
    path = tmp_path / "run.h5"
    names = ["train_loss", "train_acc", "max_eig", "min_eig"]
    w = SurfaceWriter.create(path, g, names, Provenance(dir_type="weights"), "run.directions.h5")
    values = dict.fromkeys(names, 1.0)
    for k in range(4):
        w.record(k, values)
    w.record_failure(7, "RuntimeError: boom")
    w.checkpoint()  # four points and a failure in the file
    w.record(5, values)
    w.record(7, values)  # the failed point finished on a second try
    w.record_failure(9, "RuntimeError: again")
    w.flush()  # ... and three more lines in the journal only
    reads.clear()  # the writer read its file when it opened it
    info = surface_info(path)
    # no surface: the coordinates (checked finite and increasing), the failed points (checked
    # in range) and the mask
    assert reads == [C.XCOORDS, C.YCOORDS, C.FAILED_INDEX, C.MASK]
    s = read_surface(path)
    assert info.layout == s.layout == LAYOUT_OURS and info.format_version == 2
    assert info.shape == s.shape == (3, 5) and info.ndim == 2 and info.total == 15
    assert info.names == tuple(s.values) == ("train_loss", "train_acc", "max_eig", "min_eig")
    assert info.done == s.n_done == 6
    assert info.failed == len(s.failed) == 1
    assert info.created == s.attrs["created"] and info.updated == s.attrs["updated"]
    assert info.dir_type == "weights" and not info.has_path
    w.close()
    assert surface_info(path).done == 6 and surface_info(path).failed == 1


@pytest.mark.parametrize(("nx", "ny"), [(5, 3), (4, 4)])
def test_surface_info_of_reference_files(tmp_path, reads, nx, ny):
    x, y = np.linspace(-1, 1, nx), np.linspace(-2, 2, ny)
    write_reference_file(tmp_path / "ref.h5", x, y, unfinished={2, 3})
    info = surface_info(tmp_path / "ref.h5")
    assert info.layout == LAYOUT_REFERENCE and info.format_version is None
    assert info.shape == read_surface(tmp_path / "ref.h5").shape == (ny, nx)
    assert info.names == ("train_loss", "train_acc")
    assert (info.done, info.total) == (nx * ny - 2, nx * ny)
    assert info.created == "" and info.dir_type == ""
    # the coordinates, and the first loss, where the reference marks unfinished points
    assert [r for r in reads if r not in (C.XCOORDS, C.YCOORDS)] == ["train_loss"]
    with h5py.File(tmp_path / "r1.h5", "w") as h:
        h["xcoordinates"] = x
        h["test_loss"] = np.where(x > 0, -1.0, 1.0)
    one = surface_info(tmp_path / "r1.h5")
    assert one.ndim == 1 and one.shape == (nx,) and one.done == int((x <= 0).sum())


def test_surface_info_of_a_pca_surface_sees_its_path(tmp_path):
    g = Grid.parse("-1:1:3", "-1:1:3")
    extras = path_datasets(np.ones((4, 2)), np.zeros((4, 2)))
    SurfaceWriter.create(
        tmp_path / "p.h5", g, ["train_loss"], Provenance(), "d.h5", extras=extras
    ).close()
    assert surface_info(tmp_path / "p.h5").has_path and has_trajectory(tmp_path / "p.h5")


def test_surface_info_says_what_is_wrong_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        surface_info(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("hello")
    g = Grid.parse("-1:1:11", "-1:1:11")
    SurfaceWriter.create(tmp_path / "full.h5", g, ["train_loss"], Provenance(), "d.h5").close()
    data = (tmp_path / "full.h5").read_bytes()
    (tmp_path / "trunc.h5").write_bytes(data[: len(data) // 2])
    with h5py.File(tmp_path / "other.h5", "w") as h:
        h["weights"] = np.zeros(3)
    with h5py.File(tmp_path / "future.h5", "w") as h:
        h.attrs[C.ATTR_FORMAT], h.attrs[C.ATTR_FORMAT_VERSION] = C.SURFACE_FORMAT, 99
        h[C.XCOORDS] = np.zeros(3)
    with h5py.File(tmp_path / "misfit.h5", "w") as h:
        h[C.XCOORDS], h[C.YCOORDS] = np.zeros(3), np.zeros(2)
        h["train_loss"] = np.zeros((3, 3))
    with h5py.File(tmp_path / "empty.h5", "w") as h:
        h[C.XCOORDS] = np.zeros(3)
    cases = {
        "text.h5": "not an HDF5 file",
        "trunc.h5": "trunc.h5",
        "other.h5": "not a surface file",
        "future.h5": "format version 99",
        "misfit.h5": r"'train_loss' has shape \(3, 3\), the grid needs \(2, 3\)",
        "empty.h5": "holds no surface",
    }
    for name, message in cases.items():
        with pytest.raises(LandscapeError, match=message) as e:
            surface_info(tmp_path / name)
        assert "\n" not in str(e.value) and name in str(e.value)
        with pytest.raises(LandscapeError, match=message):
            read_surface(tmp_path / name)  # the reader validates the same way


def test_sidecars_finds_the_side_files_that_exist(tmp_path):
    from engine.formats import directions_path

    p = tmp_path / "s.h5"
    g = Grid.parse("0:1:3")
    assert sidecars(p) == {}
    w = SurfaceWriter.create(p, g, ["train_loss"], Provenance(), "s.directions.h5")
    assert sidecars(p) == {
        "journal": tmp_path / ("s.h5" + C.JOURNAL_SUFFIX),
        "lock": tmp_path / ("s.h5" + C.LOCK_SUFFIX),
    }
    w.close()
    assert set(sidecars(p)) == {"lock"}  # the journal is folded and removed at the end
    (tmp_path / "s.h5.tmp").write_bytes(b"")
    (tmp_path / "s.directions.h5").write_bytes(b"")
    found = sidecars(p)
    assert found["tmp"].name == "s.h5" + C.TMP_SUFFIX
    assert found["directions"] == directions_path(p) == tmp_path / ("s" + C.DIRECTIONS_SUFFIX)
    assert set(found) == {"lock", "tmp", "directions"}
    # A run started detached from the app: its output and the config it ran, both this file's.
    (tmp_path / "s.h5.log").write_text("computing")
    (tmp_path / "s.h5.toml").write_text("[grid]")
    found = sidecars(p)
    assert found["log"] == tmp_path / ("s.h5" + C.LOG_SUFFIX)
    assert found["config"] == tmp_path / ("s.h5" + C.CONFIG_SUFFIX)


def test_a_delete_removes_what_the_schema_says(tmp_path):
    """docs/surface-format.md: the file with its journal, lock, tmp, log and run config; the
    direction file only when no other surface of the folder names it."""
    from engine.formats import removable_sidecars

    p = tmp_path / "s.h5"
    w = SurfaceWriter.create(p, Grid.parse("0:1:3"), ["train_loss"], Provenance(), "x.h5")
    w.record(0, {"train_loss": 1.0})
    w.flush()  # the journal holds a point
    for suffix in (".h5.tmp", ".h5.log", ".h5.toml", ".directions.h5"):
        (tmp_path / f"s{suffix}").write_bytes(b"")
    (tmp_path / "s.toml").write_text("[grid]")  # a user's own config: not a side file
    assert set(removable_sidecars(p)) == {"journal", "lock", "tmp", "log", "config", "directions"}
    w.close()
    doc = (REPO / "docs" / "surface-format.md").read_text()
    for name in ("FILE.h5.journal", "FILE.h5.lock", "FILE.h5.tmp", "FILE.h5.log", "FILE.h5.toml"):
        assert f"`{name}`" in doc
    assert "they are the app's, not the format's, and stay" not in doc


def test_provenance_is_written_and_read_in_one_place(tmp_path):
    prov = Provenance(config="[grid]\n", dir_hash="sha256:ab", dir_type="states", device="cpu")
    p = tmp_path / "s.h5"
    SurfaceWriter.create(p, Grid.parse("0:1:3"), ["train_loss"], prov, "d.h5").close()
    got = read_surface(p).provenance
    assert (got.config, got.dir_hash, got.dir_type, got.device) == (
        prov.config, prov.dir_hash, prov.dir_type, prov.device,
    )  # fmt: skip
    assert got.format_version == C.SURFACE_FORMAT_VERSION and got.id and got.created
    with h5py.File(p) as h:
        assert h.attrs[C.ATTR_DIR_SHA256] == "sha256:ab" and h.attrs[C.ATTR_DEVICE] == "cpu"
    with pytest.raises(TypeError, match="Provenance"):
        SurfaceWriter.create(tmp_path / "t.h5", Grid.parse("0:1:3"), ["train_loss"], {}, "d.h5")
    # A reference file (no attributes) and an old one read as empty provenance.
    write_reference_file(tmp_path / "ref.h5", np.linspace(-1, 1, 3), np.linspace(0, 1, 3))
    ref = read_surface(tmp_path / "ref.h5").provenance
    assert ref == Provenance()


def test_a_direction_file_goes_with_its_surface_unless_another_surface_names_it(tmp_path):
    from engine.formats import removable_sidecars

    g = Grid.parse("0:1:3")

    def surface(name: str, dir_file: str) -> None:
        with SurfaceWriter.create(tmp_path / name, g, ["train_loss"], Provenance(), dir_file) as w:
            w.record(0, {"train_loss": 1.0})

    surface("a.h5", "a.directions.h5")
    (tmp_path / "a.directions.h5").write_bytes(b"")
    (tmp_path / "junk.h5").write_text("not HDF5")  # names nothing, and is no reason to keep
    assert set(removable_sidecars(tmp_path / "a.h5")) == {"lock", "directions"}
    # A sibling run on a's directions (directions.kind = "file", or a resume that kept them).
    surface("b.h5", "a.directions.h5")
    assert set(removable_sidecars(tmp_path / "a.h5")) == {"lock"}
    assert "directions" in sidecars(tmp_path / "a.h5")  # still a side file, but shared
    (tmp_path / "b.h5").unlink()
    surface("c.h5", str((tmp_path / "a.directions.h5").resolve()))  # named by absolute path
    assert set(removable_sidecars(tmp_path / "a.h5")) == {"lock"}
    assert set(removable_sidecars(tmp_path / "c.h5")) == {"lock"}  # c has none of its own


def test_projection_files_round_trip_and_take_labels_from_the_directions(tmp_path):
    from engine.directions import DirectionSet

    coords = np.array([[0.0, 1.0], [0.5, 0.25], [1.0, 0.0]])
    write_projection(tmp_path / "proj.h5", coords, np.array([0.7, 0.2]))
    t = read_trajectory(tmp_path / "proj.h5")
    np.testing.assert_array_equal(t.x, coords[:, 0])
    np.testing.assert_array_equal(t.y, coords[:, 1])
    assert t.explained == (0.7, 0.2)
    with h5py.File(tmp_path / "proj.h5") as h:
        assert set(h) == {C.PROJ_X, C.PROJ_Y, C.EXPLAINED_VARIANCE_RATIO}
        assert h[C.PROJ_X].dtype == np.float64
        assert h.attrs[C.ATTR_FORMAT] == C.PROJECTION_FORMAT
    # Without ratios of its own, a path on a surface takes them from the surface's directions.
    write_projection(tmp_path / "bare.h5", coords)
    g = Grid.parse("-1:1:3", "-1:1:3")
    SurfaceWriter.create(tmp_path / "s.h5", g, ["train_loss"], Provenance(), "dirs.h5").close()
    ds = DirectionSet([], [], "weights")
    save_directions(tmp_path / "dirs.h5", ds, extras={C.EXPLAINED_VARIANCE_RATIO: [0.6, 0.3]})
    assert read_trajectory(tmp_path / "bare.h5").explained is None
    s = read_surface(tmp_path / "s.h5")
    assert read_trajectory(tmp_path / "bare.h5", s).explained == (0.6, 0.3)
    with pytest.raises(LandscapeError, match="not a projection file"):
        read_trajectory(tmp_path / "s.h5")
    assert not has_trajectory(tmp_path / "s.h5")
    (tmp_path / "text.h5").write_text("hello")
    assert not has_trajectory(tmp_path / "text.h5")


def test_path_datasets_are_the_reference_projection_and_ours():
    cos = np.array([[1.0, 2.0], [3.0, 4.0]])
    lsq = cos + 10
    d = path_datasets(cos, lsq)
    assert list(d) == [C.PROJ_X, C.PROJ_Y, C.PROJ_X_LSQ, C.PROJ_Y_LSQ]
    np.testing.assert_array_equal(d[C.PROJ_Y], [2.0, 4.0])
    np.testing.assert_array_equal(d[C.PROJ_X_LSQ], [11.0, 13.0])
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        path_datasets(cos[:, 0], lsq)


def test_a_file_open_elsewhere_in_the_process_is_still_read(tmp_path):
    """The app's watch (a worker) and a test or a writer may hold the file open with h5py's own
    close degree while ``surface_info`` opens it: HDF5 refused a second open with another
    degree ("file close degree doesn't match")."""
    import h5py

    from tests.test_tui import small_file

    f = small_file(tmp_path / "s.h5")
    with h5py.File(f, "r", locking=False):
        assert surface_info(f).done == read_surface(f).n_done == 63
    info = surface_info(f)  # and the other order: ours first, then h5py's
    with h5py.File(f, "r", locking=False) as h:
        assert info.done == 63 and "train_loss" in h
