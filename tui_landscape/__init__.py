"""tui-landscape: the command line, the terminal app and the plots, thin over ``engine``."""

from engine import __version__

__all__ = ["__version__"]
