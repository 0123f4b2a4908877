"""Hessian-vector products and extreme eigenvalues against the full Hessian of tiny models."""

from __future__ import annotations

import itertools
import logging
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, hessian

import engine.hessian as hess
from engine.data import Split, digits_splits
from engine.directions import DirectionSet, Perturbation, random_direction, targets
from engine.errors import ConfigError
from engine.hessian import (
    MeanLossHVP,
    eigenvector_directions,
    extreme_eigenvalues,
    hessian_params,
    hutchinson_trace,
    snake_order,
)
from tests.conftest import REPO, run_script

TOL = 1e-3


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Products of tiny models are all overhead; on a busy 2-core machine one thread was 30x faster.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def split() -> Split:
    s = digits_splits()["train"]
    return Split(s.x[:48], s.y[:48])


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10)).eval()


def cnn() -> nn.Module:
    torch.manual_seed(1)
    m = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),
    )
    with torch.no_grad():  # BN statistics unlike a batch's, so eval mode is visible
        m[1].running_mean.uniform_(-1, 1)
        m[1].running_var.uniform_(0.5, 2)
        m[1].weight.uniform_(0.5, 1.5)
    return m.eval()


def full_hessian(model: nn.Module, split: Split, names: list[str], loss: str = "crossentropy"):
    """Hessian of the mean loss over ``names``, flattened, from torch.func.hessian."""
    live = dict(model.named_parameters())
    shapes = [live[k].shape for k in names]
    sizes = [live[k].numel() for k in names]
    fixed = {k: p.detach() for k, p in live.items() if k not in names}

    def f(flat: torch.Tensor) -> torch.Tensor:
        ps = {k: t.view(s) for k, t, s in zip(names, flat.split(sizes), shapes, strict=True)}
        logits = functional_call(model, {**ps, **fixed}, (split.x,))
        if loss == "crossentropy":
            return F.cross_entropy(logits, split.y)
        onehot = F.one_hot(split.y, 10).to(logits.dtype)
        return (logits.softmax(-1) - onehot).pow(2).mean()

    flat = torch.cat([live[k].detach().reshape(-1) for k in names])
    h = hessian(f)(flat).detach().double().numpy()
    return (h + h.T) / 2


def as64(model: nn.Module, split: Split) -> tuple[nn.Module, Split]:
    return model.double(), Split(split.x.double(), split.y)


def perturbation(model: nn.Module) -> Perturbation:
    g = torch.Generator().manual_seed(3)
    x = random_direction(model, "weights", "filter", "biasbn", g)
    y = random_direction(model, "weights", "filter", "biasbn", g)
    return Perturbation(model, DirectionSet(x, y, "weights"))


def test_hessian_params():
    m = cnn()
    assert hessian_params(m) == ["0.weight", "5.weight"]
    assert hessian_params(m, "all") == [n for n, _ in m.named_parameters()]
    with pytest.raises(ConfigError, match="'2d' or 'all'"):
        hessian_params(m, "1d")


@pytest.mark.parametrize(
    ("make", "which", "loss"),
    [(mlp, "2d", "crossentropy"), (mlp, "all", "mse"), (cnn, "2d", "crossentropy")],
)
def test_hvp_is_the_full_hessian_product(split, make, which, loss):
    model, data = as64(make(), split)
    names = hessian_params(model, which)
    hvp = MeanLossHVP(model, data, batch_size=len(data), loss=loss, params=names)
    h = full_hessian(model, data, names, loss)
    assert hvp.n == h.shape[0]
    v = np.random.default_rng(0).standard_normal(hvp.n)
    out = hvp(v)
    assert out.dtype == np.float64 and out.shape == (hvp.n,)
    np.testing.assert_allclose(out, h @ v, rtol=1e-9, atol=1e-11)
    assert hvp.products == 1


def test_hvp_is_a_central_difference_of_the_gradient(split):
    # The tanh MLP: smooth, where ReLU kinks would put jumps into the difference.
    model, data = as64(mlp(), split)
    hvp = MeanLossHVP(model, data, batch_size=len(data))
    live = dict(model.named_parameters())
    v = np.random.default_rng(1).standard_normal(hvp.n)
    vt = hvp.unflatten(torch.from_numpy(v))

    def gradient(eps: float) -> np.ndarray:
        with torch.no_grad():
            for k in hvp.names:
                live[k].add_(eps * vt[k])
        model.zero_grad()
        F.cross_entropy(model(data.x), data.y).backward()
        g = torch.cat([live[k].grad.reshape(-1) for k in hvp.names]).numpy().copy()
        with torch.no_grad():
            for k in hvp.names:
                live[k].sub_(eps * vt[k])
        return g

    eps = 1e-5
    fd = (gradient(eps) - gradient(-eps)) / (2 * eps)
    np.testing.assert_allclose(hvp(v), fd, rtol=1e-6, atol=1e-8)


