"""Figures written from the app (``e``): what a screen shows, as a PNG beside its files.

Over SSH the terminal shows text only; a PNG written beside the surface file can be copied
home (scp) and read at full resolution. matplotlib takes about a second for a figure, so the
file is written in a thread worker and the screen is told by a notification.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from textual.screen import Screen

from engine.errors import LandscapeError
from tui_landscape.plots.spec import PlotSpec

__all__ = ["figure_path", "write_figure"]


def figure_path(folder: Path, *parts: str) -> Path:
    """``folder/<parts joined by _>.png``, with characters a shell would trip over replaced."""
    stem = re.sub(r"[^\w.+-]+", "-", "_".join(p for p in parts if p))
    return Path(folder) / f"{stem}.png"


def write_figure(screen: Screen, out: Path, specs: Sequence[PlotSpec]) -> None:
    """Write ``specs`` (one plot, or several side by side on one scale) to ``out`` off the UI
    loop; a notification says where it went, or why it could not be written."""

    def run() -> None:
        from tui_landscape.plots.export import export_spec, export_specs

        try:
            if len(specs) == 1:
                export_spec(out, specs[0])
            else:
                export_specs(out, specs)
        except (LandscapeError, OSError, ValueError) as e:
            # matplotlib missing, a read-only folder: one line, the app keeps running.
            screen.app.call_from_thread(
                screen.notify, f"Export failed: {e}", severity="error", markup=False
            )
            return
        screen.app.call_from_thread(screen.notify, f"Wrote {out}", markup=False, timeout=6)

    screen.run_worker(run, thread=True, exclusive=True, group="export", exit_on_error=False)
