"""Studies: the study file, the runner (skip, resume, refusals), the table, the command.

A tiny study (a 16-unit MLP on 200 digits, 2 epochs, grids of 3 to 5 points) runs end to end
once per module; the other tests check what differs from it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.errors import ConfigError, LandscapeError
from engine.formats import read_surface
from engine.study import load_study, run_study
from engine.study.runner import claim_folder
from tests.conftest import REPO
from tui_landscape.cli import app

TINY = {
    "name": "tiny",
    "seeds": [0],
    "factors": ["batch_size"],
    "base": {
        "set": {
            "model.arch": "digits_mlp",
            "model.kwargs": {"hidden": 16},
            "data.subset": 200,
            "train.epochs": 2,
            "train.lr": 0.05,
            "train.schedule": "constant",
            "train.weight_decay": 0.0,
            "compute.device": "cpu",
            "hessian.trace_samples": 4,
            "hessian.top_k": 1,
            "hessian.density_probes": 0,
        }
    },
    # x2d: 7 points within 0.35 of the centre, the fewest the curvature fit takes.
    "grid": {"x1d": "-1:1:5", "x2d": "-0.3:0.3:7", "y2d": "-1:1:3", "pca": "auto:3"},
    "measures": {"directions": 4, "samples": 2, "steps": 2},
    "recipe": {"converged_train_acc": 0.1},
    "members": [
        {"label": "bs16", "set": {"train.batch_size": 16}, "factors": {"batch_size": 16}},
        {"label": "bs64", "set": {"train.batch_size": 64}, "factors": {"batch_size": 64}},
    ],
    "pairs": [{"a": "bs16", "b": "bs64"}],
}
TINY["grid"]["interpolation"] = "0:1:3"


def tiny(**changes) -> dict:
    d = copy.deepcopy(TINY)
    d.update(changes)
    return d


def rows_of(folder: Path) -> list[dict]:
    return json.loads((folder / "table.json").read_text())["rows"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study") / "tiny"
    run_study(load_study(TINY), out)
    return out


def test_a_study_runs_every_stage_and_writes_the_table(finished):
    table = json.loads((finished / "table.json").read_text())
    assert table["format"] == "tui-landscape-study-table" and table["factors"] == ["batch_size"]
    assert [(r["member"], r["seed"], r["status"]) for r in table["rows"]] == [
        ("bs16", 0, "ok"),
        ("bs64", 0, "ok"),
    ]
    for r in table["rows"]:
        v = r["values"]
        assert v["gap"] == pytest.approx(v["test_error"] - v["train_error"])
        assert 0 <= v["train_error"] <= 1
        for k in (
            "curvature_filter",
            "curvature_raw",
            "lambda_max",
            "trace",
            "eig_ratio",
            "adaptive_sharpness",
            "average_sharpness",
            "basin_volume",
            "basin_volume_low",
        ):
            assert isinstance(v[k], float), k
        folder = finished / "members" / f"{r['member']}-s0"
        for name in ("surface_1d", "surface_2d", "surface_1d_raw", "surface_2d_raw", "pca"):
            s = read_surface(finished / r["files"][name])  # an ordinary surface file
            assert s.completed.all()
        raw = read_surface(folder / "surface_2d_raw.h5").provenance.config
        assert 'norm = "none"' in raw
        assert (folder / "train" / "outcome.json").is_file()
        m = json.loads((folder / "measures.json").read_text())
        assert m["params"]["adaptive_sharpness"]["rho"] == 0.05  # how each was measured
        assert m["params"]["adaptive_sharpness"]["steps"] == 2
    # Direction seeds are the replicate's: both members' maps drew the same directions.
    cfgs = [
        read_surface(finished / r["files"]["surface_2d"]).provenance.config for r in table["rows"]
    ]
    assert all("seed = 0" in c for c in cfgs)
    pair = table["pairs"][0]
    assert pair["status"] == "ok" and read_surface(finished / pair["file"]).completed.all()
    csv_head = (finished / "table.csv").read_text().splitlines()[0].split(",")
    assert csv_head[:5] == ["label", "seed", "batch_size", "status", "note"]
    meta = json.loads((finished / "study.json").read_text())
    assert meta["format"] == "tui-landscape-study" and meta["spec"]["name"] == "tiny"
    timing = json.loads((finished / "timing.json").read_text())
    assert timing["wall_seconds"] >= timing["jobs_seconds"] > 0


def test_a_rerun_skips_every_finished_stage(finished):
    events = []
    run_study(load_study(TINY), finished, on_event=events.append)
    assert {e.kind for e in events} == {"skip"}
    assert all(r["status"] == "ok" for r in rows_of(finished))


def test_killed_mid_way_and_resumed_gives_the_same_table(finished, tmp_path):
    out = tmp_path / "tiny"
    points = []

    def kill(e):  # Ctrl-C in the middle of the second member's 2D surface
        if e.kind == "point" and e.task.label == "bs64-s0 surface_2d":
            points.append(e.done)
            if len(points) == 4:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(load_study(TINY), out, on_event=kill)
    half = {r["member"]: r["status"] for r in rows_of(out)}
    assert half == {"bs16": "ok", "bs64": "pending"}
    resumed = []
    run_study(load_study(TINY), out, on_event=resumed.append)
    starts = [e for e in resumed if e.kind == "start"]
    assert starts[0].task.label == "bs64-s0 surface_2d" and starts[0].done >= 4  # resumed
    got, want = rows_of(out), rows_of(finished)
    # The same rows; the Hessian's numbers to 1e-6 (the HVP mode is the fastest one timed
    # on this run: forward- and reverse-over-reverse round differently), the rest exactly.
    strip = [{**r, "values": {}} for r in got], [{**r, "values": {}} for r in want]
    assert strip[0] == strip[1]
    for g, w in zip(got, want, strict=True):
        assert g["values"].keys() == w["values"].keys()
        assert g["values"] == pytest.approx(w["values"], rel=1e-6, abs=1e-9)
        exact = {k: v for k, v in w["values"].items() if k not in HESSIAN}
        assert {k: g["values"][k] for k in exact} == exact


HESSIAN = {"lambda_max", "lambda_min", "eig_ratio", "trace", "trace_se", "mean_ratio_map"}


def test_broken_member_files_are_made_again_or_fail_their_member_alone(finished, tmp_path):
    """Hand-broken ``outcome.json`` and ``measures.json`` are said and made again (the same
    row as before; the training reuses its finished run); a surface file replaced by a file
    that is not HDF5 fails its member alone, naming the file (tests/test_study_hostile.py
    has the cases that need no training)."""
    import shutil

    out = tmp_path / "tiny"
    shutil.copytree(finished, out)
    bs16, bs64 = out / "members" / "bs16-s0", out / "members" / "bs64-s0"
    (bs16 / "train" / "outcome.json").write_text("[]")
    (bs16 / "measures.json").write_text('{"values": [1]}')
    (bs64 / "surface_1d.h5").write_text("not HDF5")
    first, second = run_study(load_study(TINY), out).table["rows"]
    want = rows_of(finished)[0]
    assert first["status"] == "ok" and first["files"] == want["files"]
    assert first["values"] == pytest.approx(want["values"], rel=1e-6, abs=1e-9)
    assert second["status"] == "failed"
    assert second["note"] == f"surface_1d: {bs64.resolve() / 'surface_1d.h5'} is not an HDF5 file"


def test_an_invalid_member_is_refused_naming_member_and_key(tmp_path):
    d = tiny()
    d["members"][1]["set"] = {"train.lr": -1.0}
    with pytest.raises(ConfigError, match=r"member 'bs64'.*`train\.lr` > 0"):
        run_study(load_study(d), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything ran
    d["members"][1]["set"] = {"grid.x": "nonsense"}
    with pytest.raises(ConfigError, match=r"member 'bs64'.*grid\.x"):
        load_study(d)


def test_study_file_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"`members\[0\]\.colour`"):
        load_study(tiny(members=[{**TINY["members"][0], "colour": "red"}]))
    with pytest.raises(ConfigError, match=r"`stages` to be one of 'train'"):
        load_study(tiny(stages=["surface_3d"]))
    with pytest.raises(ConfigError, match=r"pairs\[0\]\.b"):
        load_study(tiny(pairs=[{"a": "bs16", "b": "bs32"}]))
    with pytest.raises(ConfigError, match="factors"):
        load_study(tiny(factors=["batch_size", "optimizer"]))


def test_a_folder_of_another_study_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "s"
    claim_folder(load_study(TINY), out, overwrite=False)
    other = load_study(TINY, ["seeds=[1]"])  # another study file (or --set) for this folder
    with pytest.raises(LandscapeError, match="another study file"):
        claim_folder(other, out, overwrite=False)
    (out / "members").mkdir()
    (out / "keep.txt").write_text("mine")
    assert claim_folder(other, out, overwrite=True) is False
    assert not (out / "members").exists() and (out / "keep.txt").read_text() == "mine"
    assert claim_folder(other, out, overwrite=False) is True  # now it is this study's
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "x.txt").write_text("")
    with pytest.raises(LandscapeError, match="holds no study"):
        claim_folder(other, plain, overwrite=False)


def test_a_diverged_member_is_recorded_and_the_others_go_on(tmp_path):
    d = tiny(stages=["surface_1d"], pairs=[])
    d["members"][0]["set"] = {"train.batch_size": 16, "train.lr": 1e12}
    table = run_study(load_study(d), tmp_path / "s").table
    status = {r["member"]: r["status"] for r in table["rows"]}
    assert status == {"bs16": "diverged", "bs64": "ok"}
    assert "surface_1d" not in table["rows"][0]["files"]  # no map of a diverged member
    assert "surface_1d" in table["rows"][1]["files"]


def test_the_command_refuses_a_bad_member_in_one_line(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(
        'name = "x"\n[[members]]\nlabel = "m"\nset = { "train.epochs" = 0 }\n', encoding="utf-8"
    )
    r = CliRunner().invoke(app, ["study", str(f), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0
    assert "member 'm'" in r.output and "train.epochs" in r.output
    assert "Traceback" not in r.output


SHIPPED = sorted((REPO / "sample_configs" / "studies").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_study_parses_and_plans(path, tmp_path):
    from engine.study import plan

    s = load_study(path)
    tasks = plan(s, tmp_path / "out")
    assert len(tasks) >= len(s.spec.members) * len(s.spec.seeds)


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        ({"hessian_map": False}, ("0:0:1", "")),
        ({"hessian_map": True}, ("-0.3:0.3:7", "-1:1:3")),
        ({"hessian_map": True, "hessian_grid": "-1:1:3"}, ("-1:1:3", "-1:1:3")),
    ],
)
def test_the_hessian_stage_maps_the_centre_the_2d_grid_or_its_own(grid, expected, tmp_path):
    from engine.study import plan

    d = tiny()
    d["grid"] = {**d["grid"], **grid}
    task = next(t for t in plan(load_study(d), tmp_path) if t.stage.name == "hessian")
    assert (task.cfg.grid.x, task.cfg.grid.y) == expected


def test_only_the_named_seeds_get_the_hessian_map(tmp_path):
    from engine.study import plan

    d = tiny(seeds=[0, 1])
    d["grid"] = {**d["grid"], "hessian_map": True, "hessian_grid": "-1:1:3"}
    d["grid"]["hessian_map_seeds"] = [1]
    grids = {
        t.seed: t.cfg.grid.x
        for t in plan(load_study(d), tmp_path)
        if t.stage.name == "hessian" and t.member == "bs16"
    }
    assert grids == {0: "0:0:1", 1: "-1:1:3"}
    d["grid"]["hessian_map_seeds"] = [2]
    with pytest.raises(ConfigError, match=r"grid.hessian_map_seeds.*\[2\]"):
        load_study(d)


def test_a_bad_hessian_grid_is_refused_naming_the_member(tmp_path):
    from engine.study import plan

    d = tiny()
    d["grid"] = {**d["grid"], "hessian_map": True, "hessian_grid": "-1:1"}
    with pytest.raises(ConfigError, match="bs16.*grid"):
        plan(load_study(d), tmp_path)


def test_dry_run_lists_stages_and_an_estimate(tmp_path):
    f = tmp_path / "tiny.toml"
    import tomli_w

    f.write_text(tomli_w.dumps(TINY))
    r = CliRunner().invoke(app, ["study", str(f), "--out", str(tmp_path / "o"), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "bs16-s0 surface_2d" in r.output and "9 points" in r.output
    assert "estimated" in r.output
    assert not (tmp_path / "o").exists()  # a dry run writes nothing


def test_the_command_names_its_files_under_the_folder_as_given(tmp_path, monkeypatch):
    import tomli_w

    monkeypatch.chdir(tmp_path)
    Path("tiny.toml").write_text(tomli_w.dumps(tiny(stages=["surface_1d"], pairs=[])))
    r = CliRunner().invoke(app, ["study", "tiny.toml", "--out", "studies/t"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert any(s.startswith(f"Table: {Path('studies/t/table.csv')} (2 rows") for s in lines)
    assert f"Report: {Path('studies/t/report.md')}" in lines  # as README shows, not resolved
    assert (tmp_path / "studies" / "t" / "report.md").is_file()


def test_tl_study_runs_a_study_file_and_returns_its_table(tmp_path):
    import tomli_w

    import tui_landscape as tl

    f = tmp_path / "tiny.toml"
    f.write_text(tomli_w.dumps(tiny(stages=["surface_1d"], pairs=[])))
    table = tl.study(f, tmp_path / "out", overrides=["seeds=[3]"], progress=False)
    assert [(r["member"], r["seed"], r["status"]) for r in table["rows"]] == [
        ("bs16", 3, "ok"),
        ("bs64", 3, "ok"),
    ]
    assert json.loads((tmp_path / "out" / "study.json").read_text())["overrides"] == ["seeds=[3]"]


def test_a_folder_in_use_by_another_study_process_is_refused(tmp_path):
    from engine.formats import acquire_lock

    out = tmp_path / "s"
    out.mkdir()
    held = acquire_lock(out / "study.json")  # as a study running there holds it
    try:
        with pytest.raises(LandscapeError, match="another process"):
            run_study(load_study(tiny(stages=["surface_1d"], pairs=[])), out)
    finally:
        held.close(remove=True)
    assert list(out.iterdir()) == []  # nothing was written


def test_a_failing_stage_marks_its_member_failed_and_a_rerun_tries_again(tmp_path, monkeypatch):
    import engine.study.runner as runner

    real = runner._measures

    def broken(task, study, shared):
        if task.member == "bs16":
            raise RuntimeError("disk on fire")
        real(task, study, shared)

    d = tiny(stages=["measures"], pairs=[])
    monkeypatch.setattr(runner, "_measures", broken)
    table = run_study(load_study(d), tmp_path / "s").table
    first, second = table["rows"]
    assert (first["status"], second["status"]) == ("failed", "ok")
    assert first["note"] == "measures: RuntimeError: disk on fire"
    monkeypatch.setattr(runner, "_measures", real)
    table = run_study(load_study(d), tmp_path / "s").table
    assert [r["status"] for r in table["rows"]] == ["ok", "ok"]


def test_a_member_that_did_not_train_keeps_that_status_when_a_later_stage_fails(
    tmp_path, monkeypatch
):
    import engine.study.runner as runner

    def broken(task, study, shared):
        raise RuntimeError("the path lies on one line")

    # Two epochs stop short of 100% train accuracy: every member is not_converged.
    d = tiny(stages=["measures"], pairs=[], recipe={"converged_train_acc": 1.0})
    monkeypatch.setattr(runner, "_measures", broken)
    rows = run_study(load_study(d), tmp_path / "s").table["rows"]
    assert [r["status"] for r in rows] == ["not_converged", "not_converged"]
    assert "measures: RuntimeError: the path lies on one line" in rows[0]["note"]
    assert rows[0]["note"].index("train") < rows[0]["note"].index("measures:")


def test_a_pairs_interpolation_recalibrates_bn_past_its_ends(tmp_path):

    import torch

    from engine.study.stages import STAGES, StageContext

    keys = STAGES.get("interpolation").keys
    spec = load_study(tiny()).spec
    with_bn, without = tmp_path / "bn.pt", tmp_path / "mlp.pt"
    torch.save(torch.nn.Sequential(torch.nn.BatchNorm1d(3)).state_dict(), with_bn)
    torch.save(torch.nn.Linear(3, 2).state_dict(), without)
    for ck, bn in ((with_bn, "recalibrate"), (without, "keep"), (tmp_path / "none.pt", "keep")):
        ctx = StageContext(0, tmp_path, ck, tmp_path / "b.pt")  # the line starts at ck
        assert keys(spec, ctx)["compute.bn"] == bn
