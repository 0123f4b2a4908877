"""The Python API's workflow items (issue 26): ranges as tuples, a user's exception chained
with its traceback, dict batches with a built-in loss, torch's jit warning filtered for the
call only, and no stray names on ``tui_landscape``."""

from __future__ import annotations

import traceback
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import tui_landscape as tl
from engine.errors import ConfigError, LandscapeError


def _data(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 4, generator=g), torch.randint(0, 2, (n,), generator=g)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(4, 2)


def test_a_range_tuple_gives_the_surface_of_its_string() -> None:
    m, data = _model(), _data()
    a = tl.compute(m, data, x=(-1, 1, 5), y=(-0.5, 0.5, 3), progress=False)
    b = tl.compute(m, data, x="-1:1:5", y="-0.5:0.5:3", progress=False)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a["train_loss"], b["train_loss"])


@pytest.mark.parametrize("bad", [(-1, 1), (-1, 1, 2.5), ("a", 1, 3), (-1, 1, True), 5])
def test_a_bad_range_tuple_is_refused_naming_the_argument(bad) -> None:
    with pytest.raises(ConfigError, match=r"`x` to be 'min:max:num' or \(min, max, num\)"):
        tl.compute(_model(), _data(), x=bad, progress=False)


def _fails_off_centre(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    x, y = batch
    if model.weight.abs().sum() > 100:  # only away from the weights: the centre's probe passes
        raise ZeroDivisionError("boom in the user's loss")
    return {"loss": nn.functional.cross_entropy(model(x), y, reduction="none")}


def test_an_exception_in_a_users_loss_at_a_point_is_chained_with_its_traceback() -> None:
    m = _model()
    with torch.no_grad():
        m.weight.fill_(1.0)  # |w| sums to 8 at the centre; filter-normalized steps of 100x go past
    with pytest.raises(LandscapeError, match="boom in the user's loss") as info:
        tl.compute(m, _data(), loss=_fails_off_centre, x=(-100, 100, 3), progress=False)
    cause = info.value.__cause__
    assert isinstance(cause, ZeroDivisionError)
    frames = traceback.extract_tb(cause.__traceback__)
    assert any(f.name == "_fails_off_centre" and f.filename == __file__ for f in frames)


class _Dicts(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": torch.full((4,), float(i)), "y": torch.tensor(i % 2)}


def test_dict_batches_with_a_builtin_loss_get_a_clear_line() -> None:
    with pytest.raises(LandscapeError) as info:
        tl.compute(_model(), DataLoader(_Dicts(), batch_size=4), x=(-1, 1, 3), progress=False)
    text = str(info.value)
    assert "dict batches (keys: x, y)" in text and "'crossentropy'" in text
    assert "fn(model, batch)" in text and "KeyError" not in text


def _warns(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    warnings.warn("`torch.jit.script` is deprecated", FutureWarning, stacklevel=1)
    warnings.warn("the user's own warning", UserWarning, stacklevel=1)
    x, y = batch
    return {"loss": nn.functional.cross_entropy(model(x), y, reduction="none")}


def test_the_jit_warning_is_filtered_for_the_call_only() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        tl.compute(_model(), _data(), loss=_warns, x=(-1, 1, 3), progress=False)
        after = len(seen)
        warnings.warn("`torch.jit.script` after the call", FutureWarning, stacklevel=1)
    texts = [str(w.message) for w in seen]
    assert not any("jit.script` is deprecated" in t for t in texts)
    assert "the user's own warning" in texts[:after]
    assert texts[-1] == "`torch.jit.script` after the call"  # the caller's filters untouched


def test_the_package_exports_only_its_api() -> None:
    assert not hasattr(tl, "Any")
    assert "Any" not in dir(tl)
    assert {"compute", "hessian", "trajectory"} <= set(dir(tl))
