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
from engine.data import digits_splits
from engine.directions import DirectionSet, Perturbation, random_direction, targets
from engine.errors import ConfigError, LandscapeError
from engine.hessian import (
    MeanLossHVP,
    accepted,
    eigenvector_directions,
    extreme_eigenvalues,
    hessian_params,
    snake_order,
)
from engine.spectrum import center_spectrum, hutchinson_trace
from engine.splits import Split
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


def test_auto_takes_a_mode_that_works_once(split, monkeypatch, caplog):
    model = mlp()
    v = np.random.default_rng(5).standard_normal(MeanLossHVP(model, split, 48).n)
    rev = MeanLossHVP(model, split, 48, mode="rev")(v)
    calls = []

    def no_forward_ad(*a, **k):
        calls.append(1)
        raise NotImplementedError("Trying to use forward AD with some_op that does not support it")

    monkeypatch.setattr(hess, "jvp", no_forward_ad)
    hvp = MeanLossHVP(model, split, batch_size=16, mode="auto")
    with caplog.at_level(logging.INFO, logger="engine.hessian"):
        out = hvp(v)
        hvp(v)
    # Chosen on the first batch, for good, among the reverse modes: forward-over-reverse is
    # not even tried where a reverse mode works.
    assert hvp.mode in ("rev", "rev-math") and calls == []
    assert caplog.text.count("HVP mode:") == 1
    np.testing.assert_allclose(out, rev, rtol=1e-5, atol=1e-7)
    with pytest.raises(NotImplementedError):
        MeanLossHVP(model, split, 16, mode="fwd")(v)


def test_auto_falls_back_to_forward_over_reverse_where_no_reverse_mode_works(
    split, monkeypatch, caplog
):
    model = mlp()
    v = np.random.default_rng(5).standard_normal(MeanLossHVP(model, split, 48).n)
    fwd = MeanLossHVP(model, split, 48, mode="fwd", reuse=False)(v)

    def no_double_backward(*a, **k):
        raise RuntimeError("derivative for aten::some_op_backward is not implemented")

    monkeypatch.setattr(hess, "vjp", no_double_backward)
    monkeypatch.setattr(hess, "gradient_graph", no_double_backward)
    hvp = MeanLossHVP(model, split, batch_size=16, mode="auto")
    with caplog.at_level(logging.INFO, logger="engine.hessian"):
        out = hvp(v)
    assert hvp.mode in ("fwd", "fwd-math") and "rev failed: RuntimeError" in caplog.text
    np.testing.assert_allclose(out, fwd, rtol=1e-5, atol=1e-7)


def test_bad_arguments(split):
    m = mlp()
    with pytest.raises(ConfigError, match="'auto' or one of 'fwd', 'fwd-math'"):
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
            # The profile of each end: where its residual first passed, or each ARPACK run's
            # products (plus the two residual products).
            if method == "warm":
                assert 0 < ex.passed_max <= ex.products and 0 < ex.passed_min <= ex.products
                prev = ex
            else:
                assert ex.passed_max > 0 and ex.passed_min > 0
                assert ex.passed_max + ex.passed_min + 2 == ex.products
        assert ev[0] < 0 < ev[-1]  # both ends are tested, not one end twice
    assert hvp.seconds > 0  # the time inside products, the solver's overhead being the rest


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


# ---------------------------------------------------------------------------------------------
# accuracy you can see: each eigenvalue against itself, residuals, convergence


