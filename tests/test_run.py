from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from engine.build import load_model
from engine.config import load_config
from engine.data import load_splits
from engine.directions import targets
from engine.errors import ConfigError, LandscapeError
from engine.evaluate import evaluate
from engine.formats import directions_path, read_surface
from engine.run import prepare

MLP = ["model.arch=digits_mlp", "model.checkpoint=recipe:digits_mlp"]
# Most tests here run the two recipes; they are trained once, before any test (conftest).
pytestmark = pytest.mark.usefixtures("digits_cnn_recipe", "digits_mlp_recipe")


def run(sets, out, **kw):
    job = prepare(load_config(None, sets), out, **kw)
    job.run()
    return read_surface(out)


def own_metrics(cfg):
    model = load_model(cfg)
    out = {}
    for name, split in load_splits(cfg.data).items():
        st = evaluate(model, split, 4096)
        out[f"{name}_loss"], out[f"{name}_acc"] = st.loss, st.acc
    return out


def test_center_equals_the_models_own_loss(tmp_path):
    sets = ["model.checkpoint=recipe:digits_cnn", "grid.x=-1:1:3", "grid.y=-0.5:0.5:3"]
    s = run(sets, tmp_path / "s.h5")
    assert s.n_done == 9
    want = own_metrics(load_config(None, sets))
    for name, value in want.items():
        assert s.values[name][1, 1] == pytest.approx(value, rel=1e-5), name
    assert s.values["train_loss"][0, 0] > s.values["train_loss"][1, 1]
    assert s.values["train_acc"][1, 1] > 90


@pytest.mark.usefixtures("bn_recipes")
def test_interpolation_end_points_equal_the_two_models(tmp_path):
    a, b = "recipe:digits_cnn_small_batch", "recipe:digits_cnn_large_batch"
    sets = [
        f"model.checkpoint={a}",
        "directions.kind=interpolate",
        f"directions.target={b}",
        "grid.x=-0.5:1.5:5",
    ]
    s = run(sets, tmp_path / "i.h5")
    assert s.attrs["dir_type"] == "states"  # a BN model interpolates its running statistics too
    ma = own_metrics(load_config(None, [f"model.checkpoint={a}"]))
    mb = own_metrics(load_config(None, [f"model.checkpoint={b}"]))
    for name in ma:
        assert s.values[name][1] == pytest.approx(ma[name], rel=1e-5), name
        assert s.values[name][3] == pytest.approx(mb[name], rel=1e-4), name


def test_1d_slice_equals_the_2d_row_through_the_center(tmp_path):
    s2 = run([*MLP, "grid.x=-1:1:5", "grid.y=-1:1:3"], tmp_path / "two.h5")
    s1 = run([*MLP, "grid.x=-1:1:5"], tmp_path / "one.h5")
    np.testing.assert_allclose(s1.values["train_loss"], s2.values["train_loss"][1], rtol=1e-6)


def test_resume_computes_only_missing_points(tmp_path):
    sets = [*MLP, "grid.x=-1:1:4", "grid.y=-1:1:3"]
    full = run(sets, tmp_path / "full.h5")
    job = prepare(load_config(None, sets), tmp_path / "part.h5")
    points = job.points()
    for _ in range(5):
        next(points)
    points.close()  # as on Ctrl-C: the file is flushed and closed
    part = read_surface(tmp_path / "part.h5")
    assert part.n_done == 5 and np.isnan(part.values["train_loss"]).sum() == 7
    job = prepare(load_config(None, sets), tmp_path / "part.h5")
    assert job.resumed and job.done == 5 and len(job.todo()) == 7
    summary = job.run()
    assert summary.computed == 7
    again = read_surface(tmp_path / "part.h5")
    for name, z in full.values.items():
        np.testing.assert_allclose(again.values[name], z, rtol=1e-6)
    # Complete: the same command again computes nothing.
    assert prepare(load_config(None, sets), tmp_path / "part.h5").run().computed == 0


def test_a_fresh_run_never_overwrites_other_work(tmp_path):
    out = tmp_path / "s.h5"
    run([*MLP, "grid.x=-1:1:3"], out)
    with pytest.raises(
        LandscapeError, match=r"different config \(grid.x: '-1:1:3' in the file vs '-1:1:5' now\)"
    ):
        prepare(load_config(None, [*MLP, "grid.x=-1:1:5"]), out)
    s = run([*MLP, "grid.x=-1:1:5"], out, overwrite=True)
    assert s.shape == (5,)
    with h5py.File(tmp_path / "foreign.h5", "w") as h:
        h["xcoordinates"] = np.linspace(-1, 1, 3)  # a valid reference surface
        h["train_loss"] = np.zeros(3)
    with pytest.raises(LandscapeError, match="not a tui-landscape surface"):
        prepare(load_config(None, [*MLP, "grid.x=-1:1:3"]), tmp_path / "foreign.h5")


def test_resume_ignores_split_order_and_auto_type(tmp_path):
    sets = [*MLP, "grid.x=-1:1:3", "data.splits=['train', 'test']"]
    run(sets, tmp_path / "s.h5")
    again = [*MLP, "grid.x=-1:1:3", "data.splits=['test', 'train']", "directions.type=weights"]
    assert prepare(load_config(None, again), tmp_path / "s.h5").run().computed == 0


