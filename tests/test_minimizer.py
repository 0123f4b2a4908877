"""engine.minimizer: one rule picks each member's run; divergence is recorded; reruns resume."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine.config import config_from_dict
from engine.data import load_splits
from engine.errors import ConfigError, LandscapeError
from engine.evaluate import evaluate
from engine.minimizer import RecipeRule, read_outcome, train_member
from engine.models import build_model, load_checkpoint

CPU = torch.device("cpu")


def _cfg(epochs: int = 2, **train):
    # A tiny MLP on 300 digits: each epoch takes milliseconds.
    return config_from_dict(
        {
            "model": {"arch": "digits_mlp", "kwargs": {"hidden": 16}},
            "data": {"dataset": "digits", "subset": 300},
            "train": {"epochs": epochs, "batch_size": 32, "lr": 0.05, "seed": 0, **train},
        }
    )


def test_the_lowest_final_train_loss_wins_and_outcome_json_says_so(tmp_path):
    cfg = _cfg()
    rule = RecipeRule(lr_grid=(0.001, 0.1), converged_train_acc=0.5)
    got = train_member(cfg, rule, tmp_path, device=CPU)
    assert sorted((tmp_path / p.name).name for p in tmp_path.iterdir()) == [
        "lr-0.001",
        "lr-0.1",
        "outcome.json",
    ]
    losses = {c.lr: c.train_loss for c in got.candidates}
    assert got.lr == min(losses, key=losses.get)
    assert got.lr == 0.1  # 2 epochs at lr 0.001 barely move the loss
    # The recorded numbers are the checkpoint's own, on the whole train split in eval mode.
    model = build_model("digits_mlp", {"hidden": 16})
    load_checkpoint(model, got.checkpoint)
    train = evaluate(model.eval(), load_splits(cfg.data)["train"], 1024)
    assert got.checkpoint == tmp_path / "lr-0.1" / "model_2.pt"
    assert math.isclose(got.train_loss, train.loss, rel_tol=1e-6)
    assert math.isclose(got.train_acc, train.acc / 100, rel_tol=1e-6)
    assert got.status == ("ok" if got.train_acc >= 0.5 else "not_converged")
    stored = json.loads((tmp_path / "outcome.json").read_text())
    assert stored["outcome"]["lr"] == 0.1 and stored["rule"]["lr_grid"] == [0.001, 0.1]
    assert read_outcome(tmp_path) == got


def test_below_the_accuracy_threshold_is_not_converged(tmp_path):
    got = train_member(_cfg(epochs=1), RecipeRule(converged_train_acc=1.0), tmp_path, device=CPU)
    assert got.lr == 0.05 and got.status == "not_converged" and "train accuracy" in got.note


def test_divergence_is_recorded_not_raised(tmp_path):
    cfg = _cfg(epochs=3)
    got = train_member(cfg, RecipeRule(lr_grid=(0.05, 1e6)), tmp_path, device=CPU)
    assert got.lr == 0.05
    bad = next(c for c in got.candidates if c.lr == 1e6)
    assert bad.diverged and "not finite" in bad.note and math.isnan(bad.train_loss)
    alone = train_member(cfg, RecipeRule(lr_grid=(1e6,)), tmp_path / "alone", device=CPU)
    assert alone.status == "diverged" and "not finite" in alone.note
    assert read_outcome(tmp_path / "alone").status == "diverged"


def test_a_rerun_reuses_finished_runs_and_resumes_a_killed_one(tmp_path):
    cfg, rule = _cfg(epochs=3), RecipeRule(lr_grid=(0.01, 0.05))
    seen = []

    def kill_after_two_epochs_of_the_second(done, total, what):
        seen.append(done)
        if what.startswith("lr 0.05: epoch 2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_member(cfg, rule, tmp_path, device=CPU, progress=kill_after_two_epochs_of_the_second)
    assert seen == [1, 2, 3, 4, 5] and not (tmp_path / "outcome.json").exists()
    first = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("model_*.pt")}
    assert len(first) == 4 + 3  # lr 0.01: model_0..3; lr 0.05: model_0..2

    seen.clear()
    got = train_member(cfg, rule, tmp_path, device=CPU, progress=lambda d, t, w: seen.append(w))
    assert seen == ["lr 0.01: reused (lr-0.01/candidate.json)", seen[1]]
    assert seen[1].startswith("lr 0.05: epoch 3/3")  # only the missing epoch was trained
    assert all(p.stat().st_mtime_ns == t for p, t in first.items())
    assert (tmp_path / "lr-0.05" / "model_3.pt").is_file()

    # A third run trains nothing: the outcome is read back.
    seen.clear()
    assert train_member(cfg, rule, tmp_path, device=CPU, progress=lambda *a: seen.append(a)) == got
    assert seen == []


def test_another_config_in_the_same_folder_is_refused(tmp_path):
    train_member(_cfg(epochs=1), RecipeRule(), tmp_path, device=CPU)
    with pytest.raises(LandscapeError, match="different config"):
        train_member(_cfg(epochs=1, batch_size=16), RecipeRule(), tmp_path, device=CPU)


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        (RecipeRule(lr_grid=(0.1, -1.0)), "> 0"),
        (RecipeRule(lr_grid=(0.1, 0.1)), "without repeats"),
        (RecipeRule(converged_train_acc=95.0), r"fraction in \[0, 1\]"),
    ],
)
def test_bad_rules_are_refused_in_one_line(tmp_path, rule, match):
    with pytest.raises(ConfigError, match=match):
        train_member(_cfg(), rule, tmp_path, device=CPU)


def test_a_member_without_a_test_split_has_no_test_numbers(tmp_path):
    cfg = config_from_dict(
        {
            "model": {"arch": "digits_mlp", "kwargs": {"hidden": 16}},
            "data": {"dataset": "digits", "subset": 300, "splits": ["train"]},
            "train": {"epochs": 1, "batch_size": 32, "lr": 0.05},
        }
    )
    got = train_member(cfg, RecipeRule(converged_train_acc=0.0), tmp_path, device=CPU)
    assert got.status == "ok" and math.isnan(got.test_loss) and math.isfinite(got.train_loss)
