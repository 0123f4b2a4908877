"""`trajectory` on a run written by `train`: PCA plane, path, surface, all wired together."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.build import load_model
from engine.config import load_config
from engine.evaluate import evaluate
from engine.formats import read_surface
from engine.train import train_run
from tui_landscape.cli import app

FAST = [
    "model.arch=digits_mlp",
    "train.batch_size=64",
    "train.lr=0.05",
    "train.schedule=constant",
    "data.subset=400",
    'data.splits=["train"]',
    "train.epochs=5",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("traj") / "run"
    train_run(load_config(None, FAST), out, torch.device("cpu"))
    return out


def test_trajectory_command_gives_path_ratios_and_the_surface_beneath(run_dir, tmp_path):
    cfg = tmp_path / "pca.toml"
    cfg.write_text(
        f'[model]\narch = "digits_mlp"\n[data]\nsubset = 400\nsplits = ["train"]\n'
        f'[directions]\ncheckpoints = "{run_dir}"\n[grid]\nx = "auto:5"\ny = "auto:5"\n'
    )
    out = tmp_path / "pca.h5"
    r = CliRunner().invoke(app, ["trajectory", str(cfg), "--out", str(out), "--projection",
                                 str(tmp_path / "proj.h5")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Explained variance: 1st PC" in r.stdout and "1st PC:" in r.stdout
    s = read_surface(out)
    with h5py.File(out, "r") as f:
        px, py = f["proj_xcoord"][()], f["proj_ycoord"][()]
        ratio = f["explained_variance_ratio_"][()]
        assert "proj_xcoord_lsq" in f
    assert len(px) == 6 and px[-1] == 0 and py[-1] == 0  # model_0..model_5; the end at 0
    assert px[0] < 0 and py[0] < 0  # the documented sign convention
    assert 0 < ratio[1] <= ratio[0] < 1
    # The automatic grid covers the path with a margin.
    assert s.x.min() < px.min() and s.x.max() > px.max()
    assert s.y.min() < py.min() and s.y.max() > py.max()
    # The direction file carries the reference's PCA datasets.
    with h5py.File(tmp_path / "pca.directions.h5", "r") as f:
        assert f["explained_variance_ratio_"].shape == (2,) and "singular_values_" in f
    with h5py.File(tmp_path / "proj.h5", "r") as f:
        np.testing.assert_array_equal(f["proj_xcoord"][()], px)
    # The origin is the final model: the surface there is its loss (the path's end).
    final = load_config(cfg, ["directions.kind=pca"])
    model = load_model(final)
    from engine.data import load_splits

    want = evaluate(model, load_splits(final.data)["train"], 1024).loss
    i, j = np.argmin(np.abs(s.y)), np.argmin(np.abs(s.x))
    if s.x[j] == 0 and s.y[i] == 0:
        assert s.values["train_loss"][i, j] == pytest.approx(want, rel=1e-5)


def test_pca_surface_has_the_final_models_loss_at_the_origin(run_dir, tmp_path):
    from engine.run import prepare

    cfg = load_config(None, [
        "model.arch=digits_mlp", "data.subset=400", 'data.splits=["train"]',
        "directions.kind=pca", f"directions.checkpoints={run_dir}",
        "grid.x=-1:1:3", "grid.y=-1:1:3",
    ])  # fmt: skip
    job = prepare(cfg, tmp_path / "o.h5")
    job.run()
    s = read_surface(tmp_path / "o.h5")
    model = load_model(cfg)
    from engine.data import load_splits

    want = evaluate(model, load_splits(cfg.data)["train"], 1024).loss
    assert s.values["train_loss"][1, 1] == pytest.approx(want, rel=1e-6)
    # Resuming keeps the directions (the hash check passes) and computes nothing new.
    again = prepare(cfg, tmp_path / "o.h5")
    assert again.resumed and again.todo() == []
    again.writer.close()


def test_pca_needs_checkpoints_and_a_2d_grid():
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="directions.checkpoints"):
        load_config(None, ["directions.kind=pca", "grid.y=-1:1:3"])
    with pytest.raises(ConfigError, match="grid.y"):
        load_config(None, ["directions.kind=pca", "directions.checkpoints=x"])
    # An automatic range is for any kind now (engine/autorange.py); its N is still checked.
    assert load_config(None, ["grid.x=auto"]).grid.x == "auto"
    with pytest.raises(ConfigError, match="'auto' or 'auto:N' with N >= 2"):
        load_config(None, ["grid.x=auto:1"])
