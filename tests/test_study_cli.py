"""`info`, `plot` and `compare` on a study folder (constructed: tests/study_folder.py), through
the Typer runner: the members and taus, a member's file, a factor's members on one scale."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.study.analysis import analyse
from tests.study_folder import make_study
from tui_landscape.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_study(tmp_path_factory.mktemp("study"), seeds=(0, 1))


def test_info_lists_members_and_taus(study: Path) -> None:
    r = invoke("info", study)
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "8 of 10 members reached a minimizer" in out
    for label in ("bs16-wd0-s0", "bs128-wd5-s1", "bs512-wd0-s0"):
        assert label in out
    assert "diverged" in out and "not_converged" in out
    assert "curvature_filter" in out and "+1.00" in out
    assert "no intervals: correlation.json is missing" in out


def test_info_shows_the_saved_intervals_and_verdicts(tmp_path: Path) -> None:
    d = make_study(tmp_path, seeds=(0, 1), surfaces=False)
    analyse(d, n_boot=20)
    r = invoke("info", d)
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "from correlation.json" in out and "[+1.00, +1.00]" in out
    assert "small batch gives flatter minima" in out


def test_info_refuses_a_corrupt_table_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "table.json").write_text('{"format": "something-else"}')
    r = invoke("info", tmp_path)
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "not a readable study table" in r.stderr


def test_plot_without_a_member_lists_members_and_stages(study: Path) -> None:
    r = invoke("plot", study)
    assert r.exit_code == 2 and r.stderr.startswith("error: ")
    assert (
        "--member (one of bs16-wd0-s0," in r.stderr
        and "surface_1d, surface_2d, hessian" in r.stderr
    )


def test_plot_draws_a_members_stage(study: Path) -> None:
    r = invoke("plot", study, "--member", "bs128-wd0-s1", "--width", "60", "--height", "12")
    assert r.exit_code == 0, r.output
    # The constructed maps are coarse (9 x 9): the fit within 0.35 says why it has no number.
    assert "surface_2d.h5: train_loss" in r.stdout and "curvature x n/a" in r.stdout
    assert "finite points within 0.35 of the minimum" in r.stdout
    assert r.stderr.startswith("bs128-wd0-s1: ") and "bs128-wd0-s1/surface_2d.h5" in r.stderr
    r = invoke("plot", study, "--member", "bs128-wd0-s1", "--stage", "surface_1d", "--width", "60")
    assert r.exit_code == 0 and "surface_1d.h5: train_loss" in r.stdout
    r = invoke("plot", study, "--member", "bs128-wd0-s1", "--stage", "pca")
    assert r.exit_code == 2 and "has no 'pca' file; its stages: surface_1d" in r.stderr
    r = invoke("plot", study, "--member", "nobody")
    assert r.exit_code == 2 and "no member 'nobody'" in r.stderr


def test_study_options_need_a_study_folder(study: Path) -> None:
    f = study / "members" / "bs16-wd0-s0" / "surface_2d.h5"
    r = invoke("plot", f, "--member", "bs16-wd0-s0")
    assert r.exit_code == 2 and "--member" in r.stderr
    r = invoke("compare", f, f, "--factor", "batch_size")
    assert r.exit_code == 2 and "--factor" in r.stderr


def test_compare_a_factors_members(study: Path, tmp_path: Path) -> None:
    r = invoke("compare", study)
    assert r.exit_code == 2 and "--factor (one of batch_size, weight_decay)" in r.stderr
    r = invoke("compare", study, "--factor", "batch_size", "--width", "60", "--height", "10")
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    # The group of the first ok member (seed 0, weight decay 0), each labelled as a member.
    assert "bs16-wd0-s0 (batch_size=16)" in out and "bs128-wd0-s0 (batch_size=128)" in out
    assert "bs16-wd5" not in out and "bs512" not in out  # another group; not a minimizer
    assert "flattest: bs16-wd0-s0 (batch_size=16)" in out
    assert "left out (not compared as minimizers): bs512-wd0-s0 (diverged)" in r.stderr
    r = invoke("compare", study, "--factor", "weight_decay", "--member", "bs128-wd0-s1",
               "--width", "60", "--height", "10")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "bs128-wd5-s1 (weight_decay=0.0005)" in " ".join(r.stdout.split())
    r = invoke("compare", study, "--factor", "depth")
    assert r.exit_code == 2 and "Expected `--factor` to be one of batch_size" in r.stderr


def test_compare_exports_a_factor(study: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "bs.png"
    r = invoke("compare", study, "--factor", "batch_size", "--export", out)
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_tui_refuses_a_corrupt_study_folder_before_the_app_starts(tmp_path: Path) -> None:
    (tmp_path / "table.json").write_text("{not json")
    r = invoke("tui", tmp_path)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: ") and "not JSON" in r.stderr and r.stderr.count("\n") == 1


def test_info_config_prints_the_study_file(tmp_path: Path) -> None:
    study = make_study(tmp_path, seeds=(0,), surfaces=False)
    r = invoke("info", study, "--config")
    assert r.exit_code == 2 and "holds no study.toml" in r.stderr
    (study / "study.toml").write_text('name = "tiny"\nseeds = [0, 1]\n')
    r = invoke("info", study, "--config")
    assert r.exit_code == 0 and r.stdout == 'name = "tiny"\nseeds = [0, 1]\n'
