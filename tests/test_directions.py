from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
import torch

from engine.directions import (
    DirectionSet,
    Perturbation,
    interpolation_direction,
    random_direction,
    targets,
)
from engine.errors import LandscapeError
from engine.formats import direction_hash, load_directions, save_directions
from engine.models import build_model


def _model(seed: int = 0):
    m = build_model("digits_cnn", seed=seed)
    with torch.no_grad():  # non-trivial BN statistics, as after training
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 2)
    return m.eval()


def _draw(model, dir_type="weights", norm="filter", ignore="biasbn", seed=0):
    return random_direction(model, dir_type, norm, ignore, torch.Generator().manual_seed(seed))


def test_filter_norms_equal_weight_norms():
    m = _model()
    d = _draw(m)
    for (name, w), t in zip(targets(m, "weights"), d, strict=True):
        if w.dim() > 1:
            np.testing.assert_allclose(
                t.flatten(1).norm(dim=1), w.flatten(1).norm(dim=1), rtol=1e-5, err_msg=name
            )


def test_biasbn_is_zero_and_none_copies_weights():
    m = _model()
    for (name, w), t in zip(targets(m, "weights"), _draw(m), strict=True):
        if w.dim() <= 1:
            assert torch.count_nonzero(t) == 0, name
    for (name, w), t in zip(targets(m, "weights"), _draw(m, ignore="none"), strict=True):
        if w.dim() <= 1:
            torch.testing.assert_close(t, w, msg=name)


def test_layer_and_weight_norms():
    m = _model()
    for (_, w), t in zip(targets(m, "weights"), _draw(m, norm="layer"), strict=True):
        if w.dim() > 1:
            assert t.norm().item() == pytest.approx(w.norm().item(), rel=1e-5)
    raw = _draw(m, norm="none")
    for (_, w), t, r in zip(targets(m, "weights"), _draw(m, norm="weight"), raw, strict=True):
        if w.dim() > 1:
            torch.testing.assert_close(t, r * w)