def trained_at_a_minimum(split: Split, l2: float) -> nn.Module:
    """A 310-parameter tanh MLP at a minimum of its mean loss + l2/2 ||w||^2 (float64, LBFGS):
    l2 = 0.1 puts lambda_min near 1% of lambda_max, with 300 eigenvalues in between."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.Tanh(), nn.Linear(4, 10)).double()
    opt = torch.optim.LBFGS(
        m.parameters(), max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
        history_size=50, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(m(split.x), split.y)
        loss = loss + 0.5 * l2 * sum(p.pow(2).sum() for p in m.parameters())
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    return m.eval()


@pytest.mark.parametrize("l2", [0.1, 0.01])
def test_lambda_min_within_one_percent_of_itself_at_a_minimum(l2):
    s = digits_splits()["train"]
    data = Split(s.x[:64].double(), s.y[:64])
    model = trained_at_a_minimum(data, l2)
    names = hessian_params(model, "all")
    hvp = MeanLossHVP(model, data, batch_size=64, params=names, l2=l2)
    ev = np.linalg.eigvalsh(full_hessian(model, data, names) + l2 * np.eye(hvp.n))
    ratio = ev[0] / ev[-1]
    assert ratio > 0 and (0.005 < ratio < 0.02 if l2 == 0.1 else 1e-3 <= ratio < 5e-3), ratio
    ex = extreme_eigenvalues(hvp)  # the default tolerance
    assert ex.converged
    assert abs(ex.lmin - ev[0]) <= 0.01 * abs(ev[0]), (ex.lmin, ev[0])
    assert abs(ex.lmax - ev[-1]) <= 1e-3 * ev[-1]
    # The residuals are the returned vectors' ||Hv - lambda v||, and they pass the test.
    for lam, v, r in ((ex.lmax, ex.vmax, ex.rmax), (ex.lmin, ex.vmin, ex.rmin)):
        explicit = np.linalg.norm(hvp(v) - lam * v)
        assert r == pytest.approx(explicit, rel=1e-3, abs=1e-9 * ev[-1])
        assert accepted(lam, r, ev[-1], hess.DEFAULT_TOL)


def test_the_tolerance_is_relative_to_each_eigenvalue_with_a_floor():
    assert accepted(0.5, 4e-4, radius=10.0, tol=1e-3)  # 4e-4 <= 1e-3 * 0.5
    assert not accepted(0.5, 6e-4, radius=10.0, tol=1e-3)
    assert accepted(-0.5, 4e-4, radius=10.0, tol=1e-3)
    assert accepted(1e-6, 9e-5, radius=10.0, tol=1e-3)  # near zero: 1e-3 * 1e-2 * radius
    assert not accepted(1e-6, 2e-4, radius=10.0, tol=1e-3)


def test_a_point_out_of_budget_is_marked_not_converged(split):
    hvp = MeanLossHVP(mlp(), split, batch_size=48)
    ex = extreme_eigenvalues(hvp, tol=1e-12, max_products=25)
    assert not ex.converged and ex.products == 25
    assert ex.rmin > 0 and np.isfinite(ex.lmin)


def test_a_non_finite_product_is_one_clear_error(split):
    model = mlp()
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")
    with pytest.raises(LandscapeError, match="not finite"):
        extreme_eigenvalues(MeanLossHVP(model, split, batch_size=48))


# ---------------------------------------------------------------------------------------------
# every model with a gradient has a Hessian: fused attention


class TinyAttention(nn.Module):
    """One causal self-attention layer through F.scaled_dot_product_attention, then a head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.emb = nn.Embedding(7, 8)
        self.qkv = nn.Linear(8, 24)
        self.head = nn.Linear(8, 7)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        b, t = ids.shape
        q, k, v = self.qkv(self.emb(ids)).view(b, t, 3, 2, 4).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.head(y.transpose(1, 2).reshape(b, t, 8)).mean(1)  # one logit row a sample


def test_fused_attention_has_a_hessian():
    model = TinyAttention().eval()
    g = torch.Generator().manual_seed(0)
    data = Split(torch.randint(0, 7, (12, 5), generator=g), torch.randint(0, 7, (12,), generator=g))
    names = hessian_params(model, "all")
    # The fused kernel has no double derivative: the reference computation needs the math one.
    rev = MeanLossHVP(model, data, 12, params=names, mode="rev")
    with pytest.raises((RuntimeError, NotImplementedError)):
        rev(np.ones(rev.n))
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        h = full_hessian(model, data, names)
    hvp = MeanLossHVP(model, data, batch_size=5, params=names)  # auto, through the fused path
    v = np.random.default_rng(0).standard_normal(hvp.n)
    np.testing.assert_allclose(hvp(v), h @ v, rtol=1e-4, atol=1e-6 * np.abs(h @ v).max())
    assert hvp.mode in ("fwd-math", "rev-math")  # the faster of the two that work
    ev = np.linalg.eigvalsh(h)
    ex = extreme_eigenvalues(hvp)
    assert ex.converged
    assert abs(ex.lmax - ev[-1]) <= 1e-3 * abs(ev[-1]) and abs(ex.lmin - ev[0]) <= 1e-2 * abs(ev[0])


