from __future__ import annotations

import textwrap

import pytest
import torch

from engine.errors import ConfigError, LandscapeError
from engine.models import build_model, list_models, load_checkpoint, read_state_dict


def test_builtin_digits_models_are_registered():
    # Forward passes of every model, zoo included, are in test_zoo.py.
    names = {m.name for m in list_models()}
    assert {"digits_cnn", "digits_mlp", "digits_resnet20", "digits_resnet20_noshort"} <= names


def test_seed_makes_initialisation_reproducible():
    a, b = build_model("digits_cnn", seed=5), build_model("digits_cnn", seed=5)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_unknown_arch_lists_choices():
    with pytest.raises(ConfigError, match="Unknown architecture 'resnet9000'.*digits_cnn"):
        build_model("resnet9000")


@pytest.mark.parametrize("shape", ["bare", "t7", "module", "model_state_dict"])
def test_checkpoint_shapes(tmp_path, shape):
    src = build_model("digits_cnn", seed=1)
    sd = src.state_dict()
    obj = {
        "bare": sd,
        "t7": {"acc": 97.5, "epoch": 10, "state_dict": sd},
        "module": {f"module.{k}": v for k, v in sd.items()},
        "model_state_dict": {"model_state_dict": sd, "epoch": 3},
    }[shape]
    torch.save(obj, tmp_path / "c.pt")
    dst = build_model("digits_cnn", seed=2)
    load_checkpoint(dst, tmp_path / "c.pt")
    for k, v in dst.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_old_checkpoints_without_bn_counters_load(tmp_path):
    """PyTorch < 0.4.1 saved BatchNorm without ``num_batches_tracked``: every other entry loads
    and the counters keep the model's own values."""
    src = build_model("digits_cnn", seed=1)
    with torch.no_grad():
        for m in src.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # statistics a fresh model does not have
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    sd = {k: v for k, v in src.state_dict().items() if "num_batches" not in k}
    assert len(sd) < len(src.state_dict())  # the model does have BN counters to leave out
    torch.save(sd, tmp_path / "old.t7")
    dst = build_model("digits_cnn", seed=2)
    counters = {k: v.clone() for k, v in dst.state_dict().items() if "num_batches" in k}
    load_checkpoint(dst, tmp_path / "old.t7")
    for k, v in dst.state_dict().items():
        assert torch.equal(v, counters[k] if k in counters else sd[k]), k


def test_misfit_checkpoint_is_one_line(tmp_path):
    torch.save(build_model("digits_mlp").state_dict(), tmp_path / "mlp.pt")
    with pytest.raises(LandscapeError) as e:
        load_checkpoint(build_model("digits_cnn"), tmp_path / "mlp.pt")
    msg = str(e.value)
    assert "does not fit the model" in msg and "missing keys: features.0.weight" in msg
    assert "unexpected keys: 1.weight" in msg and "\n" not in msg
    torch.save(build_model("digits_cnn", {"width": 4}).state_dict(), tmp_path / "narrow.pt")
    with pytest.raises(LandscapeError, match=r"shape mismatch: features.0.weight \(4, 1, 3, 3\)"):
        load_checkpoint(build_model("digits_cnn"), tmp_path / "narrow.pt")


class Evil:
    """Any pickled class: weights_only loading must refuse it."""


def test_unsafe_or_garbage_checkpoints(tmp_path):
    with pytest.raises(ConfigError, match="checkpoint not found"):
        read_state_dict(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(LandscapeError, match="not a readable PyTorch checkpoint"):
        read_state_dict(tmp_path / "junk.pt")
    torch.save({"state_dict": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(LandscapeError, match="weights_only=True"):
        read_state_dict(tmp_path / "evil.pt")


def test_user_models_by_file_and_module(tmp_path, monkeypatch):
    code = textwrap.dedent(
        """
        from torch import nn
        def make(hidden=8):
            layers = [nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)]
            return nn.Sequential(*layers)
        def not_a_model():
            return 3
        """
    )
    (tmp_path / "mynets.py").write_text(code)
    m = build_model(f"{tmp_path / 'mynets.py'}:make", {"hidden": 5})
    assert m[1].out_features == 5
    monkeypatch.syspath_prepend(str(tmp_path))
    assert build_model("mynets:make")[1].out_features == 8
    with pytest.raises(LandscapeError, match="expected a torch nn.Module"):
        build_model("mynets:not_a_model")
    with pytest.raises(ConfigError, match="has no callable named 'nothing'"):
        build_model("mynets:nothing")
    with pytest.raises(ConfigError, match="cannot import module"):
        build_model("no_such_module_xyz:make")
    with pytest.raises(ConfigError, match="file not found"):
        build_model(f"{tmp_path / 'absent.py'}:make")
