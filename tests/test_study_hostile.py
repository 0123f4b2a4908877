"""Studies against hostile input: study files, study folders and the files in them that their
authors did not write, or wrote by hand.

Each bad input ends in one line naming the file, the member or the key, and a non-zero exit;
a member's own file that is not what its stage writes is said and made again, and a member
whose stage fails is recorded as failed while the others go on (tests/test_study.py runs those
end to end). None of these tests trains: the broken files are written directly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re

import pytest
from typer.testing import CliRunner

from engine.errors import ConfigError, LandscapeError
from engine.study import load_study, plan, run_study
from engine.study.analysis import read_correlation
from engine.study.runner import claim_folder, member_folder, row, task_state
from engine.study.table import read_table
from tests.study_folder import make_study
from tests.test_study import TINY, tiny
from tests.test_tui import sync, wait_for
from tui_landscape.cli import app

runner = CliRunner()


def one_error_line(r, code: int) -> str:
    """The command's single ``error:`` line, after checking the exit code and the rest."""
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


# --- the study file ----------------------------------------------------------------------------


def _set(path: str, value):
    """A change of the TINY study: ``path`` as 'members.1.factors' (list indices as digits)."""

    def change(d: dict) -> dict:
        node, keys = d, path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        last = keys[-1]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
        return d

    return change


STUDY_CASES = [
    ("unknown key", _set("members.0.colour", "red"), [], r"`members\[0\]\.colour`"),
    ("seeds not ints", _set("seeds", ["a"]), [], r"`seeds\[0\]` to be an integer"),
    ("seeds empty", _set("seeds", []), [], r"`seeds` to be distinct integers"),
    ("seeds negative", _set("seeds", [-1]), [], r"`seeds` to be distinct integers"),
    ("no members", _set("members", []), [], "at least one member"),
    ("members not tables", _set("members", [1]), [], r"`members` to be an array of tables"),
    ("duplicate labels", _set("members.1.label", "bs16"), [], "'bs16' is used twice"),
    ("label a path", _set("members.1.label", "../x"), [], r"`members\[1\]\.label`"),
    ("pair of an unknown member", _set("pairs.0.b", "bs32"), [], r"`pairs\[0\]\.b`.*'bs32'"),
    ("pair of one member", _set("pairs.0.b", "bs16"), [], r"`pairs\[0\]` to join two"),
    ("factor missing", _set("members.1.factors", {}), [], r"'bs64': expected `factors`"),
    ("factor value a table", _set("members.1.factors.batch_size", {"a": 1}), [],
     r"`members\[1\]\.factors\.batch_size` to be a number, a string or true/false"),
    ("factors repeated", _set("factors", ["batch_size", "batch_size"]), [], "distinct"),
    ("name with control characters", _set("name", "a\x1b[2J"), [], r"`name` to be printable"),
    ("unknown stage", _set("stages", ["surface_3d"]), [], r"`stages` to be one of"),
    ("unknown target", _set("target", "beauty"), [], r"`target` to be one of"),
    ("preset that does not exist", _set("members.1.preset", "no_such"), [],
     r"^member 'bs64': preset 'no_such' not found"),
    ("config that does not exist", _set("members.1.config", "nope.toml"), [],
     r"^member 'bs64': config file not found"),
    ("member config invalid", _set("members.1.set", {"train.optimizer": "nope"}), [],
     r"^member 'bs64': Expected `train\.optimizer` to be one of"),
    ("member key unknown", _set("members.1.set", {"train.colour": 1}), [],
     r"^member 'bs64': Unknown config key `train\.colour`"),
    ("member key below a value", _set("members.1.set", {"train.lr.x": 1}), [],
     r"^member 'bs64': Cannot set `train\.lr\.x`"),
    ("unknown architecture", _set("members.1.set", {"model.arch": "nonet"}), [],
     r"^member 'bs64': Unknown architecture 'nonet' in `model\.arch`"),
    ("--set without a key", lambda d: d, ["=1"], r"`--set` as 'key=value'"),
    ("--set of a member config", lambda d: d, ["base.set.train.lr=abc"],
     r"^member 'bs16': Expected `train\.lr` to be a number"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "overrides", "match"),
    [c[1:] for c in STUDY_CASES],
    ids=[c[0] for c in STUDY_CASES],
)
def test_a_bad_study_file_is_refused_in_one_line_before_anything_runs(
    tmp_path, change, overrides, match
):
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as e:
        plan(load_study(change(tiny()), overrides, root=tmp_path), out)
    assert re.search(match, str(e.value)), str(e.value)
    assert "\n" not in str(e.value)
    assert not out.exists()


