"""Text that came from a file, made safe to show: one helper for the CLI and the app.

The engine writes out control characters of everything it reads (``clean_text``); here file
text also becomes a ``rich.text.Text``, which rich and Textual show as it is, where a ``str``
would be parsed as markup (``[link=...]`` rendered, ``[/bold]`` a crash).
"""

from __future__ import annotations

from rich.text import Text

from engine.errors import clean_text

__all__ = ["plain"]


def plain(value: object) -> Text:
    """``value`` as text that is shown literally: no markup, no control characters."""
    return Text(clean_text(str(value)))
