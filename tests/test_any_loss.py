"""Any model, any loss, any batch: surfaces of a user loss against an independent loop.

The reference loop sets each grid point's weights itself (base + a * dx + b * dy from the
run's direction file), calls the user's function on every batch and divides the float64 sums,
so it shares nothing with the engine's evaluator but the directions.
"""

from __future__ import annotations

import textwrap

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.config import load_config
from engine.data import load_splits
from engine.formats import directions_path, load_directions, read_surface
from engine.hessian import MeanLossHVP, extreme_eigenvalues
from engine.imports import load_callable
from engine.run import prepare
from engine.splits import Batches
from tui_landscape.cli import app

USER = textwrap.dedent(
    '''
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import Dataset, TensorDataset

    def mlp():
        return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))

    def _regress(seed, n):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 5, generator=g)
        return TensorDataset(x, x @ torch.arange(1.0, 6.0) + 0.1 * torch.randn(n, generator=g))

    def regress_train():
        return _regress(0, 150)

    def regress_test():
        return _regress(1, 40)

    def sq_loss(model, batch):
        x, y = batch
        d = model(x).squeeze(-1) - y
        return {"loss": d * d, "abs_err": d.abs()}

    class Seqs(Dataset):
        """Dict items: token ids with a padding mask of varying length (1 + i % 7 tokens)."""
        def __init__(self, seed, n):
            g = torch.Generator().manual_seed(seed)
            self.ids = torch.randint(0, 11, (n, 8), generator=g)
            self.n = n
        def __len__(self):
            return self.n
        def __getitem__(self, i):
            mask = (torch.arange(8) < 2 + i % 7).long()
            return {"ids": self.ids[i] * mask, "mask": mask}

    def seq_train():
        return Seqs(0, 90)

    def seq_test():
        return Seqs(1, 30)

    class TinyLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(11, 6)
            self.mix = nn.Linear(6, 6)
            self.head = nn.Linear(6, 11)
        def forward(self, ids):
            h = self.emb(ids)
            h = torch.tanh(self.mix(h.cumsum(1) / torch.arange(1, ids.shape[1] + 1)[:, None]))
            return self.head(h)

    def token_loss(model, batch):
        logits = model(batch["ids"])[:, :-1]
        target, mask = batch["ids"][:, 1:], batch["mask"][:, 1:].float()
        ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        right = (logits.argmax(-1) == target).float() * mask
        return {"loss": (ce * mask).sum(1), "count": mask.sum(1), "tok_acc": right.sum(1)}

    def bad_scalar(model, batch):
        return {"loss": sq_loss(model, batch)["loss"].mean()}

    def bad_shape(model, batch):
        return {"loss": sq_loss(model, batch)["loss"][:3]}

    def bad_type(model, batch):
        return {"loss": sq_loss(model, batch)["loss"].tolist()}

    def bad_tensor(model, batch):
        return sq_loss(model, batch)["loss"]

    def bad_key(model, batch):
        return {"err": sq_loss(model, batch)["loss"]}

    def bad_count(model, batch):
        out = sq_loss(model, batch)
        return {"loss": out["loss"], "count": torch.zeros_like(out["loss"])}

    def bad_negative(model, batch):
        out = sq_loss(model, batch)
        return {"loss": out["loss"], "count": -torch.ones_like(out["loss"])}

    calls = {"n": 0}

    def raises_later(model, batch):
        calls["n"] += 1
        if calls["n"] > 2:  # the check's two splits pass; every grid point raises
            raise ValueError("boom at a grid point")
        return sq_loss(model, batch)
    '''
)

REGRESS = [
    "model.arch={u}:mlp",
    "data.dataset={u}:regress_train",
    "data.test_dataset={u}:regress_test",
    "data.loss={u}:sq_loss",
    "data.batch_size=32",
]
SEQ = [
    "model.arch={u}:TinyLM",
    "data.dataset={u}:seq_train",
    "data.test_dataset={u}:seq_test",
    "data.loss={u}:token_loss",
    "data.batch_size=16",
]


@pytest.fixture
def user(tmp_path):
    path = tmp_path / "userdefs.py"
    path.write_text(USER)
    return str(path)