def test_seeded_and_independent_of_options():
    m = _model()
    a, b = _draw(m, seed=3), _draw(m, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    c = _draw(m, seed=4)
    assert not torch.equal(a[0], c[0])
    # The random stream does not depend on the ignore option: 2+-dim tensors are equal.
    d = _draw(m, seed=3, ignore="none")
    assert all(torch.equal(x, y) for x, y in zip(a, d, strict=True) if x.dim() > 1)


def test_states_move_bn_statistics_and_weights_do_not():
    m = _model()
    ds_w = DirectionSet(_draw(m, "weights"), None, "weights")
    ds_s = DirectionSet(_draw(m, "states", ignore="none"), None, "states")
    bn = m.features[1]
    mean0 = bn.running_mean.clone()
    p = Perturbation(m, ds_w)
    p.set(0.5)
    torch.testing.assert_close(bn.running_mean, mean0)
    p.reset()
    p = Perturbation(m, ds_s)
    p.set(0.5)
    assert not torch.allclose(bn.running_mean, mean0)
    assert bn.num_batches_tracked.dtype == torch.long  # counters never move
    p.reset()
    torch.testing.assert_close(bn.running_mean, mean0)


def test_perturbation_sets_base_plus_directions():
    m = _model()
    g = torch.Generator().manual_seed(0)
    dx = random_direction(m, "weights", "filter", "biasbn", g)
    dy = random_direction(m, "weights", "filter", "biasbn", g)
    base = [w.clone() for _, w in targets(m, "weights")]
    p = Perturbation(m, DirectionSet(dx, dy, "weights"))
    p.set(0.3, -0.7)
    for (_, w), w0, a, b in zip(targets(m, "weights"), base, dx, dy, strict=True):
        torch.testing.assert_close(w, w0 + 0.3 * a - 0.7 * b)
    p.reset()
    for (_, w), w0 in zip(targets(m, "weights"), base, strict=True):
        torch.testing.assert_close(w, w0)


def test_interpolation_reaches_the_other_model():
    a, b = _model(0), _model(1)
    for t in ("weights", "states"):
        d = interpolation_direction(a, b, t)
        p = Perturbation(a, DirectionSet(d, None, t))
        p.set(1.0)
        for (name, x), (_, y) in zip(targets(a, t), targets(b, t), strict=True):
            if torch.is_floating_point(x):
                torch.testing.assert_close(x, y, msg=name)
        p.reset()


def test_direction_file_round_trip_in_reference_layout(tmp_path):
    m = _model()
    g = torch.Generator().manual_seed(0)
    ds = DirectionSet(
        random_direction(m, "states", "filter", "biasbn", g),
        random_direction(m, "states", "filter", "biasbn", g),
        "states",
    )
    path = tmp_path / "d.h5"
    save_directions(path, ds)
    with h5py.File(path) as f:
        assert set(f) == {"xdirection", "ydirection"}
        assert sorted(f["xdirection"], key=int) == [str(k) for k in range(len(m.state_dict()))]
        for k, (_, t) in enumerate(m.state_dict().items()):
            assert f["xdirection"][str(k)].shape == tuple(t.shape)
            assert f["xdirection"][str(k)].dtype == np.float32
    back = load_directions(path)
    assert back.dir_type == "states"
    assert direction_hash(back.x, back.y) == direction_hash(ds.x, ds.y)
    back.check_fits(m, str(path))


def test_misfit_names_the_first_tensor(tmp_path):
    m = _model()
    other = build_model("digits_cnn", {"width": 4})
    ds = DirectionSet(_draw(other), None, "weights")
    with pytest.raises(
        LandscapeError, match=r"xdirection/0 has shape \(4, 1, 3, 3\).*'features.0.weight'"
    ):
        ds.check_fits(m, "d.h5")
    mlp = build_model("digits_mlp")
    with pytest.raises(LandscapeError, match="tensors, the model has"):
        DirectionSet(_draw(mlp), None, "weights").check_fits(m, "d.h5")


def test_perturbation_keeps_identity_and_channels_last_strides():
    m = _model().to(memory_format=torch.channels_last)
    ref = copy.deepcopy(m)
    params = dict(m.named_parameters())
    strides = {n: p.stride() for n, p in params.items()}
    ds = DirectionSet(_draw(m), _draw(m, seed=1), "weights")
    x = torch.randn(4, 1, 8, 8).contiguous(memory_format=torch.channels_last)
    p = Perturbation(m, ds)
    assert dict(m.named_parameters()) == params  # the same Parameter objects
    assert {n: t.stride() for n, t in m.named_parameters()} == strides
    p.set(0.4, -0.2)
    with torch.no_grad():
        moved = m(x)
    # A copy moved with plain per-tensor arithmetic gives the same output.
    with torch.no_grad():
        for t, dx, dy in zip(ref.parameters(), ds.x, ds.y, strict=True):
            t.add_(0.4 * dx).add_(-0.2 * dy)
        torch.testing.assert_close(moved, ref(x))


def test_perturbation_refuses_a_model_whose_tensors_were_replaced():
    m = _model()
    p = Perturbation(m, DirectionSet(_draw(m), None, "weights"))
    m.to(torch.float64)  # re-binds every parameter: the buffer no longer backs the model
    with pytest.raises(RuntimeError, match="replaced after the perturbation"):
        p.set(0.5)


def test_tied_state_entries_move_by_the_sum_of_their_directions():
    """The reference's set_states adds every state_dict entry's direction to one tensor."""
    lin = torch.nn.Linear(3, 3)
    m = torch.nn.Sequential(lin, torch.nn.ReLU(), lin)  # '0.weight' and '2.weight' are one
    d = _draw(m, "states", ignore="none")
    w0, b0 = lin.weight.detach().clone(), lin.bias.detach().clone()
    p = Perturbation(m, DirectionSet(d, None, "states"))
    p.set(0.5)
    torch.testing.assert_close(lin.weight.detach(), w0 + 0.5 * (d[0] + d[2]))
    torch.testing.assert_close(lin.bias.detach(), b0 + 0.5 * (d[1] + d[3]))
    stacked = p.stacked(torch.tensor([0.5]), torch.tensor([0.0]))
    torch.testing.assert_close(stacked["2.weight"][0], lin.weight.detach())


def test_moves_are_seen_by_autograd_and_slots_are_aligned():
    m = _model()
    p = Perturbation(m, DirectionSet(_draw(m), _draw(m, seed=1), "weights"))
    w = m.features[0].weight
    before = w._version
    p.set(0.1, 0.2)
    assert w._version > before  # a graph built before the move would refuse to backpropagate
    base = min(t.data_ptr() for t in m.parameters())
    assert all((t.data_ptr() - base) % 256 == 0 for t in m.parameters())
