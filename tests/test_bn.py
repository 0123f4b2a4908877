"""BN running statistics away from the checkpoint: the diagnosis of negative variances and
``compute.bn = 'recalibrate'`` against a plain loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.build import load_model
from engine.config import load_config
from engine.data import load_splits
from engine.errors import ConfigError, LandscapeError
from engine.evaluate import evaluate
from engine.formats import read_surface
from engine.run import prepare
from tests.conftest import REPO
from tui_landscape.cli import app

SAMPLE = REPO / "sample_configs" / "digits_interpolation.toml"
SMALL, LARGE = "recipe:digits_cnn_small_batch", "recipe:digits_cnn_large_batch"
INTERP = [
    f"model.checkpoint={SMALL}",
    "directions.kind=interpolate",
    f"directions.target={LARGE}",
]


def _manual(checkpoint: str, splits=("train", "test"), batch_size: int = 1024) -> dict:
    """A model's metrics after re-estimating its BN statistics by hand: reset them, then the
    train split in train mode with a cumulative average, then evaluate in eval mode."""
    cfg = load_config(None, [f"model.checkpoint={checkpoint}", f"data.splits={list(splits)}"])
    model = load_model(cfg)
    data = load_splits(cfg.data, ["train", *splits])
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        x = data["train"].x
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size])
    model.eval()
    out = {}
    for name in splits:
        st = evaluate(model, data[name], 4096)
        out[f"{name}_loss"], out[f"{name}_acc"] = st.loss, st.acc
    return out


@pytest.mark.usefixtures("bn_recipes")
def test_the_summary_says_where_moved_variances_go_negative(tmp_path):
    out = tmp_path / "keep.h5"
    r = CliRunner().invoke(
        app,
        ["compute", str(SAMPLE), "--out", str(out), "--set", "compute.bn=keep",
         "--set", "grid.x=-0.5:1.5:9"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert (
        "BN running variances are negative from x = 1.25 on (2 of 9 points; 2 of them have a "
        "NaN or infinite train_loss): compute.bn = 'recalibrate' re-estimates them" in text
    )
    s = read_surface(out)
    assert s.attrs["dir_type"] == "states"
    assert np.isnan(s.values["train_loss"][-2:]).all()
    assert np.isfinite(s.values["train_loss"][:-2]).all()
    # No accuracy where the logits are NaN (an argmax of NaN would read as 0 %).
    assert np.isnan(s.values["train_acc"][-2:]).all()
    assert np.isfinite(s.values["train_acc"][:-2]).all()


@pytest.mark.usefixtures("bn_recipes")
def test_negative_variance_equals_a_check_of_the_moved_model(tmp_path):
    grid = np.linspace(-3, 3, 25)
    job = prepare(load_config(None, [*INTERP, "grid.x=-3:3:25"]), tmp_path / "n.h5")
    land = job.landscape
    got = land.negative_bn_variance([(float(a), 0.0) for a in grid])
    want = []
    for a in grid:
        land.perturbation.set(float(a))
        bns = [m for m in land.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        want.append(any(bool((m.running_var < 0).any()) for m in bns))
    job.close()
    assert got == want and any(want) and not want[len(grid) // 2]  # the centre never is


@pytest.mark.usefixtures("bn_recipes")
def test_recalibrated_end_points_equal_a_plain_loop(tmp_path):
    s = _run([*INTERP, "compute.bn=recalibrate", "grid.x=0:1:2"], tmp_path / "r.h5")
    assert s.attrs["dir_type"] == "weights"  # 'auto' moves no statistics it re-estimates
    for k, checkpoint in enumerate((SMALL, LARGE)):
        want = _manual(checkpoint)
        for name, value in want.items():
            assert s.values[name][k] == pytest.approx(value, rel=1e-6, abs=1e-6), (k, name)


@pytest.mark.usefixtures("bn_recipes")
def test_recalibration_through_a_loss_function_and_without_the_train_split(tmp_path):
    # A loss function's forward pass updates the statistics as the model's does; a surface of
    # the test split alone still re-estimates them on the train split.
    sets = [*INTERP, "compute.bn=recalibrate", "grid.x=0:1:2", "data.splits=['test']"]
    fused = _run(sets, tmp_path / "f.h5")
    user = _run([*sets, "data.loss=engine.losses:crossentropy"], tmp_path / "u.h5")
    assert list(fused.values) == ["test_loss", "test_acc"]
    # rtol 1e-5: the fused path runs channels-last, the loss function's the default layout,
    # so the statistics differ in float rounding.
    np.testing.assert_allclose(user.values["test_loss"], fused.values["test_loss"], rtol=1e-5)
    want = _manual(LARGE, splits=("test",))
    # rel 1e-5 too: the plain loop runs the default layout (2e-6 apart at one thread).
    assert fused.values["test_loss"][1] == pytest.approx(want["test_loss"], rel=1e-5)


@pytest.mark.usefixtures("bn_recipes")
def test_the_sample_has_no_nan_and_two_basins(tmp_path):
    cfg = load_config(SAMPLE, ["grid.x=-0.5:1.5:9"])
    assert cfg.compute.bn == "recalibrate"
    job = prepare(cfg, tmp_path / "s.h5")
    summary = job.run()
    assert summary.non_finite == 0 and summary.bn_negative == ()
    z = read_surface(tmp_path / "s.h5").values["train_loss"]  # at -0.5, -0.25, ..., 1.5
    assert np.isfinite(z).all()
    # Two minimizers at 0 and 1, a barrier between them, and the walls beyond.
    assert z[2] < z[5] > z[6] and z[6] < 0.05
    assert z[-1] > z[5] and z[-1] > 1.0


def test_the_bn_key_is_checked():
    with pytest.raises(ConfigError, match="Expected `compute.bn` to be one of 'keep', "):
        load_config(None, ["compute.bn=always"])
    with pytest.raises(ConfigError, match="`directions.type` = 'states' would move"):
        load_config(None, ["compute.bn=recalibrate", "directions.type=states"])
    keep = load_config(None, ["data.batch_size=64"]).identity()
    assert keep == load_config(None, ["data.batch_size=32"]).identity()
    recal = load_config(None, ["compute.bn=recalibrate", "data.batch_size=64"]).identity()
    # Recalibrated statistics are averages over batches: the batching is part of the values.
    assert recal["data"]["batch_size"] == 64 and recal["compute"]["bn"] == "recalibrate"


def test_recalibrate_refuses_a_model_without_batch_norm(tmp_path):
    cfg = load_config(None, ["model.arch=digits_mlp", "compute.bn=recalibrate", "grid.x=0:1:2"])
    with pytest.raises(LandscapeError, match="no BatchNorm layer"):
        prepare(cfg, tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def _run(sets, out):
    prepare(load_config(None, sets), out).run()
    return read_surface(out)


@pytest.mark.usefixtures("bn_recipes")
def test_the_app_s_run_ends_with_the_same_diagnosis(tmp_path, monkeypatch):
    """The setup's Run logs what `compute` prints at its end: the negative variances too."""
    monkeypatch.chdir(tmp_path)  # the output, interp.h5, is written in the working folder
    from textual.widgets import Button, RichLog

    from engine.config import config_to_toml
    from tests.test_tui import sync, wait_for
    from tui_landscape.app import create_app
    from tui_landscape.screens.setup import SetupScreen

    cfg = load_config(SAMPLE, ["compute.bn=keep", "grid.x=-0.5:1.5:9", "compute.device=cpu"])
    p = tmp_path / "interp.toml"
    p.write_text(config_to_toml(cfg))

    @sync
    async def run() -> list[str]:
        app = create_app(p)
        async with app.run_test(size=(140, 44)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
            s = app.screen
            await wait_for(pilot, lambda: not s.query_one("#run", Button).disabled)
            await pilot.press("ctrl+r")
            log = s.query_one(RichLog)
            await wait_for(pilot, lambda: any("Done" in str(line) for line in log.lines), 120)
            return [" ".join(str(line.text) for line in log.lines)]

    text = " ".join(" ".join(run()).split())
    assert "Computed 9 points in" in text and "Minimum train_loss" in text
    assert "BN running variances are negative from x = 1.25 on (2 of 9 points" in text
