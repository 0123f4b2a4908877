"""Compute core of tui-landscape: directions, evaluation, grids and surface files.

This package never imports a UI library (textual, rich, plotext, typer) nor
``tui_landscape``; a test enforces it so the engine runs in headless workers.
"""

__version__ = "0.1.0"
