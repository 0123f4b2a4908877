"""Hessian maps you can afford: products that reuse a point's graph, and bad input in one line."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from torch import nn

import engine.hessian as hess
from engine.config import load_config
from engine.data import digits_splits
from engine.errors import ConfigError, LandscapeError
from engine.formats import read_surface
from engine.hessian import MeanLossHVP, extreme_eigenvalues
from engine.run import prepare
from engine.splits import Batches, Split
from tests.conftest import REPO, run_script
from tests.test_hessian import (
    TinyAttention,
    as64,
    cnn,
    full_hessian,
    mlp,
    perturbation,
    trained_at_a_minimum,
)
from tests.test_hessian_cli import SMALL


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def split() -> Split:
    s = digits_splits()["train"]
    return Split(s.x[:48], s.y[:48])


@pytest.mark.parametrize("make", [mlp, cnn])
def test_reused_graphs_give_the_full_hessian_product_and_follow_moves(split, make):
    model, data = as64(make(), split)
    kept = MeanLossHVP(model, data, batch_size=20, mode="rev")  # three batches
    plain = MeanLossHVP(model, data, batch_size=20, mode="rev", reuse=False)
    pert = perturbation(model)
    rng = np.random.default_rng(0)
    kept(rng.standard_normal(kept.n))  # graphs built at the centre, then the weights move
    pert.set(0.4, -0.2)
    h = full_hessian(model, data, kept.names)
    for _ in range(2):  # the second product at the point runs on the kept graphs
        v = rng.standard_normal(kept.n)
        np.testing.assert_allclose(kept(v), h @ v, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(plain(v), h @ v, rtol=1e-9, atol=1e-12)
    assert len(kept._graphs) == 3 and not plain._graphs
    pert.reset()


def test_kept_graphs_keep_lambda_min_to_one_percent_at_a_minimum():
    s = digits_splits()["train"]
    data = Split(s.x[:64].double(), s.y[:64])
    model = trained_at_a_minimum(data, 0.1)  # lambda_min near 1% of lambda_max
    names = hess.hessian_params(model, "all")
    ev = np.linalg.eigvalsh(full_hessian(model, data, names) + 0.1 * np.eye(310))
    for reuse in (True, False):
        hvp = MeanLossHVP(model, data, 32, params=names, l2=0.1, mode="rev", reuse=reuse)
        ex = extreme_eigenvalues(hvp)
        assert ex.converged and abs(ex.lmin - ev[0]) <= 0.01 * abs(ev[0]), (reuse, ex.lmin, ev[0])
        assert abs(ex.lmax - ev[-1]) <= 1e-3 * ev[-1]
        assert bool(hvp._graphs) == reuse


def test_graphs_over_the_budget_are_not_kept(split, monkeypatch):
    monkeypatch.setattr(hess, "REUSE_BYTES", 0)
    model, data = as64(mlp(), split)
    hvp = MeanLossHVP(model, data, batch_size=20, mode="rev")
    v = np.random.default_rng(1).standard_normal(hvp.n)
    np.testing.assert_allclose(hvp(v), full_hessian(model, data, hvp.names) @ v, rtol=1e-9)
    assert hvp._fits is False and not hvp._graphs


def test_fused_attention_through_kept_graphs():
    model = TinyAttention().eval()
    g = torch.Generator().manual_seed(0)
    data = Split(torch.randint(0, 7, (12, 5), generator=g), torch.randint(0, 7, (12,), generator=g))
    names = hess.hessian_params(model, "all")
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        h = full_hessian(model, data, names)
    hvp = MeanLossHVP(model, data, batch_size=5, params=names, mode="rev-math")
    v = np.random.default_rng(0).standard_normal(hvp.n)
    for _ in range(2):
        np.testing.assert_allclose(hvp(v), h @ v, rtol=1e-4, atol=1e-6 * np.abs(h @ v).max())
    assert hvp._graphs


# ---------------------------------------------------------------------------------------------
# bad input: one line for the run, or the point recorded as failed


def test_a_model_without_trainable_parameters_is_one_line(split):
    model = mlp().requires_grad_(False)
    with pytest.raises(ConfigError, match="no gradient to take a Hessian of") as e:
        MeanLossHVP(model, split, 16)
    assert "\n" not in str(e.value)
    import tui_landscape as tl

    with pytest.raises(ConfigError, match="no gradient to take a Hessian of"):
        tl.hessian(model, (split.x, split.y))


def _counted(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    x, y = batch
    return {"loss": (model(x).argmax(1) != y).long()}


def _detached(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    x, y = batch
    return {"loss": nn.functional.cross_entropy(model(x).detach(), y, reduction="none")}


@pytest.mark.parametrize("fn", [_counted, _detached])
@pytest.mark.parametrize("mode", ["auto", "rev", "fwd"])
def test_a_loss_without_a_gradient_is_one_line(split, fn, mode):
    hvp = MeanLossHVP(mlp(), Batches(48, ((split.x, split.y),)), 48, loss=fn, mode=mode)
    with pytest.raises(LandscapeError, match="the loss has no gradient in") as e:
        extreme_eigenvalues(hvp)
    assert "\n" not in str(e.value)


def test_a_non_finite_product_fails_that_point_only(tmp_path):
    cfg = load_config(None, SMALL)  # x in {-1, 0, 1}
    job = prepare(cfg, tmp_path / "nan.h5")
    # A NaN in the x direction: the model is NaN wherever x != 0, finite on the x = 0 column.
    job.landscape.perturbation._groups[0].dx[0] = float("nan")
    job.run()
    s = read_surface(tmp_path / "nan.h5")
    assert s.completed.all()
    bad, good = (slice(None), [0, 2]), (slice(None), 1)
    assert np.isnan(s.values["max_eig"][bad]).all() and np.isnan(s.values["min_eig"][bad]).all()
    assert (s.values["hessian_converged"][bad] == 0).all()
    assert np.isfinite(s.values["max_eig"][good]).all()
    assert (s.values["hessian_converged"][good] == 1).all()


# ---------------------------------------------------------------------------------------------
# a Hugging Face model with its default (fused) attention


def _causal_lm(model: nn.Module, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    logits = model(ids).logits[:, :-1]
    per_token = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
    )
    return {"loss": per_token.view(len(ids), -1).mean(1)}


def test_hf_gpt2_default_attention_has_the_eager_hessian():
    transformers = pytest.importorskip("transformers")
    from torch.profiler import profile

    cfg = transformers.GPT2Config(
        vocab_size=11, n_positions=8, n_embd=8, n_layer=1, n_head=2, bos_token_id=0,
        eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    # Each its own config: the model keeps it, attention implementation included.
    fused, eager = (
        transformers.GPT2LMHeadModel._from_config(copy.deepcopy(cfg), attn_implementation=a)
        for a in ("sdpa", "eager")
    )
    fused.eval(), eager.eval()
    eager.load_state_dict(fused.state_dict())
    ids = torch.randint(0, 11, (12, 6), generator=torch.Generator().manual_seed(0))
    with profile() as prof:
        fused(ids)
    ops = {e.name for e in prof.events()}
    assert "aten::scaled_dot_product_attention" in ops  # the fused entry point, not eager's
    data = Batches(12, (ids,))
    got = {}
    for name, model in (("fused", fused), ("eager", eager)):
        hvp = MeanLossHVP(model, data, 6, loss=_causal_lm, params=hess.hessian_params(model, "all"))
        v = np.random.default_rng(0).standard_normal(hvp.n)
        got[name] = hvp(v), extreme_eigenvalues(hvp)
    (hv, ex), (hv_eager, ex_eager) = got["fused"], got["eager"]
    np.testing.assert_allclose(hv, hv_eager, rtol=1e-4, atol=1e-6 * np.abs(hv_eager).max())
    assert ex.converged and ex_eager.converged
    assert ex.lmax == pytest.approx(ex_eager.lmax, rel=1e-3)
    assert ex.lmin == pytest.approx(ex_eager.lmin, rel=1e-2)


def test_benchmark_speed_prints_ratios_and_paired_points():
    out = run_script(REPO / "benchmarks" / "bench_hessian.py", "--threads", "1", "--speed",
                     "digits_mlp", "--quick", "--samples", "16")  # fmt: skip
    assert re.search(r"load average [0-9.]+, [0-9.]+, [0-9.]+", out), out
    assert re.search(r"HVP/gradient: fwd [0-9.]+, .*rev kept [0-9.]+", out), out
    side = r"([0-9.]+) s \(CPU [0-9.]+\), (\d+) products \(lmax passed at (\d+), lmin at (\d+)\)"
    point = re.search(rf"before {side}, \d+% in products; after {side}", out)
    assert point and int(point[2]) > 0 and int(point[6]) > 0, out
    # Each end passed within the point's products (it converged: never 0 here).
    assert 0 < int(point[7]) <= int(point[6]) and 0 < int(point[8]) <= int(point[6]), out
    assert "seconds per grid point, median of 1 warm-started point(s): before" in out, out


def test_benchmark_speed_pairs_the_reference_solver():
    """``--before cold``: the reference's two ARPACK runs beside the default, same eigenvalues;
    each run's products add up to the point's, less the two residual products."""
    out = run_script(REPO / "benchmarks" / "bench_hessian.py", "--threads", "1", "--speed",
                     "digits_mlp", "--samples", "16", "--points", "2", "--before", "cold",
                     "--no-ratios", "--reps", "1")  # fmt: skip
    assert "before = cold" in out and "HVP/gradient: not measured" in out, out
    pts = re.findall(r"before [0-9.]+ s \(CPU [0-9.]+\), (\d+) products \(lmax passed at (\d+), "
                     r"lmin at (\d+)\)", out)  # fmt: skip
    assert len(pts) == 2, out
    assert all(int(n) == int(a) + int(b) + 2 for n, a, b in pts), out
    vals = re.findall(r"lambda_max ([-0-9.e]+) \(([-0-9.e]+)\), lambda_min ([-0-9.e]+) "
                      r"\(([-0-9.e]+)\)", out)  # fmt: skip
    for a, b, c, d in vals:  # 5 significant digits printed; tol 1e-3 on each
        assert abs(float(a) - float(b)) <= 2e-3 * abs(float(b)), out
        assert abs(float(c) - float(d)) <= 2e-2 * max(abs(float(d)), abs(float(b))), out
    assert "median of 1 warm-started point(s)" in out, out
