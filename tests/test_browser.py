"""The browser lists a folder in a worker thread from surface_info; marking re-reads nothing;
it fits 80 columns; it stays put on a file it cannot read; a delete takes the direction file
only where no other surface uses it."""

from __future__ import annotations

import datetime as dt
import os
import threading

import h5py
import numpy as np
import pytest
from textual.widgets import DataTable, Static

import tui_landscape.screens.browser as browser
import tui_landscape.screens.listing as listing
from engine.formats import Provenance, SurfaceWriter
from engine.grid import Grid
from tests.test_storage import write_reference_file
from tests.test_tui import listed, small_file, sync, wait_for
from tui_landscape.app import create_app
from tui_landscape.report import fit
from tui_landscape.screens.browser import BrowserScreen
from tui_landscape.screens.listing import ago, list_folder
from tui_landscape.screens.plot import PlotScreen

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)  # the browser's clock in these tests


@sync
async def test_the_list_arrives_from_the_worker_and_a_mark_reads_no_file(tmp_path, monkeypatch):
    small_file(tmp_path / "a.h5")
    small_file(tmp_path / "b.h5", unfinished={0, 1})
    (tmp_path / "bad.h5").write_text("not HDF5")
    (tmp_path / "a.directions.h5").write_text("")  # a run's directions: not listed
    described: list[tuple[str, int]] = []  # (file, thread) of every file read
    real = listing.describe_file

    def spy(p):
        described.append((p.name, threading.get_ident()))
        return real(p)

    # The listing's and the browser's own (running rows described again): every read seen.
    monkeypatch.setattr(listing, "describe_file", spy)
    monkeypatch.setattr(browser, "describe_file", spy)
    messages = []
    app = create_app(tmp_path)
    async with app.run_test(size=(120, 30), message_hook=messages.append) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen))
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(DataTable)
        # One message, seen by the hook at the screen and again where it bubbles to.
        listed = list({id(m): m for m in messages if isinstance(m, BrowserScreen.Listed)}.values())
        assert len(listed) == 1 and [r.path.name for r in listed[0].rows] == [
            "a.h5",
            "b.h5",
            "bad.h5",
        ]
        assert sorted(n for n, _ in described) == ["a.h5", "b.h5", "bad.h5"]
        assert threading.main_thread().ident not in {t for _, t in described}  # off the UI
        assert table.row_count == 3
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(3)]
        # At 120 columns the model, loss and direction kind come after the name (none stored).
        assert rows[1][:9] == [" ", "b.h5", "", "", "", "ours 2D", "9 x 7",
                               "train_loss, train_acc", "97%"]  # fmt: skip
        assert rows[2][5] == "unreadable"  # the reason goes to the status line

        await pilot.press("down", "space")  # mark b.h5: one cell changes, nothing is read
        await pilot.pause()
        assert len(described) == 3 and screen.marked == {tmp_path / "b.h5"}
        assert str(table.get_row_at(1)[0]) == "*" and table.cursor_row == 1

        small_file(tmp_path / "c.h5")
        await pilot.press("f5")  # a refresh lists again, in the worker, and keeps the mark
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert table.row_count == 4 and len(described) == 7
        assert str(table.get_row_at(1)[0]) == "*" and table.cursor_row == 1


def test_list_folder_stops_when_cancelled(tmp_path):
    for name in ("a.h5", "b.h5", "c.h5"):
        small_file(tmp_path / name)
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 1  # cancelled after the first file

    assert [r.path.name for r in list_folder(tmp_path, cancelled)] == ["a.h5"]
    assert [r.cells[3] for r in list_folder(tmp_path)] == ["100%"] * 3


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(5, "just now"), (200, "3m ago"), (2 * 3600 + 59, "2h ago"), (5 * 86400, "5d ago"),
     (8 * 86400, "2026-03-02"), (-3600, "2026-03-10")],
)  # fmt: skip
def test_ages_are_short_and_a_week_on_a_date(seconds, shown):
    assert ago((NOW - dt.timedelta(seconds=seconds)).isoformat(), NOW) == shown


def test_ages_of_naive_times_and_of_text_that_is_no_time():
    local = NOW.astimezone().replace(tzinfo=None) - dt.timedelta(hours=5)
    assert ago(local.isoformat(), NOW) == "5h ago"
    assert ago("[/bold]", NOW) == "[/bold]" and ago("", NOW) == ""


def test_long_names_keep_their_start_and_end():
    name = "resnet56_cifar10_sgd_lr0.1_batch128_seed3.h5"
    assert fit(name, 20, middle=True) == "resnet56_c…_seed3.h5"
    assert fit("train_loss, train_acc, test_loss", 12) == "train_loss,…"
    assert fit("a.h5", 20, middle=True) == "a.h5"


def _aged(path, seconds: float, attr: bool = True) -> None:
    """Make ``path`` as old as ``seconds`` before NOW: its created attribute, or its mtime."""
    when = NOW - dt.timedelta(seconds=seconds)
    if attr:
        with h5py.File(path, "r+") as h:
            h.attrs["created"] = when.isoformat(timespec="seconds")
    os.utime(path, (when.timestamp(), when.timestamp()))


