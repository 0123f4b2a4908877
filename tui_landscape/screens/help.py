"""The help screen (?): every key of the current screen and what the app does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# tui-landscape

Loss landscapes (Li et al., NeurIPS 2018) in the terminal.

- **everywhere**: `?` help, `ctrl+p` commands, `q` quit, `b` file browser, `n` new surface
- **browser**: `enter` open, `space` mark, `c` compare marked, `d` delete, `f5` refresh
- **plot**: `s` surface, `k` kind, `l` log scale, `+` / `-` more or fewer levels, `esc` back
- **plot, compare**: `e` export what is shown as a PNG beside the file
- **plot cursor**: arrows move it, `r` / `c` its row or column slice (2D), `f5` reload the file
- **plot slice**: `esc` back to the map
- **setup**: `ctrl+r` run, `ctrl+s` save as TOML (asks where), `ctrl+c` cancel a run, `esc` back
- **setup, detached**: `ctrl+g` run as its own process, which outlives the app and the SSH
  login
- **setup fields**: `ctrl+e` estimate the time, `ctrl+o` pick a checkpoint file

Unfinished points are drawn as missing. A surface being computed fills in live, in the plot
view and the browser (`running 57%`), whichever process computes it; a cancelled run is
resumed by running it again (or `tui-landscape compute CONFIG`). `tui-landscape ps` lists the
runs going on.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
