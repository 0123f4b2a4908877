from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

from engine.directions import targets
from engine.errors import ConfigError, LandscapeError
from engine.formats import load_directions, save_directions, write_projection
from engine.models import build_model
from engine.trajectory import find_checkpoints, pca_directions


def _bn_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))


def _walk(model: nn.Module, folder: Path, n: int, seed: int = 0, name="model_{}.pt") -> list[Path]:
    """``n`` checkpoints along a noisy path with three scales of motion, in mixed layouts."""
    g = torch.Generator().manual_seed(seed)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    steer = [{k: torch.randn(v.shape, generator=g) for k, v in base.items()} for _ in range(3)]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        a = torch.randn(3, generator=g) * torch.tensor([3.0, 1.0, 0.3])
        sd = {}
        for k, v in base.items():
            if torch.is_floating_point(v):
                move = sum(a[j] * steer[j][k] for j in range(3))
                v = v + move + 0.01 * torch.randn(v.shape, generator=g)
            else:
                v = v + i  # BN counters change too, and must be ignored
            sd[k] = v
        p = folder / name.format(i)
        # The shapes users bring: the reference's .t7 dict, a bare state dict, DataParallel's.
        if i % 3 == 0:
            torch.save({"state_dict": sd, "acc": 50.0, "epoch": i}, p)
        elif i % 3 == 1:
            torch.save(sd, p)
        else:
            torch.save({f"module.{k}": v for k, v in sd.items()}, p)
        paths.append(p)
    return paths


def _sd(path: Path) -> dict[str, torch.Tensor]:
    obj = torch.load(path, weights_only=True)
    obj = obj.get("state_dict", obj)
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _dense(model, paths, final, dir_type="weights", ignore="biasbn", dtype=None) -> np.ndarray:
    """The reference's matrix: one row (checkpoint - final) per checkpoint, by hand."""
    names = [n for n, _ in targets(model, dir_type)]
    fin = _sd(final)
    out = []
    for p in paths:
        sd = _sd(p)
        row = []
        for k in names:
            a, b = (t.to(dtype or t.dtype) for t in (sd[k], fin[k]))
            d = a.double() - b.double()
            if not torch.is_floating_point(fin[k]) or (ignore == "biasbn" and d.dim() <= 1):
                d = torch.zeros_like(d, dtype=torch.float64)
            row.append(d.reshape(-1))
        out.append(torch.cat(row).numpy())
    return np.stack(out)


def _flat(ts: list[torch.Tensor]) -> np.ndarray:
    return torch.cat([t.reshape(-1).double() for t in ts]).numpy()


