"""``tui-landscape models``: every built-in model with its parameter count and input shape."""

from __future__ import annotations

from rich import box
from rich.table import Table

from tui_landscape.cli.common import console


def models() -> None:
    """List the built-in models (use their name as model.arch)."""
    from engine.models import list_models, parameter_count  # torch: the models are built

    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for col in ("name", "parameters", "input", "description"):
        t.add_column(col, justify="right" if col == "parameters" else "left")
    for info in list_models():
        n = parameter_count(info.name)
        t.add_row(info.name, f"{n:,}", "x".join(map(str, info.input_shape)), info.doc)
    console.print(t)