def _folder(tmp_path):
    """A folder of what a browser meets: finished, unfinished, 1D, long-named, the
    reference's and unreadable files, of known ages."""
    _aged(small_file(tmp_path / "done.h5"), 200)
    _aged(small_file(tmp_path / "half.h5", a=3.0, unfinished=set(range(30))), 2 * 3600)
    long = "resnet56_cifar10_sgd_lr0.1_batch128_weight_decay5e-4_seed3.h5"
    _aged(small_file(tmp_path / long), 5 * 86400)
    write_reference_file(tmp_path / "ref.h5", np.linspace(-1, 1, 101), np.linspace(-1, 1, 101))
    _aged(tmp_path / "ref.h5", 40 * 86400, attr=False)
    (tmp_path / "bad.h5").write_text("not HDF5")
    _aged(tmp_path / "bad.h5", 30, attr=False)


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
def test_browser_fits_80_and_100_columns(snap_compare, tmp_path, monkeypatch, size):
    folder = tmp_path / "runs"  # the title shows the folder's name: the same in every run
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setattr(browser, "_now", lambda: NOW)
    _folder(folder)
    # The first row, bad.h5, is highlighted: the status line says why it cannot be read.
    assert snap_compare(create_app("."), terminal_size=size, run_before=listed)


@sync
async def test_every_column_fits_and_the_status_line_says_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(browser, "_now", lambda: NOW)
    _folder(tmp_path)
    for width, columns in [(80, 6), (100, 7), (140, 10)]:  # 120+: model, loss, dirs too
        app = create_app(tmp_path)
        async with app.run_test(size=(width, 24)) as pilot:
            await listed(pilot)
            table = app.screen.query_one(DataTable)
            assert len(table.columns) == columns  # at 80 the surfaces give way to the name
            assert table.virtual_size.width <= width - 2  # room for a scrollbar, no scrolling
            rows = {str(table.get_row_at(i)[1]): table.get_row_at(i) for i in range(5)}
            k = [str(c.label) for c in table.columns.values()].index("kind")  # 120+: 3 more
            assert [str(c) for c in rows["bad.h5"][k : k + 2]] == ["unreadable", ""]
            assert [str(c) for c in rows["done.h5"][k : k + 2]] == ["ours 2D", "9 x 7"]
            assert str(rows["ref.h5"][k]) == "ref 2D" and str(rows["ref.h5"][-1]) == "2026-01-29"
            assert [str(rows["done.h5"][-1]), str(rows["half.h5"][-1])] == ["3m ago", "2h ago"]
            long = next(n for n in rows if n.startswith("resnet56"))
            assert long.endswith("seed3.h5") and "…" in long  # at 140: 3 columns more
            status = app.screen.query_one("#status", Static)
            assert str(status.render()).startswith("bad.h5 is not an HDF5 file")
            await pilot.press("down")
            assert "done.h5: 63/63 points done; train_loss, train_acc" in str(status.render())


@sync
async def test_opening_a_file_it_cannot_read_says_why_and_stays(tmp_path):
    small_file(tmp_path / "good.h5")
    (tmp_path / "bad.h5").write_text("not HDF5")
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await listed(pilot)
        await pilot.press("enter")  # bad.h5, the first row
        await pilot.pause()
        assert isinstance(app.screen, BrowserScreen)
        (note,) = [n for n in app._notifications if n.severity == "error"]
        assert note.message == "bad.h5 is not an HDF5 file"
        await pilot.press("down", "enter")  # a good one still opens
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))


@sync
async def test_delete_takes_the_direction_file_unless_another_surface_uses_it(tmp_path):
    small_file(tmp_path / "a.h5")  # small_file's surfaces name "d.h5" as their direction file
    (tmp_path / "a.directions.h5").write_text("")
    small_file(tmp_path / "b.h5")
    (tmp_path / "b.directions.h5").write_text("")
    for name in ("a.h5", "b.h5"):  # a's own directions; b was computed on a's too
        with h5py.File(tmp_path / name, "r+") as h:
            del h["dir_file"]
            h["dir_file"] = "a.directions.h5"
    app = create_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await listed(pilot)
        table = app.screen.query_one(DataTable)
        await pilot.press("d")  # a.h5: b uses its directions
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDelete")
        assert "a.directions.h5 stays" in str(app.screen.query(Static)[1].render())
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert not (tmp_path / "a.h5").exists() and (tmp_path / "a.directions.h5").exists()
        await pilot.press("d")  # b.h5: nobody else names b.directions.h5
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDelete")
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 0)
        assert not (tmp_path / "b.h5").exists() and not (tmp_path / "b.directions.h5").exists()
        assert sorted(q.name for q in tmp_path.iterdir()) == ["a.directions.h5"]