# ---------------------------------------------------------------------------------------------
# the spectrum at the centre: top-k, trace, density


def test_top_k_are_the_largest_eigenvalues(split):
    model = mlp()
    hvp = MeanLossHVP(model, split, batch_size=48)
    ev = np.linalg.eigvalsh(full_hessian(model, split, hvp.names))
    sp = center_spectrum(hvp, "2d", top_k=4)
    assert sp.converged and sp.n == hvp.n and sp.params == "2d"
    np.testing.assert_allclose(sp.top, ev[::-1][:4], rtol=1e-3)
    assert sp.lmax == sp.top[0] and abs(sp.lmin - ev[0]) <= 1e-3 * abs(ev[0])
    for lam, r in zip(sp.top, sp.top_residuals, strict=True):
        assert accepted(lam, r, ev[-1], 1e-3)


def test_trace_and_density_moments_against_the_exact_spectrum(split):
    model = mlp()
    hvp = MeanLossHVP(model, split, batch_size=48)
    ev = np.linalg.eigvalsh(full_hessian(model, split, hvp.names))
    sp = center_spectrum(hvp, "2d", trace_probes=60, density_probes=12, density_steps=30)
    assert sp.trace_probes == 60 and abs(sp.trace - ev.sum()) <= 3 * sp.trace_se
    assert sp.nodes.shape == sp.weights.shape == (12, 30)
    np.testing.assert_allclose(sp.weights.sum(1), 1.0, rtol=1e-10)
    # Per probe, the quadrature's moments are v'Hv and v'H^2 v (exact for degree <= 2m - 1):
    # their mean estimates (1/n) tr H and (1/n) tr H^2, within a few standard errors.
    for p, exact in ((1, ev.mean()), (2, (ev**2).mean())):
        per_probe = (sp.weights * sp.nodes**p).sum(1)
        se = per_probe.std(ddof=1) / np.sqrt(len(per_probe))
        assert abs(per_probe.mean() - exact) <= 3 * se, (p, per_probe.mean(), exact, se)
    m1, m2 = sp.moments()
    # The drawn density: integral 1, the same first moment, the second plus sigma^2.
    t, rho, dt = sp.density_t, sp.density, np.diff(sp.density_t)[0]
    assert (rho >= 0).all() and np.sum(rho) * dt == pytest.approx(1.0, rel=1e-3)
    assert np.sum(t * rho) * dt == pytest.approx(m1, rel=1e-3, abs=1e-3 * np.abs(ev).max())
    want = m2 + sp.density_sigma**2
    assert np.sum(t**2 * rho) * dt == pytest.approx(want, rel=1e-3)
    slack = 1e-5 * np.abs(ev).max()  # float32 products
    assert sp.nodes.min() >= ev[0] - slack and sp.nodes.max() <= ev[-1] + slack


def test_the_api_returns_the_spectrum_and_says_what_it_is_over():
    import tui_landscape as tl

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    got = tl.hessian(model, (x, y), trace_samples=4, top_k=2, density_probes=2)
    assert got["params"] == "2d" and got["n"] == 12  # the bias left out, and said so
    assert got["converged"] is True and got["top_k"].shape == (2,)
    assert got["lambda_max"] == got["top_k"][0] and got["lambda_max_residual"] >= 0
    assert got["trace_probes"] == 4 and got["slq_nodes"].shape[0] == 2
    assert "density" in got and "LEFT OUT" in tl.hessian.__doc__
    with pytest.raises(ConfigError, match="top_k"):
        tl.hessian(model, (x, y), top_k=0)
