"""The Python API (``import tui_landscape as tl``): the same surfaces as the command line, the
caller's model left exactly as it came, and files that resume and that the CLI can read."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from typer.testing import CliRunner

import tui_landscape as tl
from engine.build import load_model
from engine.config import config_from_dict
from engine.data import digits_splits
from engine.errors import ConfigError, LandscapeError
from engine.formats import read_surface
from engine.trajectory import find_checkpoints, pca_directions
from tests.conftest import REPO
from tui_landscape.cli import app

runner = CliRunner()
GRID = ["--set", "grid.x=-1:1:5", "--set", "grid.y=-1:1:5"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def digits():
    return digits_splits()


@pytest.fixture(scope="module")
def cnn(digits_cnn_recipe):
    cfg = config_from_dict({"model": {"arch": "digits_cnn", "checkpoint": "recipe:digits_cnn"}})
    return load_model(cfg)


# A user loss and data set the CLI can import by name (tests.test_api:...), and the API can
# be handed as objects: the same function, so both runs must agree.
def abs_loss(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    x, y = batch
    logits = model(x)
    per = (logits - nn.functional.one_hot(y, logits.shape[1]).float()).abs().sum(1)
    return {"loss": per, "count": torch.full_like(per, 2.0), "top": logits.max(1).values}


def digits_train() -> TensorDataset:
    s = digits_splits()["train"]
    return TensorDataset(s.x, s.y)


def test_import_is_lazy_and_light():
    code = (
        "import sys, tui_landscape as tl; f = tl.compute, tl.hessian, tl.trajectory; "
        "assert 'compute' in dir(tl); print(any(m.split('.')[0] == 'torch' for m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = tl.nope


def test_same_surface_as_the_cli(digits, cnn, chdir_tmp):
    """The digits CNN through the API and through `compute` with the same settings: every
    surface bit-equal (same subset indices, same tensors, same evaluator)."""
    tr, te = digits["train"], digits["test"]
    surf = tl.compute(
        cnn,
        (tr.x, tr.y),
        test=(te.x, te.y),
        x="-1:1:5",
        y="-1:1:5",
        config={"data.subset": 200, "directions.seed": 3},
        progress=False,
    )
    r = invoke(
        "compute", REPO / "sample_configs" / "digits_2d.toml", *GRID,
        "--set", "model.checkpoint=recipe:digits_cnn", "--set", "data.subset=200",
        "--set", "directions.seed=3", "--set", "compute.device=cpu", "--out", "cli.h5",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    cli = read_surface(chdir_tmp / "cli.h5")
    assert surf.names == ("train_loss", "train_acc", "test_loss", "test_acc")
    assert surf.path is None and surf["train_loss"].shape == (5, 5)
    np.testing.assert_array_equal(surf.x, cli.x)
    np.testing.assert_array_equal(surf.y, cli.y)
    for name in surf.names:
        np.testing.assert_array_equal(surf[name], cli.values[name], err_msg=name)


def test_user_loss_same_as_the_cli(digits, cnn, chdir_tmp):
    tr = digits["train"]
    surf = tl.compute(
        cnn, (tr.x, tr.y), loss=abs_loss, x="-0.5:0.5:3", config={"data.subset": 200},
        progress=False,
    )  # fmt: skip
    r = invoke(
        "compute", REPO / "sample_configs" / "digits_2d.toml", "--set", "grid.x=-0.5:0.5:3",
        "--set", "grid.y=''", "--set", "model.checkpoint=recipe:digits_cnn",
        "--set", "data.dataset=tests.test_api:digits_train", "--set", "data.splits=['train']",
        "--set", "data.loss=tests.test_api:abs_loss", "--set", "data.subset=200",
        "--set", "compute.device=cpu", "--out", "cli.h5",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    cli = read_surface(chdir_tmp / "cli.h5")
    assert surf.names == ("train_loss", "train_top") == tuple(cli.values)
    assert surf.y is None and surf["train_loss"].shape == (3,)
    for name in surf.names:
        np.testing.assert_array_equal(surf[name], cli.values[name], err_msg=name)
    assert 'loss = "python:tests.test_api:abs_loss"' in surf.config


class Awkward(nn.Module):
    """BN running statistics, a frozen parameter, tied weights, a conv worth channels-last."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 10)
        self.head = nn.Linear(10, 10)
        self.tail = nn.Linear(10, 10)
        self.tail.weight = self.head.weight  # tied
        self.conv.bias.requires_grad_(False)  # frozen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))
        return self.tail(torch.relu(self.head(h)))


