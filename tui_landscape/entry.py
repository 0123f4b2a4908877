"""The console script: Ctrl-C while the heavy imports load exits quietly with 130."""

import sys


def main() -> None:
    try:
        from tui_landscape.cli import main as cli_main
    except KeyboardInterrupt:
        sys.exit(130)
    cli_main()
