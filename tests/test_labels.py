"""Class labels a user's data set may hold: out of range, of any integer width, none at all.

Every path that reaches the classifier math with labels refuses one out of range in one line
(torch's own refusal is an IndexError traceback on a CPU, a device-side assert on a GPU), and
labels of any integer width give the numbers of int64 labels, to the bit.
"""

from __future__ import annotations

import re

import pytest
import torch
from typer.testing import CliRunner

from engine.errors import LandscapeError
from engine.evaluate import sample_stats
from engine.losses import LOSSES
from tui_landscape.cli import app

USER_DATA = """
import torch
from torch.utils.data import TensorDataset


def _data(label=None, at=7, dtype=torch.int64):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(48) % 10
    if label is not None:
        y[at] = label
    return TensorDataset(torch.randn(48, 1, 8, 8, generator=g), y.to(dtype))


def above():
    return _data(10)


def negative():
    return _data(-3, dtype=torch.int32)


def good():
    return _data()


def late_above():
    return _data(10, at=40)


def late_negative():
    return _data(-3, at=40)


def small():
    return _data(dtype=torch.uint8)


def wrong_shape():
    return TensorDataset(torch.randn(48, 1, 9, 9), torch.arange(48) % 10)


def collate(items):
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])
"""


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "udata.py").write_text(USER_DATA)
    config = tmp_path / "c.toml"
    config.write_text(
        '[model]\narch = "digits_mlp"\n[data]\ndataset = "udata.py:above"\nsplits = ["train"]\n'
        '[grid]\nx = "-1:1:3"\n[train]\nepochs = 1\n'
    )
    return config


def _one_line(r) -> str:
    """The one line of a refused run (a SystemExit with a code, not an exception's trace)."""
    assert r.exit_code != 0 and isinstance(r.exception, SystemExit), (r.exception, r.output)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]


@pytest.mark.parametrize(
    ("sets", "said"),
    [
        ([], "the model gives 10 outputs per sample, but the train split has labels up to 10"),
        # The Hessian's eigenvectors as directions: an IndexError traceback before.
        (["directions.kind=hessian"], "the Hessian's split has labels up to 10"),
        (["data.dataset=udata.py:negative"], "the train split has a negative label (-3)"),
    ],
)
def test_labels_out_of_range_are_one_line_in_compute(user_config, sets, said):
    args = ["compute", str(user_config), "--out", "s.h5"]
    line = _one_line(CliRunner().invoke(app, args + [a for s in sets for a in ("--set", s)]))
    assert said in line
    assert not (user_config.parent / "s.h5").exists()


def test_labels_out_of_range_are_one_line_in_train_before_any_file(user_config):
    """An IndexError traceback at the first batch, after the run folder was written."""
    r = CliRunner().invoke(app, ["train", str(user_config), "--out", "run"])
    assert "train split has labels up to 10" in _one_line(r)
    assert not (user_config.parent / "run").exists()


def test_a_model_that_cannot_take_the_inputs_is_one_line_in_train(user_config):
    """The first training batch raised the model's own error as a traceback."""
    args = ["train", str(user_config), "--out", "run", "--set", "data.dataset=udata.py:wrong_shape"]
    line = _one_line(CliRunner().invoke(app, args))
    assert "the model cannot evaluate the train split (inputs of shape (1, 9, 9))" in line
    assert not (user_config.parent / "run").exists()


def test_hessian_at_refuses_labels_out_of_range():
    from engine.api import hessian_at

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    x, y = torch.randn(20, 4), torch.arange(20) % 3
    for bad, said in ((3, "labels up to 3"), (-1, "a negative label (-1)")):
        y[5] = bad
        with pytest.raises(LandscapeError, match=re.escape(said)) as e:
            hessian_at(model, (x, y))
        assert "\n" not in str(e.value)


def test_uint8_labels_through_a_collate_give_the_int64_surface(user_config):
    """A collate function hands labels as they are: gather refused uint8 in one cryptic line
    ('Expected dtype int32/int64 for index'), the data loader's own path converted them."""
    from engine.formats import read_surface

    sets = ["--set", "data.collate=udata.py:collate", "--set", "data.batch_size=16"]
    for name in ("good", "small"):
        args = ["compute", str(user_config), "--out", f"{name}.h5", "--set"]
        r = CliRunner().invoke(app, [*args, f"data.dataset=udata.py:{name}", *sets])
        assert r.exit_code == 0, r.output
    small = read_surface(user_config.parent / "small.h5").values
    for key, value in read_surface(user_config.parent / "good.h5").values.items():
        assert (small[key] == value).all(), key


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8, torch.uint8])
@pytest.mark.parametrize("loss", ["crossentropy", "mse"])
def test_labels_of_any_integer_width_give_the_int64_numbers(dtype, loss):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 50, 10, generator=g)
    y = torch.randint(0, 10, (50,), generator=g)
    for z in (logits, logits[0]):  # K points, and one
        want, ok = sample_stats(z, y, loss)
        got, got_ok = sample_stats(z, y.to(dtype), loss)
        assert torch.equal(got, want) and torch.equal(got_ok, ok)
    fn = LOSSES.get(loss).fn  # the loss as a function of (model, batch): a collate's labels
    out = fn(torch.nn.Identity(), (logits[0], y.to(dtype)))
    assert torch.equal(out["loss"], sample_stats(logits[0], y, loss)[0])


def test_a_batch_of_no_samples_gives_empty_results_for_k_points():
    """(K, 0, C) logits: reshape(-1, 0, C) cannot infer K, and raised."""
    per, ok = sample_stats(torch.zeros(4, 0, 10), torch.zeros(0, dtype=torch.long))
    assert per.shape == ok.shape == (4, 0)
    per, ok = sample_stats(torch.zeros(2, 3, 0, 10), torch.zeros(0, dtype=torch.long))
    assert per.shape == (2, 3, 0)


@pytest.mark.parametrize(
    ("name", "said"), [("above", "has labels up to 10"), ("negative", "has a negative label (-3)")]
)
def test_a_label_out_of_range_in_a_later_batch_of_a_collated_split_stops_the_run(
    user_config, name, said
):
    """Only the first batch of a collated (or streamed) split is checked before the run: the
    label at sample 40 (the third batch of 16) failed every point with torch's IndexError (on
    a GPU, a device-side assert). Now every batch is checked, and the run stops in one line."""
    sets = [f"data.dataset=udata.py:late_{name}", "data.collate=udata.py:collate"]
    sets.append("data.batch_size=16")
    args = ["compute", str(user_config), "--out", "s.h5"]
    line = _one_line(CliRunner().invoke(app, args + [a for s in sets for a in ("--set", s)]))
    assert f"a batch of the data {said}" in line


@pytest.mark.parametrize("loss", ["crossentropy", "mse"])
def test_the_loss_function_of_a_fused_loss_checks_each_batchs_labels(loss):
    from engine.errors import DataSetError

    fn = LOSSES.get(loss).fn
    logits = torch.randn(6, 4)
    for bad in (4, -1):
        y = torch.arange(6) % 4
        y[5] = bad
        with pytest.raises(DataSetError) as e:
            fn(torch.nn.Identity(), (logits, y))
        assert "\n" not in str(e.value) and "a batch of the data" in str(e.value)
