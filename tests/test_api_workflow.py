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


# --- interpolation and directions from Python ------------------------------------------------


class _Net(nn.Module):
    """A small BN net: interpolation must move its running statistics too."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def _trained(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    m = _Net()
    x, y = _data(64)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    return m.eval()


def _snapshot(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


def _plain_loss(m: nn.Module, data) -> float:
    x, y = data
    with torch.no_grad():
        return nn.functional.cross_entropy(m(x), y).item()


def test_interpolate_matches_a_plain_loop_and_leaves_both_models_bit_identical() -> None:
    a, b, data = _trained(0), _trained(1), _data(32)
    sa, sb = _snapshot(a), _snapshot(b)
    surf = tl.interpolate(a, b, data, x=(-0.5, 1.5, 5), progress=False)
    for k, v in _snapshot(a).items():
        assert torch.equal(v, sa[k]), k
    for k, v in _snapshot(b).items():
        assert torch.equal(v, sb[k]), k
    assert not a.training and not b.training
    # The reference: every float tensor of the state dict (BN statistics too) on the line.
    for alpha, got in zip(surf.x, surf["train_loss"], strict=True):
        m = _Net().eval()
        m.load_state_dict(
            {
                k: sa[k] + float(alpha) * (sb[k] - sa[k]) if sa[k].is_floating_point() else sa[k]
                for k in sa
            }
        )
        assert got == pytest.approx(_plain_loss(m, data), rel=1e-5, abs=1e-6)
    assert surf["train_loss"][1] == pytest.approx(_plain_loss(a, data), rel=1e-6)  # a = 0
    assert surf["train_loss"][3] == pytest.approx(_plain_loss(b, data), rel=1e-5)  # a = 1
    assert 'kind = "interpolate"' in surf.config and "python:" in surf.config


def test_interpolate_refuses_two_architectures() -> None:
    with pytest.raises(LandscapeError, match="two models of one architecture"):
        tl.interpolate(_trained(0), nn.Linear(4, 2), _data(), progress=False)


def test_directions_as_state_dicts_and_tensor_lists_are_used_as_given() -> None:
    m, data = _model(), _data()
    dx = {k: torch.ones_like(v) for k, v in m.named_parameters()}
    dy = [torch.full_like(p, -0.5) for p in m.parameters()]
    surf = tl.compute(m, data, x=(-1, 1, 3), y=(-1, 1, 3), directions=(dx, dy), progress=False)
    base = _snapshot(m)
    for i, b in enumerate(surf.y):
        for j, a in enumerate(surf.x):
            moved = nn.Linear(4, 2)
            moved.load_state_dict({k: base[k] + a * 1.0 + b * -0.5 for k in base})
            assert surf["train_loss"][i, j] == pytest.approx(_plain_loss(moved, data), rel=1e-5)
    one = tl.compute(m, data, x=(-1, 1, 3), directions=list(dx.values()), progress=False)
    np.testing.assert_allclose(one["train_loss"], surf["train_loss"][1], rtol=1e-6)


def test_directions_from_a_file_resume_and_misfits() -> None:
    m, data = _model(), _data()
    with pytest.raises(ConfigError, match="two directions"):
        tl.compute(m, data, x=(-1, 1, 3), y=(-1, 1, 3), directions=[torch.ones(2, 4)])
    with pytest.raises(LandscapeError, match="does not fit the model"):
        tl.compute(m, data, x=(-1, 1, 3), directions=[torch.ones(3, 3), torch.ones(2)])
    with pytest.raises(ConfigError, match="state dict does not fit"):
        tl.compute(m, data, x=(-1, 1, 3), directions={"weight": torch.ones(2, 4)})
    with pytest.raises(ConfigError, match="decided by the function's arguments"):
        tl.compute(m, data, directions=[torch.ones(2, 4), torch.ones(2)],
                   config={"directions.kind": "file"})  # fmt: skip


def test_given_directions_resume_from_the_file(tmp_path) -> None:
    m, data = _model(), _data()
    d = [torch.ones(2, 4), torch.zeros(2)]
    out = tmp_path / "s.h5"
    a = tl.compute(m, data, x=(-1, 1, 5), directions=d, out=out, progress=False)
    b = tl.compute(m, data, x=(-1, 1, 5), directions=d, out=out, progress=False)  # resumes
    np.testing.assert_array_equal(a["train_loss"], b["train_loss"])
    c = tl.compute(m, data, x=(-1, 1, 5), directions=str(tmp_path / "s.directions.h5"),
                   progress=False)  # fmt: skip
    np.testing.assert_allclose(c["train_loss"], a["train_loss"], rtol=1e-6)


# --- a result draws itself ---------------------------------------------------------------


def test_a_result_plots_as_the_export_does_and_shows_itself_in_jupyter(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from tui_landscape.plots.export import spec_figure
    from tui_landscape.plots.spec import resolve

    m, data = _model(), _data()
    surf = tl.compute(m, data, x=(-1, 1, 7), y=(-1, 1, 5), out=tmp_path / "s.h5", progress=False)
    fig = surf.plot(kind="filled")
    ax = fig.axes[0]
    assert ax.get_title() == "s.h5: train_loss"
    want = spec_figure(resolve(surf.source, "train_loss", "filled", figure=True))
    # Same levels as the export: the filled contour sets of both figures match.
    got_levels = [c.levels for c in ax.collections if hasattr(c, "levels")]
    want_levels = [c.levels for c in want.axes[0].collections if hasattr(c, "levels")]
    assert got_levels and all(
        np.allclose(a, b) for a, b in zip(got_levels, want_levels, strict=True)
    )
    curve = tl.compute(m, data, x=(-1, 1, 7), progress=False).plot()
    (line, *_) = curve.axes[0].get_lines()
    np.testing.assert_allclose(line.get_xdata(), np.linspace(-1, 1, 7))
    page = surf._repr_html_()
    assert "<table>" in page and "7 x 5" in page and 'src="data:image/png;base64,' in page
    assert "grid: 7 x 5" in str(surf)
    with pytest.raises(ConfigError, match="no surface 'nope'"):
        surf.plot(name="nope")