@pytest.mark.parametrize("separate_final", [False, True])
def test_pca_equals_svd_and_sklearn(tmp_path, separate_final):
    model = build_model("digits_mlp", seed=0)
    paths = _walk(model, tmp_path / "run", 7)
    final = _walk(model, tmp_path / "end", 1, seed=5)[0] if separate_final else None
    r = pca_directions(model, paths, final)
    d = _dense(model, paths, final or paths[-1])

    c = d - d.mean(axis=0)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    x, y = _flat(r.x), _flat(r.y)
    for ours, ref in ((x, vt[0]), (y, vt[1])):
        assert abs(np.linalg.norm(ours) - 1) < 1e-6
        sign = np.sign(ours @ ref)
        np.testing.assert_allclose(ours, sign * ref, atol=1e-6)
    np.testing.assert_allclose(r.singular_values, s[:2], rtol=1e-9)
    np.testing.assert_allclose(r.explained_variance, s[:2] ** 2 / (len(paths) - 1), rtol=1e-9)
    np.testing.assert_allclose(r.explained_variance_ratio, s[:2] ** 2 / np.sum(s**2), rtol=1e-9)

    sk = PCA(n_components=2, svd_solver="full").fit(d)
    np.testing.assert_allclose(r.explained_variance_ratio, sk.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(r.singular_values, sk.singular_values_, rtol=1e-9)
    np.testing.assert_allclose(r.explained_variance, sk.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(np.abs(sk.components_ @ np.stack([x, y]).T), np.eye(2), atol=1e-6)

    # The documented sign: the first checkpoint lies on the negative side of both components.
    assert (r.coords_cos[0] < 0).all()
    # Projections as the reference computes them: d . dir / ||dir|| with the float32 directions,
    # and numpy's least squares on [x y].
    cos = np.stack([d @ x / np.linalg.norm(x), d @ y / np.linalg.norm(y)], axis=1)
    np.testing.assert_allclose(r.coords_cos, cos, rtol=1e-5, atol=1e-5)
    lsq = np.linalg.lstsq(np.stack([x, y], axis=1), d.T, rcond=None)[0].T
    np.testing.assert_allclose(r.coords_lsq, lsq, rtol=1e-5, atol=1e-5)
    # And against the SVD itself: coordinates of the exact components, sign-aligned.
    signs = np.sign([x @ vt[0], y @ vt[1]])
    np.testing.assert_allclose(r.coords_cos, d @ vt[:2].T * signs, rtol=1e-7, atol=1e-7)
    if not separate_final:
        assert (r.coords_cos[-1] == 0).all() and (r.coords_lsq[-1] == 0).all()


@pytest.mark.parametrize("rows_fit", [3, 9])  # 1 or 2 rows streamed past the resident block
def test_streaming_blocks_equal_one_block(tmp_path, rows_fit):
    model = _bn_net()
    paths = _walk(model, tmp_path, 11)
    seen: list[tuple[int, int]] = []
    one = pca_directions(model, paths, memory_bytes=2**30)
    size = one.n_params
    many = pca_directions(
        model, paths, memory_bytes=rows_fit * 8 * size, progress=lambda d, t: seen.append((d, t))
    )
    assert one.blocks == 1 and one.reads == 1 + 10  # the final model is read once, as the base
    assert many.blocks > 1 and many.reads > one.reads
    assert [d for d, _ in seen] == list(range(1, many.reads + 1))
    assert {t for _, t in seen} == {many.reads}
    for a, b in zip(one.x + one.y, many.x + many.y, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for name in ("explained_variance_ratio", "singular_values", "coords_cos", "coords_lsq"):
        np.testing.assert_allclose(getattr(one, name), getattr(many, name), rtol=1e-10, atol=1e-12)


def test_biasbn_zeroed_and_states_include_bn_statistics(tmp_path):
    model = _bn_net()
    paths = _walk(model, tmp_path, 6)
    r = pca_directions(model, paths)
    for (name, t), x, y in zip(targets(model, "weights"), r.x, r.y, strict=True):
        assert x.shape == t.shape
        if t.dim() <= 1:
            assert not x.any() and not y.any(), name
    r = pca_directions(model, paths, ignore="none")
    bias = [x for (_, t), x in zip(targets(model, "weights"), r.x, strict=True) if t.dim() <= 1]
    assert all(b.any() for b in bias)

    s = pca_directions(model, paths, dir_type="states", ignore="none")
    named = dict(zip([n for n, _ in targets(model, "states")], s.x, strict=True))
    assert named["1.running_mean"].any() and named["1.running_var"].any()
    assert named["1.num_batches_tracked"].shape == () and not named["1.num_batches_tracked"].any()
    d = _dense(model, paths, paths[-1], "states", "none")
    vt = np.linalg.svd(d - d.mean(axis=0), full_matrices=False)[2]
    x = _flat(s.x)
    np.testing.assert_allclose(x, np.sign(x @ vt[0]) * vt[0], atol=1e-6)


def test_bfloat16_model(tmp_path):
    model = _bn_net().to(torch.bfloat16)  # no numpy dtype: the torch path forms the rows
    paths = _walk(model, tmp_path, 5)
    r = pca_directions(model, paths)
    d = _dense(model, paths, paths[-1], dtype=torch.bfloat16)
    s = np.linalg.svd(d - d.mean(axis=0), compute_uv=False)
    np.testing.assert_allclose(r.singular_values, s[:2], rtol=1e-9)


def test_model_is_left_unmodified(tmp_path):
    model = _bn_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pca_directions(model, _walk(model, tmp_path, 4), dir_type="states")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_checkpoint_that_does_not_fit_names_the_file(tmp_path):
    model = _bn_net()
    paths = _walk(model, tmp_path, 4)
    torch.save(nn.Linear(2, 2).state_dict(), paths[1])
    with pytest.raises(LandscapeError) as e:
        pca_directions(model, paths)
    assert str(paths[1]) in str(e.value) and "\n" not in str(e.value)


def test_two_checkpoints_span_one_direction(tmp_path):
    model = _bn_net()
    with pytest.raises(LandscapeError, match="span 1 direction"):
        pca_directions(model, _walk(model, tmp_path, 2))
    with pytest.raises(ConfigError, match="at least 2"):
        pca_directions(model, _walk(model, tmp_path, 1))


def test_find_checkpoints_orders_by_epoch(tmp_path):
    for name in ("model_10.pt", "model_2.pt", "model_0.pt", "last.pt", "model_final.pt", "x.txt"):
        (tmp_path / name).write_bytes(b"")
    got = find_checkpoints(tmp_path)
    assert [p.name for p in got] == ["model_0.pt", "model_2.pt", "model_10.pt"]
    assert find_checkpoints(str(tmp_path)) == got

    ref = tmp_path / "ref"
    ref.mkdir()
    for e in (1, 10, 3, 20):
        (ref / f"model_{e}.t7").write_bytes(b"")
    got = find_checkpoints(ref / "model_*.t7")
    assert [p.name for p in got] == ["model_1.t7", "model_3.t7", "model_10.t7", "model_20.t7"]
    assert [p.name for p in find_checkpoints(f"{tmp_path}/**/model_1*")] == [
        "model_1.t7",
        "model_10.pt",
        "model_10.t7",
    ]

    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("b.pth", "a.pth"):
        (plain / name).write_bytes(b"")
    assert [p.name for p in find_checkpoints(plain)] == ["a.pth", "b.pth"]  # no numbers at all


def test_find_checkpoints_needs_two(tmp_path):
    (tmp_path / "model_3.pt").write_bytes(b"")
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(ConfigError) as e:
        find_checkpoints(tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and "found 1: model_3.pt" in msg and "last.pt left out" in msg
    assert "\n" not in msg
    with pytest.raises(ConfigError, match=r"found 0\."):
        find_checkpoints(tmp_path / "none_*.t7")
    with pytest.raises(ConfigError, match="neither a folder nor a glob"):
        find_checkpoints(tmp_path / "missing")


def test_write_projection_reference_layout(tmp_path):
    model = _bn_net()
    r = pca_directions(model, _walk(model, tmp_path, 5))
    out = tmp_path / "proj.h5"
    write_projection(out, r.coords_cos, r.explained_variance_ratio)
    with h5py.File(out, "r") as f:
        assert f["proj_xcoord"].dtype == np.float64 and f["proj_xcoord"].shape == (5,)
        np.testing.assert_array_equal(f["proj_xcoord"][()], r.coords_cos[:, 0])
        np.testing.assert_array_equal(f["proj_ycoord"][()], r.coords_cos[:, 1])
        ev = f["explained_variance_ratio_"][()]
        np.testing.assert_array_equal(ev, r.explained_variance_ratio)
    write_projection(out, r.coords_lsq)
    with h5py.File(out, "r") as f:
        assert set(f) == {"proj_xcoord", "proj_ycoord"}
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        write_projection(out, r.coords_cos[:, 0])


def test_save_directions_extras_round_trip(tmp_path):
    model = _bn_net()
    r = pca_directions(model, _walk(model, tmp_path, 5))
    path = tmp_path / "pca.h5"
    save_directions(path, r.direction_set(), extras=r.extras())
    with h5py.File(path, "r") as f:
        for name in ("explained_variance_ratio_", "singular_values_", "explained_variance_"):
            assert f[name].shape == (2,)
        ev = f["explained_variance_ratio_"][()]
        np.testing.assert_array_equal(ev, r.explained_variance_ratio)
    ds = load_directions(path)
    ds.check_fits(model, str(path))
    assert ds.dir_type == "weights" and ds.attrs["method"] == "pca"
    for a, b in zip(ds.x + ds.y, r.x + r.y, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
