"""The embedded non-classifier cases: the byte-level transformer on Python's help text and the
diabetes regression MLP, their data sets, losses and recipes."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from engine import recipes
from engine.losses import causal_lm, check_output, resolve_loss, squared_error
from engine.models import build_model, list_models, load_checkpoint, parameter_count
from engine.tabular import diabetes_arrays, diabetes_datasets
from engine.textdata import charlm_datasets, charlm_text
from engine.train import dataset_metrics
from tests.conftest import REPO


def _batch(ds, n: int | None = None):
    return default_collate([ds[i] for i in range(n or len(ds))])


def test_registry_lists_the_new_models():
    info = {m.name: m for m in list_models()}
    assert info["char_transformer"].input_shape == (65,)
    assert info["char_transformer"].input_dtype == torch.long
    assert info["diabetes_mlp"].input_shape == (10,)
    assert info["diabetes_mlp"].input_dtype == torch.float32
    assert parameter_count("char_transformer") == 137_280
    assert parameter_count("diabetes_mlp") == 1_441


def test_char_transformer_is_causal():
    model = build_model("char_transformer", seed=1).eval()
    x = torch.randint(0, 256, (2, 65), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, 40] = (y[:, 40] + 1) % 256
    with torch.no_grad():
        a, b = model(x), model(y)
    assert a.shape == (2, 65, 256)
    torch.testing.assert_close(a[:, :40], b[:, :40], rtol=0, atol=1e-6)
    assert (a[:, 40:] - b[:, 40:]).abs().amax() > 1e-3
    with torch.no_grad():  # a shorter sequence (right padding cut off) gives the same prefix
        torch.testing.assert_close(model(x[:, :20]), a[:, :20], rtol=0, atol=1e-5)


def test_causal_lm_counts_the_context_and_starts_near_uniform():
    ds = charlm_datasets(context=16, max_train=8, max_test=8)["test"]
    batch = _batch(ds)
    assert batch["input_ids"].shape == (8, 17)
    model = build_model("char_transformer", {"context": 16}).eval()
    with torch.no_grad():
        out = causal_lm(model, batch)
    assert check_output(resolve_loss("causal_lm"), out, 8) == ["acc"]
    assert torch.equal(out["count"], torch.full((8,), 16.0))
    # small initial weights: nearly uniform predictions over the 256 bytes
    assert abs(float(out["loss"].sum() / out["count"].sum()) - math.log(256)) < 0.05


def test_charlm_datasets_split_the_whole_text_without_overlap():
    full = charlm_datasets(context=64, max_train=0, max_test=0)
    train, test = _batch(full["train"])["input_ids"], _batch(full["test"])["input_ids"]
    assert train.dtype == torch.long and train.shape[1] == 65
    n = len(train) + len(test)
    order = torch.empty(n, 65, dtype=torch.long)
    is_test = torch.arange(n) % 10 == 0
    order[is_test], order[~is_test] = test, train
    text = torch.frombuffer(bytearray(charlm_text()), dtype=torch.uint8).long()
    assert n == len(text) // 65
    assert torch.equal(order.flatten(), text[: n * 65])  # every chunk once, in one split


def test_charlm_datasets_defaults_are_capped_and_deterministic():
    a, b = charlm_datasets(), charlm_datasets()
    assert (len(a["train"]), len(a["test"])) == (2048, 256)
    for split in ("train", "test"):
        assert torch.equal(_batch(a[split])["input_ids"], _batch(b[split])["input_ids"])
    item = a["train"][0]
    assert set(item) == {"input_ids"} and item["input_ids"].shape == (65,)


def test_diabetes_datasets():
    d = diabetes_datasets()
    assert (len(d["train"]), len(d["test"])) == (353, 89)
    x, y = d["train"][0]
    assert (x.dtype, x.shape, y.dtype, y.shape) == (torch.float32, (10,), torch.float32, ())
    xs, ys = _batch(d["train"])
    torch.testing.assert_close(xs.mean(0), torch.zeros(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(xs.std(0, unbiased=False), torch.ones(10), atol=1e-5, rtol=0)
    assert abs(float(ys.mean())) < 1e-5 and abs(float(ys.std(unbiased=False)) - 1) < 1e-5
    # the test split is every fifth patient, standardised with the train statistics
    raw_x, _ = diabetes_arrays()
    train_raw, test_raw = raw_x[np.arange(442) % 5 != 0], raw_x[::5]
    expect = (test_raw - train_raw.mean(0)) / train_raw.std(0)
    np.testing.assert_allclose(_batch(d["test"])[0].numpy(), expect, atol=1e-5)
    again = _batch(diabetes_datasets()["test"])
    assert all(torch.equal(p, q) for p, q in zip(_batch(d["test"]), again, strict=True))


def test_the_sample_user_loss_equals_squared_error():
    batch = _batch(diabetes_datasets()["test"])
    model = build_model("diabetes_mlp", seed=2).eval()
    user = resolve_loss(str(REPO / "sample_configs" / "losses.py") + ":sq_loss")
    with torch.no_grad():
        mine, ref = user.fn(model, batch), squared_error(model, batch)
    assert check_output(user, mine, 89) == ["abs_err"]
    for k in ("loss", "abs_err"):
        torch.testing.assert_close(mine[k], ref[k])


@pytest.fixture
def small_recipes(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """The two recipes shortened to seconds, cached in a folder of their own."""
    monkeypatch.setenv("TUI_LANDSCAPE_CACHE", str(tmp_path))
    monkeypatch.setitem(
        recipes.RECIPE_DATA, "charlm", lambda: charlm_datasets(max_train=64, max_test=32)
    )
    for name, epochs in (("charlm", 4), ("diabetes_mlp", 5)):
        r = recipes.RECIPES[name]
        monkeypatch.setitem(
            recipes.RECIPES, name, replace(r, train=replace(r.train, epochs=epochs))
        )


@pytest.mark.parametrize("name", ["charlm", "diabetes_mlp"])
def test_recipes_train_cache_and_lower_the_test_loss(small_recipes, name):
    r = recipes.RECIPES[name]
    path = recipes.recipe_checkpoint(f"recipe:{name}")
    assert path.is_file() and recipes.recipe_checkpoint(f"recipe:{name}") == path
    data, loss = recipes.RECIPE_DATA[r.data](), resolve_loss(r.loss).fn
    start = build_model(r.arch, r.kwargs, seed=r.train.seed)
    trained = build_model(r.arch, r.kwargs, seed=99)
    load_checkpoint(trained, path)
    before = dataset_metrics(start, data["test"], loss)["loss"]
    after = dataset_metrics(trained, data["test"], loss)["loss"]
    assert after < before - 0.1, (before, after)


def test_a_recipe_trains_deterministically(small_recipes):
    a, _ = recipes.train_recipe(recipes.RECIPES["diabetes_mlp"])
    b, _ = recipes.train_recipe(recipes.RECIPES["diabetes_mlp"])
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    assert all(torch.equal(p, q) for p, q in pairs)


def test_the_digits_recipes_keep_their_cache_names():
    """The fields added for these cases (data, loss) enter the key only when set."""
    r = recipes.RECIPES["digits_cnn"]
    before = {k: v for k, v in asdict(r).items() if k not in ("data", "loss")}
    blob = json.dumps({"recipe": before, "torch": torch.__version__}, sort_keys=True)
    assert recipes._key(r) == hashlib.sha256(blob.encode()).hexdigest()[:12]
    assert recipes._key(recipes.RECIPES["charlm"]) != recipes._key(
        replace(recipes.RECIPES["charlm"], data="digits", loss="crossentropy")
    )