def _cfg(user, base, *extra):
    return load_config(None, [s.format(u=user) for s in base] + list(extra))


def _loop(cfg, out, fn_name, user):
    """Every surface at every point by hand: set the weights, call the function, divide."""
    from engine.build import load_model

    model = load_model(cfg)
    ds = load_directions(directions_path(out), "weights")
    fn = load_callable(f"{user}:{fn_name}", "test")
    base = [p.detach().clone() for p in model.parameters()]
    s = read_surface(out)
    datasets = {
        "train": load_callable(cfg.data.dataset, "t")(),
        "test": load_callable(cfg.data.test_dataset, "t")(),
    }
    result = {n: np.zeros_like(v) for n, v in s.values.items()}
    ys = s.y if s.y is not None else [0.0]
    for i, b in enumerate(ys):
        for j, a in enumerate(s.x):
            with torch.no_grad():
                for p, p0, dx, k in zip(model.parameters(), base, ds.x, range(99), strict=False):
                    v = p0 + a * dx
                    if ds.y is not None:
                        v = v + b * ds.y[k]
                    p.copy_(v)
            sq = sum(float(p.detach().double().pow(2).sum()) for p in model.parameters())
            for split, data in datasets.items():
                loader = torch.utils.data.DataLoader(data, batch_size=7)
                sums: dict[str, float] = {}
                with torch.no_grad():
                    for batch in loader:
                        out_b = fn(model, batch)
                        if "count" not in out_b:
                            out_b["count"] = torch.ones_like(out_b["loss"])
                        for k, v in out_b.items():
                            sums[k] = sums.get(k, 0.0) + float(v.double().sum())
                cell = (i, j) if s.y is not None else (j,)
                for k, v in sums.items():
                    if k != "count":
                        value = v / sums["count"]
                        if k == "loss":
                            value += 0.5 * cfg.data.l2 * sq
                        result[f"{split}_{k}"][cell] = value
    return s, result


def _check_against_loop(cfg, out, fn_name, user, names):
    prepare(cfg, out).run()
    s, ref = _loop(cfg, out, fn_name, user)
    assert list(s.values) == names
    for n in names:
        np.testing.assert_allclose(s.values[n], ref[n], rtol=2e-6, atol=1e-7, err_msg=n)


def test_regression_surface_equals_a_plain_loop(user, tmp_path):
    cfg = _cfg(user, REGRESS, "grid.x=-1:1:5", "grid.y=-0.5:0.5:3")
    names = ["train_loss", "train_abs_err", "test_loss", "test_abs_err"]
    _check_against_loop(cfg, tmp_path / "r.h5", "sq_loss", user, names)


def test_dict_batch_sequence_surface_is_token_weighted(user, tmp_path):
    cfg = _cfg(user, SEQ, "grid.x=-1:1:4", "grid.y=-1:1:3")
    names = ["train_loss", "train_tok_acc", "test_loss", "test_tok_acc"]
    _check_against_loop(cfg, tmp_path / "s.h5", "token_loss", user, names)
    # Token-weighted: not the mean of per-sequence means, which differs here.
    s = read_surface(tmp_path / "s.h5")
    assert np.isfinite(s.values["train_loss"]).all()


def test_l2_term_is_added_to_every_loss_surface(user, tmp_path):
    cfg = _cfg(user, REGRESS, "grid.x=-1:1:3", "grid.y=-1:1:3", "data.l2=0.01")
    names = ["train_loss", "train_abs_err", "test_loss", "test_abs_err"]
    _check_against_loop(cfg, tmp_path / "l2.h5", "sq_loss", user, names)
    plain = _cfg(user, REGRESS, "grid.x=-1:1:3", "grid.y=-1:1:3")
    prepare(plain, tmp_path / "plain.h5").run()
    a, b = read_surface(tmp_path / "l2.h5"), read_surface(tmp_path / "plain.h5")
    assert (a.values["train_loss"] > b.values["train_loss"]).all()
    np.testing.assert_array_equal(a.values["train_abs_err"], b.values["train_abs_err"])


