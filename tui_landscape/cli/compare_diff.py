"""``tui-landscape compare --diff A.h5 B.h5``: one map of ``B - A``, in the terminal or exported.

A part of ``compare`` kept in its own module: the map is resolved in
``plots.difference`` and the files are checked in ``engine.difference``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from engine.errors import ConfigError
from tui_landscape.cli.common import console
from tui_landscape.cli.plot import terminal_width

if TYPE_CHECKING:
    import numpy as np

    from engine.formats import Surface

__all__ = ["show_difference"]


def show_difference(
    surfaces: list[Surface],
    name: str,
    kind: str,
    levels: int | np.ndarray | None,
    log: bool,
    export: Path | None,
    dpi: float,
    width: int,
    height: int,
) -> None:
    """Draw (or export) the second file's surface less the first's, then one line of its
    numbers. Refuses anything but two files over the same grid and directions."""
    from tui_landscape.plots.difference import difference_summary, resolve_difference
    from tui_landscape.safe import plain

    if len(surfaces) != 2:
        raise ConfigError(
            f"--diff takes exactly two files (A and B, drawn as B - A), got {len(surfaces)}"
        )
    a, b = surfaces
    if export is not None:
        from tui_landscape.plots import export as ex

        if export.suffix == ".vtp":
            raise ConfigError("compare exports .png, .svg or .pdf; export .vtp from `plot`")
        spec = resolve_difference(a, b, name, kind, levels=levels, log=log, figure=True)
        out = ex.export_spec(export, spec, dpi=dpi)
        console.print(f"Wrote {out}", highlight=False)
    else:
        from tui_landscape.plots.terminal import draw

        spec = resolve_difference(a, b, name, kind, levels=levels, log=log)
        typer.echo(
            draw(spec, width=terminal_width(width), height=height, color=console.is_terminal)
        )
    # One line however narrow the terminal: a log or a grep reads it whole.
    console.print(plain(difference_summary(a, b, name)), highlight=False, soft_wrap=True)