FILES = {
    "syntax": ("name = = 1\n", "is not valid TOML"),
    "binary": (b"\xff\xfe\x00\x80", "Cannot read study file"),
    "member config invalid": (
        'name = "x"\n[[members]]\nlabel = "m"\nset = { "train.epochs" = 0 }\n',
        "member 'm': Expected `train.epochs` >= 1",
    ),
}


@pytest.mark.parametrize("case", list(FILES))
def test_the_command_says_a_bad_study_file_in_one_line(tmp_path, case):
    text, what = FILES[case]
    f = tmp_path / "s.toml"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    r = runner.invoke(app, ["study", str(f), "--out", str(tmp_path / "o"), "--dry-run"])
    assert what in one_error_line(r, 2)
    r = runner.invoke(app, ["study", str(tmp_path / "none.toml"), "--dry-run"])
    assert "Study file not found" in one_error_line(r, 2)


# --- the study folder --------------------------------------------------------------------------

RECORDS = {
    "truncated": ('{"format": "tui-landscape-study", "ver', "not JSON"),
    "not an object": ("[1, 2]", "format 'list'"),
    "another format": ('{"format": "tui-landscape-table"}', "format 'tui-landscape-table'"),
    "newer version": ('{"format": "tui-landscape-study", "version": 99}', "version 99"),
}


@pytest.mark.parametrize("case", list(RECORDS))
def test_a_study_json_that_is_no_study_record_is_refused_unless_overwrite(tmp_path, case):
    text, why = RECORDS[case]
    out = tmp_path / "s"
    out.mkdir()
    (out / "study.json").write_text(text)
    study = load_study(TINY)
    with pytest.raises(LandscapeError) as e:
        claim_folder(study, out, overwrite=False)
    msg = str(e.value)
    assert f"{out / 'study.json'} is not a study record: {why}" in msg and "--overwrite" in msg
    assert "\n" not in msg
    assert claim_folder(study, out, overwrite=True) is False  # replaced: now this study's
    assert claim_folder(study, out, overwrite=False) is True


