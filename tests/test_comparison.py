"""tui_landscape.comparison: the notes and verdict that `compare` and the compare screen share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.formats import Provenance, SurfaceWriter, read_surface
from engine.grid import Grid
from tui_landscape.comparison import compare_surfaces

CONFIG = """[model]
arch = "digits_cnn"
checkpoint = "{checkpoint}"

[directions]
kind = "random"
norm = "{norm}"
ignore = "biasbn"
seed = 0
"""


def write(
    path: Path,
    a: float,
    *,
    grid: str = "-1:1:21",
    norm: str = "filter",
    checkpoint: str = "m.pt",
    dir_hash: str = "",
    bad: dict[int, float] | None = None,
    skip: tuple[int, ...] = (),
) -> Path:
    """a x^2 + y^2 on ``grid`` squared; ``bad`` overrides points' values, ``skip`` leaves
    points unfinished; the provenance says how the directions were made."""
    g = Grid.parse(grid, grid)
    X, Y = np.meshgrid(g.x.coordinates(), g.y.coordinates())
    z = (a * X**2 + Y**2).ravel()
    prov = Provenance(
        config=CONFIG.format(norm=norm, checkpoint=checkpoint),
        dir_hash=dir_hash,
        dir_type="weights",
    )
    with SurfaceWriter.create(path, g, ["train_loss", "train_acc"], prov, "d.h5") as w:
        for k, v in enumerate(z):
            if k not in skip:
                v = (bad or {}).get(k, v)
                w.record(k, {"train_loss": float(v), "train_acc": 100.0 - float(v)})
    return path


def test_alike_files_have_no_notes_and_a_plain_verdict(tmp_path):
    files = [
        read_surface(write(tmp_path / "flat.h5", 0.5, checkpoint="a.pt", dir_hash="sha256:1")),
        read_surface(write(tmp_path / "sharp.h5", 4.0, checkpoint="b.pt", dir_hash="sha256:2")),
    ]
    c = compare_surfaces(files, "train_loss")
    assert c.warnings == ()  # two models, each along its own directions: as expected
    assert c.verdict == "sharpest by mean rise within r=0.25: sharp.h5; flattest: flat.h5"
    assert [f.sharpness.axes[0].curvature for f in c.files] == pytest.approx([1.0, 8.0])


def test_directions_made_differently_are_said(tmp_path):
    files = [
        read_surface(write(tmp_path / "a.h5", 0.5, norm="filter")),
        read_surface(write(tmp_path / "b.h5", 4.0, norm="layer")),
    ]
    c = compare_surfaces(files, "train_loss")
    assert c.warnings == (
        "the directions are made differently (a.h5: kind random, norm filter, ignore biasbn, "
        "type weights; b.h5: kind random, norm layer, ignore biasbn, type weights): "
        "distances are in other units",
    )
    assert c.verdict.endswith("(but the directions differ)")


def test_one_model_along_other_directions_is_said(tmp_path):
    files = [
        read_surface(write(tmp_path / "a.h5", 1.0, dir_hash="sha256:1")),
        read_surface(write(tmp_path / "b.h5", 1.0, dir_hash="sha256:2")),
        read_surface(write(tmp_path / "c.h5", 1.0, checkpoint="other.pt", dir_hash="sha256:3")),
    ]
    c = compare_surfaces(files, "train_loss")
    assert c.warnings == (
        "the directions differ for one model (a.h5, b.h5): each is another slice",
    )
    assert c.verdict == (
        "no difference in mean rise within r=0.25: a.h5, b.h5, c.h5 tie (but the directions differ)"
    )


def test_non_finite_failed_and_unfinished_points_are_said(tmp_path):
    files = [
        read_surface(write(tmp_path / "a.h5", 0.5, bad={0: np.nan, 1: np.inf})),
        read_surface(write(tmp_path / "b.h5", 4.0, skip=(5,))),
    ]
    c = compare_surfaces(files, "train_loss")
    assert c.warnings == (
        "a.h5: 2 finished points not finite (left out of the numbers)",
        "not complete, numbers of the finished points only: b.h5 (99%)",
    )
    assert c.verdict.endswith("(but not complete: b.h5 (99%))")
    assert [f.label for f in c.files] == ["a.h5", "b.h5 (99%)"]  # 440/441: not "100%"


def test_grids_and_coarse_fits_are_said_once_per_reason(tmp_path):
    files = [
        read_surface(write(tmp_path / "a.h5", 0.5, grid="-1:1:11")),
        read_surface(write(tmp_path / "b.h5", 4.0, grid="-1:1:9")),
    ]
    c = compare_surfaces(files, "train_loss")
    assert c.warnings[0] == (
        "the grids differ (a.h5: x -1:1:11, y -1:1:11; b.h5: x -1:1:9, y -1:1:9); "
        "one colour scale, own axes"
    )
    assert c.warnings[1:] == (
        "curvature n/a (a.h5 x, y; b.h5 x, y): 3 finite points within 0.35 of the minimum "
        "(the fit needs 7): a finer grid or a larger fit radius",
    )
    assert "the grids differ: the numbers agree only to within their sampling" in c.verdict
    wide = compare_surfaces(files, "train_loss", fit_radius=0.9)
    assert len(wide.warnings) == 1  # 9 and 7 points within 0.9: fitted
    assert [f.sharpness.fit_radius for f in wide.files] == [0.9, 0.9]


def test_a_surface_that_is_not_a_loss_gets_no_verdict(tmp_path):
    files = [read_surface(write(tmp_path / n, a)) for n, a in (("a.h5", 0.5), ("b.h5", 4.0))]
    c = compare_surfaces(files, "train_acc")
    assert c.verdict == "no verdict: train_acc is not a loss, so its lowest point is no minimizer"
    with pytest.raises(ConfigError, match="has no surface 'test_loss'"):
        compare_surfaces(files, "test_loss")