def test_streamed_split_gives_the_in_memory_surface(user, tmp_path):
    base = (user, REGRESS, "grid.x=-1:1:3", "grid.y=-1:1:3")
    prepare(_cfg(*base), tmp_path / "m.h5").run()
    cfg = _cfg(*base, "data.stream=true", "data.loader_workers=0")
    assert all(s.streamed for s in load_splits(cfg.data).values())
    prepare(cfg, tmp_path / "st.h5").run()
    a, b = read_surface(tmp_path / "m.h5"), read_surface(tmp_path / "st.h5")
    for n in a.values:
        np.testing.assert_allclose(a.values[n], b.values[n], rtol=1e-6, err_msg=n)


def test_memory_budget_decides_streaming(user):
    small = _cfg(user, REGRESS, "data.memory_mb=1")
    assert isinstance(load_splits(small.data)["train"], Batches)
    assert not load_splits(small.data)["train"].streamed  # 150 x 24 bytes fit in 1 MiB


@pytest.mark.usefixtures("digits_cnn_recipe")
def test_builtin_crossentropy_as_a_function_equals_the_fused_path(tmp_path):
    grid = [
        "grid.x=-1:1:3",
        "grid.y=-1:1:3",
        "data.subset=300",
        "model.checkpoint=recipe:digits_cnn",
    ]
    prepare(load_config(None, grid), tmp_path / "f.h5").run()
    prepare(
        load_config(None, [*grid, "data.loss=engine.losses:crossentropy"]), tmp_path / "g.h5"
    ).run()
    a, b = read_surface(tmp_path / "f.h5"), read_surface(tmp_path / "g.h5")
    assert list(a.values) == list(b.values) == ["train_loss", "train_acc", "test_loss", "test_acc"]
    for n in a.values:
        np.testing.assert_allclose(a.values[n], b.values[n], rtol=1e-6, err_msg=n)
    np.testing.assert_array_equal(a.values["train_acc"], b.values["train_acc"])


def test_hessian_of_a_user_loss_is_the_count_weighted_mean_plus_l2(user):
    from engine.build import load_model

    cfg = _cfg(user, SEQ, "data.l2=0.05")
    model = load_model(cfg)
    split = load_splits(cfg.data, ["train"])["train"]
    hvp = MeanLossHVP(model, split, 16, cfg.data.loss, params=["mix.weight"], l2=0.05)
    data = load_callable(cfg.data.dataset, "t")()
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    w0 = model.mix.weight.detach().clone()

    def mean_loss(w):
        out = torch.func.functional_call(model, {"mix.weight": w}, (batch["ids"],))
        logits = out[:, :-1]
        mask = batch["mask"][:, 1:].float()
        ce = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), batch["ids"][:, 1:], reduction="none"
        )
        return (ce * mask).sum() / mask.sum() + 0.025 * w.pow(2).sum()

    h = torch.autograd.functional.hessian(mean_loss, w0).reshape(36, 36)
    exact = np.linalg.eigvalsh(h.double().numpy())
    ex = extreme_eigenvalues(hvp, 1e-6)
    assert ex.lmax == pytest.approx(exact[-1], rel=1e-4)
    assert ex.lmin == pytest.approx(exact[0], rel=1e-3, abs=1e-5)


@pytest.mark.parametrize(
    ("fn", "says"),
    [
        ("bad_scalar", "returned a tensor of shape () for `loss`; it must give one value per "
         "sample, shape (32,)"),
        ("bad_shape", "returned a tensor of shape (3,) for `loss`; it must give one value per "
         "sample, shape (32,)"),
        ("bad_type", "returned a list for `loss`; it must give a tensor of shape (32,)"),
        ("bad_tensor", "returned a tensor of shape (32,); it must return a dict"),
        ("bad_key", "returned a dict without a 'loss' key (keys: err)"),
        ("bad_count", "returned a `count` of 0 for a sample; every count must be finite and > 0"),
        ("bad_negative", "returned a `count` of -1 for a sample; every count must be finite"),
    ],
)  # fmt: skip
def test_bad_loss_returns_are_refused_in_one_line(user, tmp_path, fn, says):
    out = tmp_path / "bad.h5"
    args = [a.format(u=user) for a in REGRESS] + [f"data.loss={user}:{fn}", "grid.x=-1:1:3"]
    (tmp_path / "c.toml").write_text("")
    sets = [x for a in args for x in ("--set", a)]
    r = CliRunner().invoke(app, ["compute", str(tmp_path / "c.toml"), "--out", str(out), *sets])
    assert r.exit_code == 1, r.output
    line = r.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"`data.loss` {user}:{fn} {says}" in line
    assert not out.exists()  # refused before the grid starts