def snapshot(model: nn.Module) -> dict:
    """Everything the API promises to leave as it was, per module entry."""
    out = {}
    for mname, m in model.named_modules():
        out[mname] = m.training
        for store in ("_parameters", "_buffers"):
            for k, t in getattr(m, store).items():
                out[f"{mname}.{store}.{k}"] = (
                    t, t.data_ptr(), t.stride(), t.dtype, t.device, t.requires_grad,
                    t.detach().clone(), t.grad if isinstance(t, nn.Parameter) else None,
                )  # fmt: skip
    return out


def assert_same(before: dict, model: nn.Module) -> None:
    after = snapshot(model)
    assert before.keys() == after.keys()
    for key, was in before.items():
        now = after[key]
        if isinstance(was, bool):
            assert now is was, key
            continue
        assert now[0] is was[0], key  # the same tensor object
        assert now[1:6] == was[1:6], key  # storage, strides, dtype, device, requires_grad
        assert torch.equal(now[6], was[6]), key
        assert now[7] is was[7], key


@pytest.fixture
def awkward():
    torch.manual_seed(0)
    model = Awkward()
    model.train()
    model.bn.eval()  # a mix of modes
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.1, 0.1)
        model.bn.running_var.uniform_(0.5, 1.5)
    model(torch.randn(2, 1, 8, 8)).sum().backward()  # grads to keep
    x, y = torch.randn(40, 1, 8, 8), torch.randint(0, 10, (40,))
    return model, (x, y)


def test_the_model_is_left_as_it_came(awkward):
    model, data = awkward
    before = snapshot(model)
    assert model.conv.weight.grad is not None
    s = tl.compute(
        model, data, x="-1:1:3", y="-1:1:3", config={"directions.type": "states"}, progress=False
    )
    assert np.isfinite(s["train_loss"]).all()
    assert_same(before, model)
    assert model.tail.weight is model.head.weight


def test_the_model_is_left_as_it_came_after_an_error(awkward):
    model, data = awkward
    before = snapshot(model)

    def broken(model, batch):
        model(batch[0])  # runs after the model was moved and laid out
        raise RuntimeError("boom")

    with pytest.raises(LandscapeError, match="boom"):
        tl.compute(model, data, loss=broken, x="-1:1:3", progress=False)
    assert_same(before, model)
    with pytest.raises(ConfigError):
        tl.compute(model, data, x="-1:1:3", config={"directions.seed": "3"}, progress=False)
    assert_same(before, model)


def test_out_resumes_and_the_cli_reads_it(digits, cnn, tmp_path):
    tr = digits["train"]
    calls = [0]

    def counted(model, batch):
        calls[0] += 1
        return abs_loss(model, batch)

    kw = dict(loss=counted, x="-1:1:3", config={"data.subset": 100}, progress=False)
    out = tmp_path / "s.h5"
    first = tl.compute(cnn, (tr.x, tr.y), out=out, **kw)
    n_first, calls[0] = calls[0], 0
    again = tl.compute(cnn, (tr.x, tr.y), out=out, **kw)
    # One batch per pass: the check and 3 points; resumed, only the check.
    assert (n_first, calls[0]) == (1 + 3, 1)
    assert first.path == again.path == out
    np.testing.assert_array_equal(first["train_loss"], again["train_loss"])

    assert invoke("info", out).exit_code == 0
    assert invoke("plot", out).exit_code == 0
    # The stored config names objects that were in memory: `compute` says so in one line.
    (tmp_path / "again.toml").write_text(str(read_surface(out).attrs["config"]))
    r = invoke("compute", tmp_path / "again.toml", "--out", tmp_path / "other.h5")
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit)
    assert "python:" in r.output and "Traceback" not in r.output

    other = load_model(config_from_dict({"model": {"arch": "digits_cnn", "seed": 1}}))
    with pytest.raises(LandscapeError, match="model.arch"):
        tl.compute(other, (tr.x, tr.y), out=out, **kw)  # other weights: not mixed in
    tl.compute(other, (tr.x, tr.y), out=out, overwrite=True, **kw)


def test_config_keys_are_checked():
    model, data = nn.Linear(3, 2), (torch.randn(8, 3), torch.randint(0, 2, (8,)))
    for config, match in [
        ({"directions.sed": 1}, "Unknown config key `directions.sed`"),
        ({"directions.seed": "3"}, "Expected `directions.seed` to be an integer"),
        ({"grid.x": "-1:1:3"}, r"`grid.x` is decided by the function's arguments \(x\)"),
        ({"data.loss": "mse"}, r"\(loss\)"),
        ({"compute.workers": 2}, "`compute.workers` = 1"),
    ]:
        with pytest.raises(ConfigError, match=match):
            tl.compute(model, data, x="-1:1:3", config=config, progress=False)


