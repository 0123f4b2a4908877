from __future__ import annotations

import csv

import pytest
import torch
from typer.testing import CliRunner

from engine.config import load_config
from engine.errors import LandscapeError
from engine.train import crop_flip, lr_at, train_run
from tests.conftest import REPO
from tui_landscape.cli import app

CPU = torch.device("cpu")
FAST = [
    "model.arch=digits_cnn",
    "train.batch_size=32",
    "train.lr=0.05",
    "train.weight_decay=0",
    "train.schedule=constant",
    "data.subset=600",
    "train.epochs=3",
]


def rows(run):
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_digits_training_reaches_90_percent_and_writes_the_run(tmp_path):
    cfg = load_config(None, [*FAST, "data.subset=0", "train.epochs=6", "train.save_every=4"])
    t = train_run(cfg, tmp_path / "run", CPU)
    run = tmp_path / "run"
    names = sorted(p.name for p in run.iterdir())
    assert names == [
        "config.toml",
        "last.pt",
        "metrics.csv",
        "model_0.pt",
        "model_4.pt",
        "model_6.pt",
    ]
    m = rows(run)
    assert [r["epoch"] for r in m] == ["1", "2", "3", "4", "5", "6"]
    assert float(m[-1]["test_acc"]) >= 90.0
    ck = torch.load(run / "model_6.pt", weights_only=True)
    assert set(ck) == {"state_dict", "acc", "epoch"} and ck["epoch"] == 6
    assert ck["acc"] == pytest.approx(float(m[-1]["test_acc"]))
    for k, v in t.model.state_dict().items():
        assert torch.equal(ck["state_dict"][k], v.cpu())


class Stop(Exception):
    pass


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    cfg = load_config(None, [*FAST, "train.epochs=4", "train.schedule=step"])
    straight = train_run(cfg, tmp_path / "a", CPU)

    def stop_after_2(r):
        if r.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train_run(cfg, tmp_path / "b", CPU, on_epoch=stop_after_2)
    assert not (tmp_path / "b" / "model_3.pt").exists()
    resumed = train_run(cfg, tmp_path / "b", CPU, resume=True)
    for (k, v), w in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(v, w), k
    a, b = rows(tmp_path / "a"), rows(tmp_path / "b")
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]
    assert [r["test_acc"] for r in a] == [r["test_acc"] for r in b]


def test_run_folder_guards(tmp_path):
    cfg = load_config(None, [*FAST, "train.epochs=1"])
    train_run(cfg, tmp_path / "r", CPU)
    with pytest.raises(LandscapeError, match="--resume"):
        train_run(cfg, tmp_path / "r", CPU)
    with pytest.raises(LandscapeError, match="nothing to resume"):
        train_run(cfg, tmp_path / "empty", CPU, resume=True)
    other = load_config(None, [*FAST, "train.epochs=1", "train.lr=0.2"])
    with pytest.raises(LandscapeError, match="different config"):
        train_run(other, tmp_path / "r", CPU, resume=True)
    train_run(other, tmp_path / "r", CPU, overwrite=True)


def test_step_schedule_is_the_references():
    tc = load_config(None, ["train.epochs=300", "train.lr=0.1"]).train
    assert [lr_at(tc, e) for e in (1, 150, 151, 225, 226, 275, 276, 300)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001]
    )
    cos = load_config(None, ["train.epochs=10", "train.schedule=cosine"]).train
    assert lr_at(cos, 1) == pytest.approx(0.1) and lr_at(cos, 10) < 0.01


def test_crop_flip_moves_windows():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    a = crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    b = crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert a.shape == x.shape and torch.equal(a, b)
    # Every output row is a (possibly flipped) window of a padded input row.
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    row = a[0, 0, 3]
    windows = [padded[0, 0, r, c : c + 6] for r in range(10) for c in range(5)]
    assert any(torch.equal(row, w) or torch.equal(row, w.flip(0)) for w in windows)


def test_train_then_compute_from_the_cli(chdir_tmp):
    preset = str(REPO / "sample_configs" / "paper" / "digits_cnn_sgd_bs16_wd0.toml")
    runner = CliRunner()
    train = [
        "train",
        preset,
        "--set",
        "train.epochs=2",
        "--set",
        "data.subset=300",
        "--set",
        "train.out=run",
    ]
    r = runner.invoke(app, train)
    assert r.exit_code == 0, r.output
    assert "epoch    2/2" in r.stdout and (chdir_tmp / "run" / "model_2.pt").exists()
    r = runner.invoke(
        app,
        [
            "compute",
            preset,
            "--set",
            "model.checkpoint=run/model_2.pt",
            "--set",
            "grid.x=-1:1:3",
            "--set",
            "grid.y=",
            "--set",
            "data.subset=300",
            "--out",
            "s.h5",
        ],
    )
    assert r.exit_code == 0, r.output
    again = runner.invoke(app, train)
    assert again.exit_code == 1 and "--resume" in again.stderr