def test_a_loss_that_raises_at_a_point_fails_that_point(user, tmp_path):
    cfg = _cfg(user, REGRESS, "grid.x=-1:1:3", f"data.loss={user}:raises_later")
    summary = prepare(cfg, tmp_path / "x.h5").run()
    assert summary.done == 0 and sorted(summary.failed) == [0, 1, 2]
    assert all("boom at a grid point" in e for e in summary.failed.values())
    with h5py.File(tmp_path / "x.h5") as f:
        assert not f["completed"][()].any()


def test_a_pool_of_two_workers_gives_the_single_process_user_loss_surface(user, tmp_path):
    grid = ("grid.x=-1:1:4", "grid.y=-1:1:3")
    prepare(_cfg(user, SEQ, *grid), tmp_path / "one.h5").run()
    summary = prepare(_cfg(user, SEQ, *grid, "compute.workers=2"), tmp_path / "two.h5").run()
    assert summary.workers == 2
    a, b = read_surface(tmp_path / "one.h5"), read_surface(tmp_path / "two.h5")
    assert list(a.values) == list(b.values)
    for n in a.values:
        np.testing.assert_array_equal(a.values[n], b.values[n], err_msg=n)


def test_hessian_map_of_a_user_loss(user, tmp_path):
    cfg = _cfg(user, REGRESS, "grid.x=-1:1:3", "hessian.enabled=true", "hessian.params=all")
    prepare(cfg, tmp_path / "h.h5").run()
    s = read_surface(tmp_path / "h.h5")
    assert {"max_eig", "min_eig", "train_abs_err"} <= set(s.values)
    assert np.isfinite(s.values["max_eig"]).all() and (s.values["max_eig"] > 0).all()


def test_two_torchrun_ranks_give_the_single_process_user_loss_surface(user, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    sets = [s.format(u=user) for s in SEQ] + ["grid.x=-1:1:4", "grid.y=-1:1:3"]
    prepare(load_config(None, sets), tmp_path / "one.h5").run()
    (tmp_path / "c.toml").write_text("")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    cmd += ["-m", "tui_landscape", "compute", str(tmp_path / "c.toml")]
    cmd += ["--out", str(tmp_path / "two.h5"), *[x for s in sets for x in ("--set", s)]]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 ranks (cpu)" in r.stdout, r.stdout
    a, b = read_surface(tmp_path / "one.h5"), read_surface(tmp_path / "two.h5")
    assert list(a.values) == list(b.values)
    for n in a.values:
        np.testing.assert_array_equal(a.values[n], b.values[n], err_msg=n)


def test_pca_trajectory_surface_with_a_user_loss(user, tmp_path):
    from engine.build import load_model

    cfg = _cfg(user, REGRESS)
    model = load_model(cfg)
    run = tmp_path / "run"
    run.mkdir()
    g = torch.Generator().manual_seed(3)
    for epoch in range(6):  # a made-up path: the weights drift by random steps
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
        torch.save(model.state_dict(), run / f"model_{epoch}.pt")
    pca = _cfg(
        user, REGRESS, "directions.kind=pca", f"directions.checkpoints={run}",
        "grid.x=auto:4", "grid.y=auto:3",
    )  # fmt: skip
    prepare(pca, tmp_path / "pca.h5").run()
    s = read_surface(tmp_path / "pca.h5")
    assert list(s.values) == ["train_loss", "train_abs_err", "test_loss", "test_abs_err"]
    assert np.isfinite(s.values["train_loss"]).all() and s.values["train_loss"].shape == (3, 4)