def test_direction_files_ours_and_the_references(tmp_path):
    sets = [*MLP, "grid.x=-1:1:3", "grid.y=-1:1:3"]
    base = run(sets, tmp_path / "a.h5")
    ours = directions_path(tmp_path / "a.h5")
    assert base.dir_file == ours.name
    again = run([*sets, "directions.kind=file", f"directions.file={ours}"], tmp_path / "b.h5")
    np.testing.assert_array_equal(again.values["train_loss"], base.values["train_loss"])
    # The reference writes bare groups: no attributes, datasets '0'..'N-1'.
    with h5py.File(ours) as src, h5py.File(tmp_path / "ref_dir.h5", "w") as dst:
        for axis in ("xdirection", "ydirection"):
            g = dst.create_group(axis)
            for k in src[axis]:
                g[k] = src[axis][k][()]
    ref = run(
        [*sets, "directions.kind=file", f"directions.file={tmp_path / 'ref_dir.h5'}"],
        tmp_path / "c.h5",
    )
    np.testing.assert_array_equal(ref.values["train_loss"], base.values["train_loss"])


def test_direction_file_for_another_model_is_refused_before_writing(tmp_path):
    run(["model.checkpoint=recipe:digits_cnn", "grid.x=-1:1:3"], tmp_path / "cnn.h5")
    out = tmp_path / "mlp.h5"
    cfg = load_config(
        None,
        [
            *MLP,
            "grid.x=-1:1:3",
            "directions.kind=file",
            f"directions.file={directions_path(tmp_path / 'cnn.h5')}",
        ],
    )
    with pytest.raises(LandscapeError, match="does not fit the model"):
        prepare(cfg, out)
    assert not out.exists()


def test_states_directions_move_bn_statistics_along_the_grid(tmp_path):
    sets = ["model.checkpoint=recipe:digits_cnn", "grid.x=-0.5:0.5:3", "directions.ignore=none"]
    w = run([*sets, "directions.type=weights"], tmp_path / "w.h5")
    s = run([*sets, "directions.type=states"], tmp_path / "s.h5")
    assert s.attrs["dir_type"] == "states" and w.attrs["dir_type"] == "weights"
    assert s.values["train_loss"][1] == pytest.approx(w.values["train_loss"][1], rel=1e-6)
    assert s.values["train_loss"][0] != pytest.approx(w.values["train_loss"][0], rel=1e-3)


def test_model_that_cannot_take_the_data(tmp_path):
    cfg = load_config(None, ["model.arch=digits_mlp", "model.kwargs={hidden=4}", "grid.x=-1:1:3"])
    job = prepare(cfg, tmp_path / "ok.h5")  # random init without checkpoint is allowed
    job.run()
    bad = tmp_path / "net.py"
    bad.write_text("from torch import nn\ndef net():\n    return nn.Linear(3, 2)\n")
    with pytest.raises(LandscapeError, match="cannot evaluate the train split"):
        prepare(load_config(None, [f"model.arch={bad}:net", "grid.x=-1:1:3"]), tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_bad_device_and_output(tmp_path):
    with pytest.raises(ConfigError, match="compute.device"):
        prepare(load_config(None, ["compute.device=tpu:7"]), tmp_path / "d.h5")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            prepare(load_config(None, ["compute.device=cuda:1"]), tmp_path / "d.h5")
    with pytest.raises(ConfigError, match="output folder does not exist"):
        prepare(load_config(None, []), tmp_path / "no" / "d.h5")


def test_weights_are_restored_after_a_run(tmp_path):
    cfg = load_config(None, [*MLP, "grid.x=-1:1:3"])
    job = prepare(cfg, tmp_path / "r.h5")
    before = [t.clone() for _, t in targets(job.landscape.model, "weights")]
    job.run()
    after = [t for _, t in targets(job.landscape.model, "weights")]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_overwrite_keeps_the_old_file_until_the_new_run_is_valid(tmp_path):
    out = tmp_path / "s.h5"
    run([*MLP, "grid.x=-1:1:3"], out)
    with pytest.raises(ConfigError):
        prepare(
            load_config(None, [*MLP, "grid.x=-1:1:5", "model.checkpoint=none.pt"]),
            out,
            overwrite=True,
        )
    assert read_surface(out).n_done == 3


def test_resume_needs_its_direction_file(tmp_path):
    out = tmp_path / "s.h5"
    sets = [*MLP, "grid.x=-1:1:3"]
    job = prepare(load_config(None, sets), out)
    points = job.points()
    next(points)
    points.close()
    directions_path(out).unlink()
    with pytest.raises(LandscapeError, match="is missing; restore it"):
        prepare(load_config(None, sets), out)


@pytest.mark.parametrize(("labels", "message"), [(10, "labels up to 10"), (-1, "negative label")])
def test_labels_outside_the_model_outputs_are_refused_in_one_line(labels, message):
    from engine.data import digits_splits
    from engine.directions import DirectionSet, random_direction
    from engine.landscape import Landscape
    from engine.models import build_model
    from engine.splits import Split

    m = build_model("digits_mlp", seed=0)
    s = digits_splits()["test"]
    y = s.y.clone()
    y[7] = labels
    ds = DirectionSet(
        random_direction(m, "weights", "filter", "biasbn", torch.Generator()), None, "weights"
    )
    land = Landscape(m, {"test": Split(s.x, y)}, ds, load_config(None, []), torch.device("cpu"))
    with pytest.raises(LandscapeError, match=message):
        land.check()