@sync
async def test_delete_takes_a_detached_runs_log_and_config(tmp_path):
    small_file(tmp_path / "a.h5")
    (tmp_path / "a.h5.log").write_text("# a detached run's output\n")
    (tmp_path / "a.h5.toml").write_text("")
    (tmp_path / "a.toml").write_text("")  # the user's own config: never a side file
    app = create_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await listed(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDelete")
        await pilot.press("y")
        await wait_for(pilot, lambda: not (tmp_path / "a.h5").exists())
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a.toml"]


@sync
async def test_delete_is_refused_while_a_run_writes_the_file(tmp_path):
    """Deleting a surface being computed lost every point and freed its lock (issue 17)."""
    g = Grid.parse("0:1:3")
    w = SurfaceWriter.create(tmp_path / "r.h5", g, ["train_loss"], Provenance(), "d.h5")
    # w holds the lock until it closes
    w.record(0, {"train_loss": 1.0})
    w.flush()
    app = create_app(tmp_path)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await listed(pilot)
            await pilot.press("d")
            await pilot.pause()
            assert app.screen.__class__.__name__ == "BrowserScreen"  # no question asked
            (note,) = [n for n in app._notifications if n.severity == "error"]
            assert "r.h5 is being computed" in note.message and "stop that run" in note.message
            assert (tmp_path / "r.h5").exists() and (tmp_path / "r.h5.lock").exists()
    finally:
        w.close()


@sync
async def test_sort_filter_first_last_and_ages_that_keep_updating(tmp_path, monkeypatch):
    """Issue 26: o sorts, / filters (esc: all again), g/G and Home/End jump, ages move on."""
    now = [NOW]
    monkeypatch.setattr(browser, "_now", lambda: now[0])
    _aged(small_file(tmp_path / "a_old.h5"), 3 * 3600)
    _aged(small_file(tmp_path / "b_new.h5"), 120)
    _aged(small_file(tmp_path / "c_mid.h5"), 600)
    app = create_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen) and app.screen.rows)
        s = app.screen
        table = s.query_one(DataTable)
        names = lambda: [p.stem for p in s.rows]  # noqa: E731
        assert names() == ["a_old", "b_new", "c_mid"]
        await pilot.press("G")
        assert s._current().stem == "c_mid"
        await pilot.press("g")
        assert s._current().stem == "a_old"
        await pilot.press("end")
        assert table.cursor_row == 2
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("o")  # newest first
        assert names() == ["b_new", "c_mid", "a_old"]
        await pilot.press("slash", "m", "i")
        await wait_for(pilot, lambda: names() == ["c_mid"])
        assert table.row_count == 1
        await pilot.press("escape")  # the filter cleared: every file again
        await wait_for(pilot, lambda: len(s.rows) == 3)
        assert not s.query_one("#filter").display
        ages = lambda: str(table.get_cell(str(tmp_path / "b_new.h5"), "created"))  # noqa: E731
        assert ages() == "2m ago"
        now[0] = NOW + dt.timedelta(minutes=5)  # time passes; no file changes
        await wait_for(pilot, lambda: ages() == "7m ago", timeout=10)


@sync
async def test_wide_terminals_show_the_model_loss_and_direction_kind(tmp_path):
    """At 120 columns and more: what each file is of, from its stored config, with the file
    name no wider than it needs and the surfaces never cut; narrower, as before."""
    from engine.config import config_to_toml, load_config

    g = Grid.parse("-1:1:5", "-1:1:3")
    configs = {
        "digits.h5": ["model.arch=digits_cnn", "directions.kind=random"],
        "mine.h5": ["model.arch=python:mypkg.nets.TinyNet@0123456789abcdef",
                    "data.loss=python:mypkg.losses:token_loss", "directions.kind=file",
                    "directions.file=d.h5"],
    }  # fmt: skip
    for name, sets in configs.items():
        prov = Provenance(config=config_to_toml(load_config(None, sets)))
        names = ["train_loss", "train_acc", "test_loss", "test_acc"]
        with SurfaceWriter.create(tmp_path / name, g, names, prov, "d.h5") as w:
            for k in range(g.size):
                w.record(k, dict.fromkeys(names, 1.0))
    write_reference_file(tmp_path / "ref.h5", np.linspace(-1, 1, 5), np.linspace(-1, 1, 3))
    app = create_app(tmp_path)
    async with app.run_test(size=(150, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen))
        await app.workers.wait_for_complete()
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 3)
        table = app.screen.query_one(DataTable)
        header = [str(c.label) for c in table.columns.values()]
        assert header[1:5] == ["file", "model", "loss", "dirs"]
        rows = {str(table.get_row_at(i)[1]): [str(c) for c in table.get_row_at(i)]
                for i in range(3)}  # fmt: skip
        assert rows["digits.h5"][2:5] == ["digits_cnn", "crossentropy", "random"]
        assert rows["mine.h5"][2:5] == ["TinyNet", "token_loss", "file"]
        assert rows["ref.h5"][2:5] == ["", "", ""]
        widths = {str(c.label): c.width for c in table.columns.values()}
        assert widths["file"] == len("digits.h5") + 1  # what the longest name needs, no more
        surfaces = rows["digits.h5"][header.index("surfaces")]
        assert surfaces == "train_loss, train_acc, test_loss, test_acc"  # not cut
        await pilot.resize_terminal(100, 30)
        await wait_for(pilot, lambda: "model" not in [str(c.label) for c in table.columns.values()])
