"""grid.x = "auto" for any direction kind (engine/autorange.py), and the centre group: each
direction's norm over the weights', the centre's loss, shown by `info`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.autorange import OFFSET, RISE, auto_grid, direction_ratios, nice_ceil
from engine.config import GridConfig, config_to_toml, load_config
from engine.directions import DirectionSet
from engine.formats import read_centre, read_surface
from engine.run import prepare
from tests.test_tui import sync, wait_for
from tui_landscape.app import create_app
from tui_landscape.cli import app as cli
from tui_landscape.screens.plot import PlotScreen


@pytest.mark.parametrize(
    ("r", "want"),
    [(1.0, 1.0), (1.01, 1.2), (0.566, 0.6), (1.131, 1.2), (7.0, 8.0), (0.0031, 0.004), (9, 10)],
)
def test_nice_ceil(r, want) -> None:
    assert nice_ceil(r) == pytest.approx(want)


def test_the_range_is_where_an_analytic_loss_reaches_the_level() -> None:
    calls: list[tuple[float, float]] = []

    def evaluate(a: float, b: float) -> dict[str, float]:
        calls.append((a, b))
        return {"train_loss": a * a + 4 * b * b}

    auto = auto_grid(GridConfig(x="auto:11", y="auto:5"), evaluate, "train_loss")
    assert auto.threshold == RISE * 0 + OFFSET == 1.0
    # a^2 >= 1 first at 1.6 (refined: 1.13), 4 b^2 >= 1 first at 0.8 (refined: 0.566).
    assert (auto.grid.x.lo, auto.grid.x.hi, auto.grid.x.num) == (-1.2, 1.2, 11)
    assert (auto.grid.y.lo, auto.grid.y.hi, auto.grid.y.num) == (-0.6, 0.6, 5)
    assert len(calls) == len(auto.probes) + 1  # the centre, then each probe once
    assert set(auto.probes[:, 0]) == {0.0, 1.0}
    assert not auto.notes[0].endswith(")")  # reached on both sides: no warning


def test_a_side_that_never_rises_takes_the_last_step_and_says_so() -> None:
    auto = auto_grid(GridConfig(x="auto"), lambda a, b: {"l": 0.1 * max(a, 0.0)}, "l")
    assert auto.grid.y is None and auto.grid.x.num == 21
    assert auto.grid.x.hi == 15  # the + side reaches 1 at 12.8 (9.05 refined is short)
    assert "stays under" in auto.notes[0]
    auto = auto_grid(GridConfig(x="auto"), lambda a, b: {"l": 0.0}, "l")
    assert auto.grid.x.hi == 60 and "stays under" in auto.notes[0]
    with pytest.raises(ValueError, match="at the centre is nan"):
        auto_grid(GridConfig(x="auto"), lambda a, b: {"l": math.nan}, "l")


def test_direction_ratios_over_all_tensors_and_each() -> None:
    m = torch.nn.Linear(3, 2)
    with torch.no_grad():
        m.weight.fill_(2.0)
        m.bias.fill_(0.0)
    ds = DirectionSet([torch.ones(2, 3), torch.ones(2)], [torch.zeros(2, 3), torch.ones(2)],
                      "weights")  # fmt: skip
    r = direction_ratios(m, ds)
    assert r["tensor_names"] == "weight\nbias"
    np.testing.assert_allclose(r["dir_norm_ratio"], [math.sqrt(8) / math.sqrt(24),
                                                     math.sqrt(2) / math.sqrt(24)])  # fmt: skip
    np.testing.assert_allclose(r["tensor_ratio_x"][0], 0.5)
    assert math.isnan(r["tensor_ratio_x"][1])  # a zero tensor: no ratio, not inf


SETS = ["model.arch=digits_mlp", "model.checkpoint=", "data.subset=64", "data.splits=['train']",
        "compute.device=cpu", "grid.x=auto:7", "grid.y=-0.5:0.5:3"]  # fmt: skip


def test_compute_with_an_auto_axis_stores_and_shows_what_it_chose(chdir_tmp) -> None:
    (chdir_tmp / "c.toml").write_text(config_to_toml(load_config(None, SETS)))
    r = CliRunner().invoke(cli, ["compute", "c.toml", "-o", "a.h5"])
    assert r.exit_code == 0, r.output
    s = read_surface(chdir_tmp / "a.h5")
    hi = s.grid.x.hi
    assert f"grid.x = auto: -{hi:g}:{hi:g}:7" in r.output
    assert s.grid.y.spec() == "-0.5:0.5:3"
    c = read_centre(chdir_tmp / "a.h5")
    assert c["loss_name"] == "train_loss" and c["auto_threshold"] == pytest.approx(
        RISE * c["loss"] + OFFSET
    )
    # The centre's probed loss is the grid's centre value; the chosen edge rises past the level
    # on the side that set it, or the level lies between the last two probes before it.
    centre = s.values["train_loss"][1, 3]
    assert c["loss"] == pytest.approx(centre, rel=1e-6)
    assert max(s.values["train_loss"][1, 0], s.values["train_loss"][1, -1]) >= c["auto_threshold"]
    info = CliRunner().invoke(cli, ["info", "a.h5", "--layers"])
    assert info.exit_code == 0, info.output
    assert "direction norms" in info.output and "auto range" in info.output
    assert "fc1.weight" in info.output or "0.weight" in info.output or "weight" in info.output
    # The same command again resumes the file with the range it chose (not probed again).
    again = CliRunner().invoke(cli, ["compute", "c.toml", "-o", "a.h5"])
    assert again.exit_code == 0 and "grid.x = auto" not in again.output, again.output


def test_every_new_file_records_its_direction_norms(chdir_tmp) -> None:
    cfg = load_config(None, [*SETS[:-2], "grid.x=-1:1:3"])
    job = prepare(cfg, chdir_tmp / "n.h5")
    job.run()
    c = read_centre(chdir_tmp / "n.h5")
    assert c is not None and len(c["dir_norm_ratio"]) == 1 and "loss" not in c
    # Filter-normalised random directions: each filter as long as its weights'; the biases
    # (ignored: 'biasbn') add no length, so the whole direction is a little shorter.
    assert 0.9 < c["dir_norm_ratio"][0] <= 1.0


@sync
async def test_the_app_shows_the_directions_norms_and_the_centre_loss(chdir_tmp) -> None:
    (chdir_tmp / "c.toml").write_text(config_to_toml(load_config(None, SETS)))
    assert CliRunner().invoke(cli, ["compute", "c.toml", "-o", "a.h5"]).exit_code == 0
    c = read_centre(chdir_tmp / "a.h5")
    app = create_app(chdir_tmp / "a.h5")
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        await wait_for(pilot, lambda: "|dx|/|w|" in app.screen.sub_title)
        sub = app.screen.sub_title
        assert f"|dx|/|w| {c['dir_norm_ratio'][0]:.3g}" in sub
        assert f"train_loss {c['loss']:.4g} at the centre" in sub