def test_batches_give_the_mean_not_the_sum(split):
    model, data = as64(cnn(), split)
    v = np.random.default_rng(2).standard_normal(MeanLossHVP(model, data, 48).n)
    whole = MeanLossHVP(model, data, batch_size=len(data))(v)
    for bs in (7, 16):  # uneven and even batches
        np.testing.assert_allclose(MeanLossHVP(model, data, batch_size=bs)(v), whole, rtol=1e-10)


def test_hvp_follows_weights_moved_in_place(split):
    model, data = as64(mlp(), split)
    hvp = MeanLossHVP(model, data, batch_size=16)
    pert = perturbation(model)
    v = np.random.default_rng(3).standard_normal(hvp.n)
    at0 = hvp(v)
    pert.set(0.5, -0.3)
    moved = hvp(v)
    np.testing.assert_allclose(moved, full_hessian(model, data, hvp.names) @ v, rtol=1e-9)
    assert not np.allclose(moved, at0)
    pert.reset()
    np.testing.assert_allclose(hvp(v), at0, rtol=1e-12)


def test_forward_and_reverse_modes_agree(split):
    model = cnn()
    v = np.random.default_rng(4).standard_normal(MeanLossHVP(model, split, 48).n)
    fwd = MeanLossHVP(model, split, batch_size=20, mode="fwd")(v)
    rev = MeanLossHVP(model, split, batch_size=20, mode="rev")(v)
    np.testing.assert_allclose(fwd, rev, rtol=1e-4, atol=1e-6 * np.abs(rev).max())


def test_auto_falls_back_to_reverse_once(split, monkeypatch, caplog):
    model = mlp()
    v = np.random.default_rng(5).standard_normal(MeanLossHVP(model, split, 48).n)
    rev = MeanLossHVP(model, split, 48, mode="rev")(v)
    calls = []

    def no_forward_ad(*a, **k):
        calls.append(1)
        raise NotImplementedError("Trying to use forward AD with some_op that does not support it")

    monkeypatch.setattr(hess, "jvp", no_forward_ad)
    hvp = MeanLossHVP(model, split, batch_size=16, mode="auto")
    with caplog.at_level(logging.WARNING, logger="engine.hessian"):
        out = hvp(v)
        hvp(v)
    assert hvp.mode == "rev" and len(calls) == 1
    assert caplog.text.count("using reverse-over-reverse") == 1
    np.testing.assert_allclose(out, rev, rtol=1e-5, atol=1e-7)
    with pytest.raises(NotImplementedError):
        MeanLossHVP(model, split, 16, mode="fwd")(v)


def test_bad_arguments(split):
    m = mlp()
    with pytest.raises(ConfigError, match="'auto', 'fwd' or 'rev'"):
        MeanLossHVP(m, split, 16, mode="both")
    with pytest.raises(ConfigError, match="nope"):
        MeanLossHVP(m, split, 16, params=["nope"])
    with pytest.raises(ConfigError, match="'warm' or 'cold'"):
        extreme_eigenvalues(MeanLossHVP(m, split, 16), method="hot")
    with pytest.raises(ValueError, match="length"):
        MeanLossHVP(m, split, 16)(np.zeros(3))


def close(got: float, want: float, radius: float, tol: float = TOL) -> bool:
    return abs(got - want) <= tol * radius


@pytest.mark.parametrize("make", [mlp, cnn])
def test_extremes_match_eigvalsh_at_several_points(split, make):
    model = make()
    hvp = MeanLossHVP(model, split, batch_size=20)
    pert = perturbation(model)
    prev = None
    for a, b in [(0.0, 0.0), (0.25, 0.0), (-0.5, 0.75)]:
        pert.set(a, b)
        ev = np.linalg.eigvalsh(full_hessian(model, split, hvp.names))
        radius = max(abs(ev[0]), abs(ev[-1]))
        for method in ("warm", "cold"):
            ex = extreme_eigenvalues(hvp, TOL, start=prev, seed=1, method=method)
            assert close(ex.lmax, ev[-1], radius), (method, a, b, ex.lmax, ev[-1])
            assert close(ex.lmin, ev[0], radius), (method, a, b, ex.lmin, ev[0])
            assert ex.products > 0
            assert np.linalg.norm(ex.vmax) == pytest.approx(1.0)
            if method == "warm":
                prev = ex
        assert ev[0] < 0 < ev[-1]  # both ends are tested, not one end twice


