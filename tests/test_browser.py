"""The browser lists a folder in a worker thread from surface_info; marking re-reads nothing."""

from __future__ import annotations

import threading

from textual.widgets import DataTable

import tui_landscape.screens.browser as browser
from tests.test_tui import small_file, sync, wait_for
from tui_landscape.app import create_app
from tui_landscape.screens.browser import BrowserScreen, list_folder


@sync
async def test_the_list_arrives_from_the_worker_and_a_mark_reads_no_file(tmp_path, monkeypatch):
    small_file(tmp_path / "a.h5")
    small_file(tmp_path / "b.h5", unfinished={0, 1})
    (tmp_path / "bad.h5").write_text("not HDF5")
    (tmp_path / "a.directions.h5").write_text("")  # a run's directions: not listed
    described: list[tuple[str, int]] = []  # (file, thread) of every file read
    real = browser.describe_file

    def spy(p):
        described.append((p.name, threading.get_ident()))
        return real(p)

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
        assert rows[1][:6] == [" ", "b.h5", "ours 2D", "9 x 7", "train_loss, train_acc", "97%"]
        assert rows[2][2].startswith("unreadable:") and "not an HDF5 file" in rows[2][2]

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
