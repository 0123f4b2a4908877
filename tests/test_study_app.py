"""The app on a study folder (constructed: tests/study_folder.py): the members' table, enter
opens a member's surface, c compares the members of the chosen factor, the browser lists
study folders. Pilot tests, asserting on what the widgets hold (no snapshots)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from tests.study_folder import make_study
from tests.test_tui import sync, wait_for
from tui_landscape.app import create_app
from tui_landscape.screens.browser import BrowserScreen
from tui_landscape.screens.compare import CompareScreen
from tui_landscape.screens.plot import PlotScreen
from tui_landscape.screens.study import StudyScreen


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_study(tmp_path_factory.mktemp("app") / "bs-study", seeds=(0, 1))


def _status(screen) -> str:
    return str(screen.query_one("#status", Static).render())


@sync
async def test_study_view_lists_members_opens_and_compares(study: Path) -> None:
    app = create_app(study)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.table is not None)
        await pilot.pause()
        table = screen.query_one(DataTable)
        assert table.row_count == 10
        heads = [str(c.label) for c in table.columns.values()]
        assert heads[:4] == ["member", "batch_size", "weight_decay", "status"]
        assert "gap" in heads and "curvature_filter" in heads
        assert [str(c) for c in table.get_row_at(0)][:4] == ["bs16-wd0-s0", "16", "0.0", "ok"]
        taus = str(screen.query_one("#taus", Static).render())
        assert "8/10 members ok" in taus and "curvature_filter +1.00" in taus
        assert _status(screen).startswith("bs16-wd0-s0: ok; files: surface_1d, surface_2d")
        assert "c compares batch_size" in _status(screen)
        # enter: the member's 2D surface in the plot view; esc comes back.
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        assert app.screen.path == study / "members" / "bs128-wd0-s0" / "surface_2d.h5"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
        # c: the members where only the batch size varies, in this member's group and seed.
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        cmp = app.screen
        assert cmp.paths == [study / "members" / m / "surface_2d.h5"
                             for m in ("bs16-wd0-s0", "bs128-wd0-s0")]  # fmt: skip
        assert cmp.labels == ["bs16-wd0-s0 (batch_size=16)", "bs128-wd0-s0 (batch_size=128)"]
        await wait_for(pilot, lambda: cmp.surfaces is not None)
        await pilot.pause()
        numbers = str(cmp.query_one("#numbers", Static).render())
        assert "bs128-wd0-s0 (batch_size=128): min 0.1, curvature x n/a" in numbers
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
        # f: the other factor; c now compares the weight decays.
        await pilot.press("f")
        assert "c compares weight_decay" in _status(screen)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        assert app.screen.labels == ["bs128-wd0-s0 (weight_decay=0.0)",
                                     "bs128-wd5-s0 (weight_decay=0.0005)"]  # fmt: skip


@sync
async def test_a_member_that_is_no_minimizer_says_so(study: Path) -> None:
    app = create_app(study)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.table is not None)
        await pilot.pause()
        screen.query_one(DataTable).move_cursor(row=8)  # bs512-wd0-s0, diverged
        await pilot.pause()
        assert _status(screen).startswith("bs512-wd0-s0: diverged (train accuracy 0.31")
        await pilot.press("enter")  # it has no map: said, and the view stays
        await pilot.pause()
        assert isinstance(app.screen, StudyScreen)
        assert any("has no surface file yet" in str(n.message) for n in app._notifications)


@sync
async def test_the_browser_lists_a_study_folder_and_opens_it(study: Path) -> None:
    app = create_app(study.parent)
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen))
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 1
        row = [str(c) for c in table.get_row_at(0)]
        assert row[1] == "bs-study/" and row[2] == "study" and "8/10 ok" in row
        assert "8 of 10 members reached a minimizer" in _status(app.screen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
        assert app.screen.folder == study
