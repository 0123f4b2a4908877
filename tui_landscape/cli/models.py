"""``tui-landscape models``: every built-in model with its parameter count and input shape."""

from __future__ import annotations

import torch
from rich import box
from rich.table import Table

from engine.models import create_model, list_models
from tui_landscape.cli.common import console


def models() -> None:
    """List the built-in models (use their name as model.arch)."""
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for col in ("name", "parameters", "input", "description"):
        t.add_column(col, justify="right" if col == "parameters" else "left")
    for info in list_models():
        # Built on the meta device: counting 54M parameters allocates nothing.
        with torch.device("meta"):
            n = sum(p.numel() for p in create_model(info.name).parameters())
        t.add_row(info.name, f"{n:,}", "x".join(map(str, info.input_shape)), info.doc)
    console.print(t)