def test_warm_starts_need_fewer_products_on_a_snake_grid(split):
    model = cnn()
    hvp = MeanLossHVP(model, split, batch_size=48)
    pert = perturbation(model)
    coords = np.linspace(-0.3, 0.3, 4)
    warm = cold = 0
    prev = None
    for k in snake_order(4, 4):
        i, j = divmod(k, 4)
        pert.set(coords[j], coords[i])
        w = extreme_eigenvalues(hvp, TOL, start=prev, seed=k)
        c = extreme_eigenvalues(hvp, TOL, seed=k, method="cold")
        prev = w
        radius = max(abs(c.lmax), abs(c.lmin))
        assert close(w.lmax, c.lmax, radius, 2 * TOL) and close(w.lmin, c.lmin, radius, 2 * TOL)
        warm, cold = warm + w.products, cold + c.products
    assert warm <= 0.6 * cold, (warm, cold)


def test_a_warm_start_at_the_same_point_is_cheap(split):
    hvp = MeanLossHVP(mlp(), split, batch_size=48)
    first = extreme_eigenvalues(hvp, TOL)
    again = extreme_eigenvalues(hvp, TOL, start=first, seed=1)
    assert again.products < first.products
    assert again.lmax == pytest.approx(first.lmax, rel=TOL)


def test_snake_order_is_a_path_of_neighbours():
    for nx, ny in [(5, 4), (4, 5), (1, 3), (3, 1), (11, 11)]:
        order = snake_order(nx, ny)
        assert sorted(order) == list(range(nx * ny))
        for p, q in itertools.pairwise(order):
            (i, j), (k, m) = divmod(p, nx), divmod(q, nx)
            assert abs(i - k) + abs(j - m) == 1, (nx, ny, p, q)
    assert snake_order(3, 2) == [0, 1, 2, 5, 4, 3]
    assert snake_order(4, 1) == [0, 1, 2, 3]  # 1D


def test_hutchinson_trace_within_three_standard_errors(split):
    model = mlp()
    hvp = MeanLossHVP(model, split, batch_size=48)
    h = full_hessian(model, split, hvp.names)
    exact = np.trace(h)
    est, se = hutchinson_trace(hvp, samples=60, seed=0)
    assert hvp.products == 60
    assert abs(est - exact) <= 3 * se, (est, exact, se)
    # Rademacher probes: the variance of z'Hz is 2 * (sum of squared off-diagonal entries).
    expected_se = np.sqrt(2 * (np.sum(h**2) - np.sum(np.diag(h) ** 2)) / 60)
    assert 0.5 * expected_se < se < 2 * expected_se


@pytest.mark.parametrize("dir_type", ["weights", "states"])
def test_eigenvector_directions(split, dir_type):
    model = cnn()
    hvp = MeanLossHVP(model, split, batch_size=48)
    _, vecs = np.linalg.eigh(full_hessian(model, split, hvp.names))
    ex = extreme_eigenvalues(hvp, tol=1e-7)
    named = targets(model, dir_type)
    for pair, want in (
        ("max_min", (vecs[:, -1], vecs[:, 0])),
        ("top2", (vecs[:, -1], vecs[:, -2])),
    ):
        x, y = eigenvector_directions(model, hvp, ex, dir_type, pair, tol=1e-7)
        DirectionSet(x, y, dir_type).check_fits(model, "test")  # type: ignore[arg-type]
        for d, w in ((x, want[0]), (y, want[1])):
            assert [t.shape for t in d] == [t.shape for _, t in named]
            assert all(t.dtype == torch.float32 for t in d)
            total = torch.sqrt(sum(t.double().pow(2).sum() for t in d))
            assert total.item() == pytest.approx(1.0, abs=1e-6)
            parts = dict(zip([n for n, _ in named], d, strict=True))
            for name, _ in named:
                if name not in hvp.names:
                    assert torch.count_nonzero(parts[name]) == 0, name
            flat = torch.cat([parts[k].reshape(-1) for k in hvp.names]).double().numpy()
            assert min(np.abs(flat - w).max(), np.abs(flat + w).max()) < 1e-4, pair


def test_benchmark_tiny_runs():
    bench = REPO / "benchmarks" / "bench_hessian.py"
    out = run_script(bench, "--tiny", "--threads", "1", "--methods", "ab")
    for m in ("(a) warm, snake order", "(b) cold (reference)"):
        row = re.search(rf"^{re.escape(m)} +([0-9]+) +([0-9.]+)", out, re.M)
        assert row and int(row[1]) > 0, out  # products counted
    assert re.search(r"^products \(a\) / \(b\): [0-9.]+", out, re.M), out
    assert "max |(a) - (b)|: lmax " in out, out
