"""The study analysis (engine/study/analysis.py) on a constructed table (read by
engine/study/table.py): taus against scipy, intervals over seeds, only members that reached a
minimizer, the claims' verdicts, the files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from scipy import stats

from engine.errors import ConfigError, LandscapeError
from engine.study import analysis as A
from engine.study.table import is_study_folder, read_table
from tests.study_folder import make_study, values_of

N_BOOT = 40  # enough to check the interval's plumbing; its statistics are engine.correlation's


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_study(tmp_path_factory.mktemp("study"), surfaces=False)


def test_table_is_read_with_its_rows_and_flagged_members(study: Path) -> None:
    t = read_table(study)
    assert t.factors == ("batch_size", "weight_decay") and t.target == "gap"
    assert len(t.rows) == 14 and len(t.ok_rows()) == 12
    assert {r.status for r in t.rows if not r.ok} == {"diverged", "not_converged"}
    assert t.find("bs16-wd0-s1").seed == 1
    with pytest.raises(ConfigError, match="several seeds"):
        t.find("bs16-wd0")
    assert t.find("bs512-wd0").status == "diverged"  # one seed: its bare name will do
    assert "basin_volume_low" not in A.measure_names(t) and "gap" not in A.measure_names(t)


def test_tau_equals_scipy_over_the_ok_members_only(study: Path) -> None:
    t = read_table(study)
    corr = {c.measure: c for c in A.correlate(t, n_boot=0)}
    for m in ("curvature_filter", "curvature_raw", "lambda_max", "basin_width_filter"):
        x, y = values_of(study, m)
        assert corr[m].tau == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
        assert corr[m].members == 12 and corr[m].seeds == 3
    # The diverged member (curvature 1e6, gap 0) would have pulled the tau below 1.
    assert corr["curvature_filter"].tau == pytest.approx(1.0)
    assert math.isnan(corr["curvature_filter"].low)  # n_boot=0: no interval asked for
    # A measure the same for every member has no tau, and says why.
    assert math.isnan(corr["mean_ratio_map"].tau)
    assert "same for every member" in corr["mean_ratio_map"].reason


def test_interval_is_the_seed_bootstrap_of_engine_correlation(study: Path) -> None:
    from engine.correlation import bootstrap_interval, kendall_tau

    t = read_table(study)
    c = next(c for c in A.correlate(t, n_boot=N_BOOT, seed=3) if c.measure == "curvature_raw")
    flat = [{"seed": r.seed, **r.values} for r in t.ok_rows()]
    want = bootstrap_interval(
        flat,
        lambda rs: kendall_tau([r["curvature_raw"] for r in rs], [r["gap"] for r in rs]),
        groups_key="seed", n=N_BOOT, level=0.95, seed=3,
    )  # fmt: skip
    assert (c.low, c.high) == pytest.approx(want)
    assert c.low <= c.tau <= c.high and c.excludes_zero  # a perfect anti-correlation
    assert c.granulated["batch_size"] == pytest.approx(-1.0)
    assert c.granulated["psi"] == pytest.approx(-1.0)
    assert c.psi_low <= c.psi_high < 0


def test_one_seed_gives_a_tau_without_an_interval(tmp_path: Path) -> None:
    t = read_table(make_study(tmp_path, seeds=(0,), surfaces=False))
    c = next(c for c in A.correlate(t, n_boot=N_BOOT) if c.measure == "curvature_filter")
    assert c.tau == pytest.approx(1.0) and math.isnan(c.low) and c.reason == "one seed: no interval"
    v = {v.claim: v for v in A.judge(t, [c], n_boot=N_BOOT)}
    assert v["small-batch-flatter"].outcome == "not enough members/seeds"
    assert "1 seed(s), an interval over seeds needs 3" in v["small-batch-flatter"].line


def test_two_seeds_that_agree_are_not_enough_for_a_verdict(tmp_path: Path) -> None:
    t = read_table(make_study(tmp_path, seeds=(0, 1), surfaces=False))
    corr = A.correlate(t, n_boot=N_BOOT)
    assert next(c for c in corr if c.measure == "curvature_filter").excludes_zero
    v = {v.claim: v for v in A.judge(t, corr, n_boot=N_BOOT)}
    assert v["flatness-generalizes"].outcome == "not enough members/seeds"
    assert "2 seed(s), an interval over seeds needs 3" in v["flatness-generalizes"].line


def test_claims_say_reproduces_does_not_and_not_tested(study: Path, tmp_path: Path) -> None:
    t = read_table(study)
    corr = A.correlate(t, n_boot=N_BOOT)
    v = {v.claim: v for v in A.judge(t, corr, n_boot=N_BOOT)}
    assert set(v) == set(A.CLAIMS)
    small = v["small-batch-flatter"]
    assert small.outcome == "reproduces" and small.excludes_zero and small.tau > 0
    assert small.factor == "batch_size" and small.measure == "curvature_filter"
    assert "reproduces" in small.line and "[" in small.line
    assert v["wider-flatter"].outcome == "not tested"
    assert "no factor width" in v["wider-flatter"].line
    assert v["flatness-generalizes"].outcome == "reproduces"
    # The sign turned around: larger batch flatter. Honest: does not reproduce.
    doc = json.loads((study / "table.json").read_text())
    for r in doc["rows"]:
        r["values"]["curvature_filter"] = 10.0 - r["values"]["curvature_filter"]
    (tmp_path / "table.json").write_text(json.dumps(doc))
    t2 = read_table(tmp_path)
    v2 = {v.claim: v for v in A.judge(t2, A.correlate(t2, n_boot=N_BOOT), n_boot=N_BOOT)}
    assert v2["small-batch-flatter"].outcome == "does not reproduce"
    assert "opposite" in v2["small-batch-flatter"].line
    assert v2["flatness-generalizes"].outcome == "does not reproduce"


def test_a_measure_where_larger_is_flatter_expects_the_other_sign(tmp_path: Path) -> None:
    doc = json.loads((make_study(tmp_path / "a", surfaces=False) / "table.json").read_text())
    for r in doc["rows"]:
        r["values"].pop("curvature_filter")  # the claim falls back to the basin's width
    (tmp_path / "table.json").write_text(json.dumps(doc))
    t = read_table(tmp_path)
    v = {v.claim: v for v in A.judge(t, A.correlate(t, n_boot=N_BOOT), n_boot=N_BOOT)}
    small = v["small-batch-flatter"]
    assert small.measure == "basin_width_filter" and small.tau < 0
    assert small.outcome == "reproduces" and "expected < 0" in small.line


def test_correlation_files_are_written_and_read_back(tmp_path: Path) -> None:
    d = make_study(tmp_path, surfaces=False)
    table, corr, _ = A.analyse(d, n_boot=N_BOOT)
    doc = json.loads((d / A.CORRELATION_JSON).read_text())  # strict JSON: NaN as null
    by = {c["measure"]: c for c in doc["correlations"]}
    assert by["mean_ratio_map"]["tau"] is None
    assert by["curvature_filter"]["tau"] == pytest.approx(1.0)
    assert [c["claim"] for c in doc["claims"]] == list(A.CLAIMS)
    assert A.read_correlation(table) == doc
    with (d / A.CORRELATION_CSV).open() as f:
        rows = list(csv.DictReader(f))
    assert [r["measure"] for r in rows] == [c.measure for c in corr]
    assert {"tau_batch_size", "tau_weight_decay", "psi"} <= set(rows[0])
    # A changed table makes the saved correlation stale.
    (d / "table.json").write_text((d / "table.json").read_text() + "\n")
    assert A.read_correlation(read_table(d)) is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not JSON"),
        ('{"format": "tui-landscape-study", "version": 1}', "format 'tui-landscape-study'"),
        ('[1, 2]', "format 'list'"),
        ('{"format": "tui-landscape-study-table", "version": 9, "rows": []}', "version 9"),
        ('{"format": "tui-landscape-study-table", "version": 1, "rows": [{"member": "a", '
         '"seed": 0, "status": "fine"}]}', "rows[0].status"),
        ('{"format": "tui-landscape-study-table", "version": 1, "factors": ["bs"], "rows": '
         '[{"member": "a", "seed": 0, "status": "ok", "factors": {}}]}', "lacks bs"),
        ('{"format": "tui-landscape-study-table", "version": 1, "rows": [{"member": "a", '
         '"seed": 0, "status": "ok", "values": {"gap": "x"}}]}', "values.gap"),
    ],
)  # fmt: skip
def test_a_foreign_or_corrupt_table_is_refused_in_one_line(tmp_path: Path, text, why) -> None:
    (tmp_path / "table.json").write_text(text)
    with pytest.raises(LandscapeError) as e:
        read_table(tmp_path)
    assert why in str(e.value) and "table.json" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_folder_without_a_table_is_a_usage_error(tmp_path: Path) -> None:
    assert not is_study_folder(tmp_path)
    with pytest.raises(ConfigError, match="no study table"):
        read_table(tmp_path)


def test_skip_connections_claim_on_a_yes_no_factor(tmp_path: Path) -> None:
    """A yes/no factor orders as 0/1; a measure where sharpness does not apply (null
    ``sharper_is_larger``, as the runner writes the ratio's) keeps the claim's sign."""
    rows = [
        {"member": f"resnet56{'' if skip else '-noshort'}", "seed": seed,
         "factors": {"shortcuts": skip}, "status": "ok",
         "values": {"gap": 0.1 - 0.05 * skip + 0.001 * seed,
                    "mean_ratio_map": (0.05 if skip else 0.4) + 0.01 * seed},
         "files": {"checkpoint": "members/x/train/model_5.pt"}}
        for seed in (0, 1, 2) for skip in (True, False)
    ]  # fmt: skip
    measures = {"mean_ratio_map": {"doc": "", "sharper_is_larger": None}}
    doc = {"format": "tui-landscape-study-table", "version": 1, "name": "depth",
           "factors": ["shortcuts"], "target": "gap", "measures": measures,
           "rows": rows}  # fmt: skip
    (tmp_path / "table.json").write_text(json.dumps(doc))
    t = read_table(tmp_path)
    assert t.measures["mean_ratio_map"].sharper_is_larger is None
    v = {v.claim: v for v in A.judge(t, A.correlate(t, n_boot=N_BOOT), n_boot=N_BOOT)}
    skip = v["skip-convex"]
    assert skip.factor == "shortcuts" and skip.tau == pytest.approx(-1.0)
    assert skip.outcome == "reproduces" and "expected < 0" in skip.line


def test_a_claim_names_the_groups_it_was_tested_on(tmp_path: Path) -> None:
    """Deep nets without shortcuts that never trained leave depth 20 alone: the verdict says
    so, so that nobody reads it as a claim about depth 56."""
    rows = [
        {"member": f"r{depth}{'' if skip else '-noshort'}", "seed": seed,
         "factors": {"depth": depth, "shortcuts": skip},
         "status": "ok" if skip or depth == 20 else "not_converged",
         "values": {"gap": 0.05, "surface_ratio_filter": 0.01 if skip else 0.2 + 0.01 * seed},
         "files": {}}
        for seed in (0, 1, 2) for depth in (20, 56) for skip in (True, False)
    ]  # fmt: skip
    measures = {"surface_ratio_filter": {"doc": "", "sharper_is_larger": None}}
    doc = {"format": "tui-landscape-study-table", "version": 1, "name": "depth",
           "factors": ["depth", "shortcuts"], "target": "gap", "measures": measures,
           "rows": rows}  # fmt: skip
    (tmp_path / "table.json").write_text(json.dumps(doc))
    t = read_table(tmp_path)
    skip = {v.claim: v for v in A.judge(t, A.correlate(t, n_boot=N_BOOT), n_boot=N_BOOT)}[
        "skip-convex"
    ]
    assert "only shortcuts varies (depth=20)" in skip.line and skip.members == 9
