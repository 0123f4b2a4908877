"""The kinds of plot, apart from ``spec`` so that a command's ``--help`` can name them without
importing numpy (``spec`` re-exports them)."""

from __future__ import annotations

KINDS = ("auto", "contour", "filled", "heatmap", "surface3d", "ratio", "curve")
"""Every kind of plot. ``auto``: a curve in 1D, a contour map in 2D, a heat map of the ratio;
``ratio``: |min_eig / max_eig| as a heat map; ``curve``: 1D (the middle row of a 2D file)."""
FIGURE_ONLY = ("surface3d",)  # plotext has no 3D view
# What a 2D grid can be drawn as when the caller passes the values themselves (export_surface).
SURFACE_KINDS = tuple(k for k in KINDS if k not in ("auto", "curve"))
# The app's `k` key: the 2D maps (the ratio is a surface on `s`, curves are the `r`/`c` slices).
# No "auto": it draws as one of them, so a step onto it would change nothing on screen.
APP_KINDS = tuple(k for k in KINDS if k not in ("auto", *FIGURE_ONLY, "ratio", "curve"))
