"""The app in a small terminal over SSH (issue 17): commands in the palette, a kind key that
always changes the plot, and every screen readable at 80x24."""

from __future__ import annotations

from itertools import pairwise

from rich.text import Text

from tests.test_tui import small_file, sync, wait_for
from tui_landscape.app import create_app
from tui_landscape.screens.compare import CompareScreen
from tui_landscape.screens.plot import PlotScreen


def drawn(text: Text) -> str:
    """A plot's text with its colours (a filled map and a heat map differ in colour only)."""
    return text.markup


@sync
async def test_each_kind_key_press_changes_the_map(tmp_path):
    f = small_file(tmp_path / "s.h5")
    app = create_app(f)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        v = app.screen.view
        await wait_for(pilot, lambda: v.surface is not None)
        shown = [(v.spec().kind, drawn(v.render()))]
        for _ in range(4):
            await pilot.press("k")
            shown.append((v.spec().kind, drawn(v.render())))
        kinds = [k for k, _ in shown]
        assert kinds == ["contour", "filled", "heatmap", "contour", "filled"], kinds
        for (_, before), (_, after) in pairwise(shown):
            assert before != after  # every press draws something else
        # On the compare screen too: auto is a contour map, so k goes on to filled.
        app.push_screen(CompareScreen([f, small_file(tmp_path / "b.h5", a=3.0)]))
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.pause()
        pane = app.screen.query_one("#pane0")
        texts = [drawn(pane.content)]
        for _ in range(3):
            await pilot.press("k")
            await pilot.pause()
            texts.append(drawn(pane.content))
        assert app.screen.kind == "contour"
        assert all(a != b for a, b in pairwise(texts))
