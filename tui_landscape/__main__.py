"""``python -m tui_landscape`` runs the command line (also the entry for torchrun later)."""

from tui_landscape.cli import main

main()