def test_dry_run_notes_a_study_json_that_is_no_study_record(tmp_path):
    import tomli_w

    f = tmp_path / "s.toml"
    f.write_text(tomli_w.dumps(tiny(stages=["surface_1d"], pairs=[])))
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "study.json").write_text("[1]")
    r = runner.invoke(app, ["study", str(f), "--out", str(tmp_path / "o"), "--dry-run"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "study.json is not a study record (format 'list'" in out
    assert "a run would be refused without --overwrite" in out


def test_a_study_folder_that_is_a_file_is_one_line(tmp_path):
    import tui_landscape as tl

    f = tmp_path / "afile"
    f.write_text("mine")
    with pytest.raises(LandscapeError, match="is a file, not a study folder"):
        run_study(load_study(TINY), f)
    with pytest.raises(LandscapeError, match="cannot make the study folder"):
        run_study(load_study(TINY), f / "sub")
    study = tmp_path / "s.toml"
    import tomli_w

    study.write_text(tomli_w.dumps(TINY))
    with pytest.raises(LandscapeError, match="is a file, not a study folder"):
        tl.study(study, f, progress=False)
    assert f.read_text() == "mine"


# --- a member's files: made again where they are not what the stage writes ---------------------

BROKEN = {  # file in the member folder -> its text
    "outcome truncated": ("train/outcome.json", '{"format": "tui-landscape-train-outc'),
    "outcome not an object": ("train/outcome.json", "[]"),
    "outcome without its keys": (
        "train/outcome.json",
        '{"format": "tui-landscape-train-outcome", "version": 1, "outcome": {"lr": 0.05}}',
    ),
    "outcome with text numbers": (
        "train/outcome.json",
        '{"format": "tui-landscape-train-outcome", "version": 1, "outcome": {"checkpoint": '
        '"lr-0.05/model_2.pt", "lr": 0.05, "epochs": 2, "train_loss": "low", "train_acc": 1, '
        '"test_loss": 1, "test_acc": 1, "status": "ok"}}',
    ),
    "outcome checkpoint outside": (
        "train/outcome.json",
        '{"format": "tui-landscape-train-outcome", "version": 1, "outcome": {"checkpoint": '
        '"/etc/passwd", "lr": 0.05, "epochs": 2, "train_loss": 1, "train_acc": 1, '
        '"test_loss": 1, "test_acc": 1, "status": "ok"}}',
    ),
    "measures truncated": ("measures.json", '{"values": {"gap"'),
    "measures values a list": ("measures.json", '{"values": [1]}'),
    "measures values text": ("measures.json", '{"values": {"gap": "x"}}'),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_member_file_that_is_not_its_stages_is_said_and_made_again(tmp_path, case, caplog):
    rel, text = BROKEN[case]
    study = load_study(tiny(stages=["measures"], pairs=[]))
    out = tmp_path / "s"
    folder = member_folder(out.resolve(), "bs16", 0)
    (folder / rel).parent.mkdir(parents=True)
    (folder / rel).write_text(text)
    task = next(t for t in plan(study, out) if t.member == "bs16" and rel.startswith(t.stage.file))
    with caplog.at_level(logging.WARNING, logger="engine.study.runner"):
        assert task_state(task) == "todo"
    assert f"{folder / rel} is not a readable" in caplog.text
    got = row(study, out.resolve(), "bs16", 0, ["train", "measures"])
    assert got["status"] == "pending" and got["values"] == {}  # as if the file were not there


def test_an_outcome_of_a_newer_version_is_refused_naming_it(tmp_path):
    out = tmp_path / "s"
    f = member_folder(out.resolve(), "bs64", 0) / "train" / "outcome.json"
    f.parent.mkdir(parents=True)
    f.write_text('{"format": "tui-landscape-train-outcome", "version": 9, "outcome": {}}')
    with pytest.raises(LandscapeError) as e:
        run_study(load_study(tiny(stages=["measures"], pairs=[])), out)
    assert str(e.value) == (
        f"{f} was written by a newer tui-landscape (version 9); this one reads up to 1"
    )


# --- table.json, correlation.json, and the readers of a study folder ---------------------------

GOOD_ROW = {"member": "a", "seed": 0, "status": "ok", "factors": {"bs": 16}, "values": {},
            "files": {"surface_2d": "members/a-s0/surface_2d.h5"}}  # fmt: skip


def _table(**change) -> str:
    doc = {"format": "tui-landscape-study-table", "version": 1, "name": "t", "factors": ["bs"],
           "target": "gap", "measures": {}, "rows": [GOOD_ROW]}  # fmt: skip
    return json.dumps(doc | change)


def _row(**change) -> str:
    return _table(rows=[GOOD_ROW | change])


TABLES = {
    "truncated": (_table()[:60], "not JSON"),
    "not JSON": ("hello", "not JSON"),
    "not an object": ("[1]", "format 'list'"),
    "another format": (_table(format="x"), "format 'x'"),
    "newer version": (_table(version=2), "version 2; this tool reads 1 to 1"),
    "version 0": (_table(version=0), "version 0"),
    "version as text": (_table(version="1"), "version '1'"),
    "rows missing": (json.dumps({"format": "tui-landscape-study-table", "version": 1}), "`rows`"),
    "row not a table": (_table(rows=[1]), "`rows[0]` must be a table"),
    "row without member": (_table(rows=[{"seed": 0, "status": "ok"}]), "`rows[0].member`"),
    "seed as text": (_row(seed="0"), "`rows[0].seed` must be an integer"),
    "unknown status": (_row(status="great"), "`rows[0].status` must be one of"),
    "value as text": (_row(values={"gap": "big"}), "`rows[0].values.gap` must be a number"),
    "factor missing": (_row(factors={}), "`rows[0].factors` lacks bs"),
    "factor a table": (_row(factors={"bs": {"a": 1}}), "`rows[0].factors.bs` must be a number"),
    "note a number": (_row(note=5), "`rows[0].note` must be a string"),
    "file a number": (_row(files={"surface_2d": 5}), "`rows[0].files.surface_2d` must be a path"),
    "rows repeated": (_table(rows=[GOOD_ROW, GOOD_ROW]), "`rows[1]` repeats member 'a' seed 0"),
    "measures a list": (_table(measures=[1]), "`measures` must be a table"),
    "target a number": (_table(target=5), "`target` must be a string"),
}


@pytest.mark.parametrize("case", list(TABLES))
def test_a_bad_table_is_one_line_in_every_reader(tmp_path, case):
    text, why = TABLES[case]
    (tmp_path / "table.json").write_text(text)
    with pytest.raises(LandscapeError) as e:
        read_table(tmp_path)
    assert f"{tmp_path / 'table.json'} is not a readable study table: {why}" in str(e.value)
    for args in (
        ["info", tmp_path],
        ["plot", tmp_path, "--member", "a-s0"],
        ["compare", tmp_path, "--factor", "bs"],
        ["tui", tmp_path],  # refused before the app starts
    ):
        r = runner.invoke(app, [str(a) for a in args])
        assert why in one_error_line(r, 1), args


def test_a_member_file_outside_the_folder_is_refused_not_opened(tmp_path):
    (tmp_path / "table.json").write_text(_row(files={"surface_2d": "/etc/passwd"}))
    table = read_table(tmp_path)  # the table reads: only the file is refused, where opened
    with pytest.raises(LandscapeError, match="leaves the study folder: '/etc/passwd'"):
        table.file(table.rows[0], "surface_2d")
    r = runner.invoke(app, ["plot", str(tmp_path), "--member", "a-s0"])
    assert "`files.surface_2d` of a-s0 leaves the study folder" in one_error_line(r, 1)
    (tmp_path / "table.json").write_text(_row(files={"surface_2d": "../x/surface_2d.h5"}))
    table = read_table(tmp_path)
    with pytest.raises(LandscapeError, match="leaves the study folder"):
        table.file(table.rows[0], "surface_2d")


@pytest.mark.parametrize(
    "change",
    [{"correlations": 5}, {"correlations": [{"measure": "x"}]}, {"claims": [5]},
     {"level": "x"}, {"level": None}],
)  # fmt: skip
def test_a_correlation_json_of_another_shape_is_ignored(tmp_path, change):
    d = make_study(tmp_path, seeds=(0,), surfaces=False)
    digest = hashlib.sha256((d / "table.json").read_bytes()).hexdigest()
    doc = {"format": "tui-landscape-study-correlation", "version": 1, "table_digest": digest,
           "level": 0.95, "correlations": [], "claims": []}  # fmt: skip
    (d / "correlation.json").write_text(json.dumps(doc | change))
    assert read_correlation(read_table(d)) is None
    r = runner.invoke(app, ["info", str(d)])
    assert r.exit_code == 0 and "no intervals" in r.stdout, r.output


@sync
async def test_the_app_says_a_bad_table_and_a_file_outside_in_one_line(tmp_path) -> None:
    from textual.widgets import Static

    from tui_landscape.app import create_app
    from tui_landscape.screens.study import StudyScreen

    bad, outside = tmp_path / "bad", tmp_path / "outside"
    for d, text in ((bad, _row(seed="0")), (outside, _row(files={"surface_2d": "/etc/x.h5"}))):
        d.mkdir()
        (d / "table.json").write_text(text)
    app = create_app(bad)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
        screen = app.screen
        await app.workers.wait_for_complete()
        status = screen.query_one("#status", Static)
        await wait_for(pilot, lambda: "`rows[0].seed`" in str(status.render()))
        assert "\n" not in str(status.render()).strip()
    app = create_app(outside)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.table is not None)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, StudyScreen)  # nothing opened, the app goes on
        assert any("leaves the study folder" in str(n.message) for n in app._notifications)


def test_info_config_of_a_study_toml_that_is_not_text_or_holds_escapes(tmp_path):
    d = make_study(tmp_path, seeds=(0,), surfaces=False)
    (d / "study.toml").write_bytes(b"\xff\xfe\x00")
    r = runner.invoke(app, ["info", str(d), "--config"])
    assert f"cannot read {d / 'study.toml'}: UnicodeDecodeError" in one_error_line(r, 1)
    (d / "study.toml").write_text('name = "\x1b[2Jx"\n')
    r = runner.invoke(app, ["info", str(d), "--config"])
    assert r.exit_code == 0 and r.stdout == 'name = "\\x1b[2Jx"\n'