def test_a_dataloader_gives_the_same_surface(digits, cnn):
    tr = digits["train"]
    x, y = tr.x[:150], tr.y[:150]
    kw = dict(x="-1:1:3", progress=False)
    ref = tl.compute(cnn, (x, y), **kw)
    held = tl.compute(cnn, DataLoader(TensorDataset(x, y), batch_size=64), **kw)
    for name in ref.names:
        np.testing.assert_array_equal(held[name], ref[name])  # joined into one Split
    streamed = tl.compute(
        cnn, DataLoader(TensorDataset(x, y), batch_size=64), config={"data.stream": True}, **kw
    )
    for name in ref.names:  # per batch through the loss function: the same up to rounding
        np.testing.assert_allclose(streamed[name], ref[name], rtol=1e-6)
    with pytest.raises(ConfigError, match="data.subset"):
        tl.compute(cnn, DataLoader(TensorDataset(x, y)), config={"data.subset": 10}, **kw)


def test_trajectory(digits, tmp_path):
    """A short SGD path: the API's PCA plane and path are the engine's, with the model (the
    last checkpoint) at the origin; a list of paths gives the same as the folder."""
    tr = digits["train"]
    x, y = tr.x[:200], tr.y[:200]
    model = load_model(config_from_dict({"model": {"arch": "digits_cnn"}}))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(1, 5):
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        torch.save(model.state_dict(), tmp_path / f"model_{epoch}.pt")
    model.eval()
    s = tl.trajectory(model, tmp_path, (x, y), x="auto:3", y="auto:3", progress=False)
    pca = pca_directions(model, find_checkpoints(tmp_path))
    np.testing.assert_allclose(s.trajectory, pca.coords_cos, atol=1e-9)
    np.testing.assert_allclose(s.explained_variance, pca.explained_variance_ratio, rtol=1e-9)
    np.testing.assert_allclose(s.trajectory[-1], 0.0, atol=1e-9)
    assert s["train_loss"].shape == (3, 3)
    listed = tl.trajectory(
        model, sorted(tmp_path.glob("*.pt")), (x, y), x="auto:3", y="auto:3", progress=False
    )
    np.testing.assert_allclose(listed.trajectory, s.trajectory, atol=1e-9)
    np.testing.assert_array_equal(listed["train_loss"], s["train_loss"])


def test_hessian_matches_the_full_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    model.train()
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    got = tl.hessian(
        model, (x, y), config={"hessian.params": "all", "hessian.tol": 1e-6}, trace_samples=400
    )
    w, b = model[0].weight.detach(), model[0].bias.detach()

    def mean_loss(w, b):
        return nn.functional.cross_entropy(x @ w.T + b, y)

    h = torch.autograd.functional.hessian(mean_loss, (w, b))
    n = w.numel()
    full = torch.zeros(n + 3, n + 3, dtype=torch.float64)
    full[:n, :n] = h[0][0].reshape(n, n)
    full[:n, n:] = h[0][1].reshape(n, 3)
    full[n:, :n] = h[1][0].reshape(3, n)
    full[n:, n:] = h[1][1]
    eig = torch.linalg.eigvalsh(full)
    assert got["lambda_max"] == pytest.approx(float(eig[-1]), rel=1e-4)
    assert got["lambda_min"] == pytest.approx(float(eig[0]), abs=1e-5)
    assert abs(got["trace"] - float(eig.sum())) < 4 * got["trace_se"]
    assert model.training and model[0].training  # left in train mode


def test_progress_bar_runs(awkward):
    model, data = awkward
    s = tl.compute(model, data, x="-1:1:2")  # progress=True, not a terminal: no crash
    assert s["train_loss"].shape == (2,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_cpu_model_evaluated_on_the_gpu_comes_back_on_the_cpu(awkward):
    model, data = awkward
    before = snapshot(model)
    ref = tl.compute(model, data, x="-1:1:3", progress=False)
    on_gpu = tl.compute(model, data, x="-1:1:3", device="cuda", progress=False)
    assert_same(before, model)
    np.testing.assert_allclose(on_gpu["train_loss"], ref["train_loss"], rtol=1e-4)
