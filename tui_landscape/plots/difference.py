"""Two surfaces over the same directions drawn as their difference, ``B - A``.

``resolve_difference`` makes the plot spec (``plots.spec``) of ``B - A`` for ``compare --diff``
and the app's compare screen (``d``): a colour scale symmetric about 0 (levels and colour
limits ``-m..m``, ``m`` the largest ``|B - A|``), its sign named in ``PlotSpec.signs`` so the
terminal labels it and the export draws it on a diverging colour map. The numbers come from
``engine.difference``, which refuses files over other grids or directions.

No plotting package is imported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from engine.difference import surface_difference
from engine.errors import ConfigError, LandscapeError
from engine.formats import Surface, clean_text
from tui_landscape.plots.kinds import check_kind
from tui_landscape.plots.spec import PlotSpec, levels_for, resolve, surface_label

__all__ = [
    "DIFF_LEVELS",
    "difference_kind",
    "difference_summary",
    "difference_view",
    "render_difference",
    "resolve_difference",
]

DIFF_LEVELS = 13  # odd, evenly spaced over -m..m: 0 is one of them (where A and B agree)


def difference_kind(kind: str) -> str:
    """What a difference of ``kind`` is drawn as in 2D: ``auto`` is a heat map, whose colours
    diverge from 0 (iso-lines alone do not show the sign)."""
    return "heatmap" if kind == "auto" else kind


def _symmetric_levels(d: np.ndarray, levels: int | ArrayLike | None) -> tuple[np.ndarray, float]:
    finite = d[np.isfinite(d)]
    m = float(np.abs(finite).max()) if finite.size else 0.0
    m = m or 1.0  # identical surfaces (or nothing shared) still need a range to draw
    if levels is not None and not isinstance(levels, int | np.integer):
        return levels_for(d, levels, loss=False), m  # given levels, as every plot takes them
    n = DIFF_LEVELS if levels is None else int(levels)
    return np.linspace(-m, m, n + 2)[1:-1], m


def resolve_difference(
    a: Surface,
    b: Surface,
    name: str = "train_loss",
    kind: str = "auto",
    *,
    levels: int | ArrayLike | None = None,
    log: bool = False,
    figure: bool = False,
) -> PlotSpec:
    """Surface ``name`` of ``b`` less that of ``a`` as ``kind`` (``auto``: a heat map in 2D,
    a curve in 1D), on a scale symmetric about 0. Refuses files over other grids or
    directions (``engine.difference``), a log scale and the eigenvalue ratio."""
    check_kind(kind)
    if log:
        raise ConfigError("a difference is signed: it has no log scale (drop --log)")
    if kind == "ratio" or name == "ratio":
        raise ConfigError(
            "a difference is drawn of a stored surface, not the ratio: pick max_eig or min_eig"
        )
    d = surface_difference(a, b, name)
    lv, m = _symmetric_levels(d, levels)
    an, bn = clean_text(a.path.name), clean_text(b.path.name)
    if an == bn:  # two runs of the same name in different folders
        an, bn = clean_text(str(a.path)), clean_text(str(b.path))
    diff = dataclasses.replace(
        b, values={name: d}, completed=a.completed.astype(bool) & b.completed.astype(bool)
    )
    title = f"{bn} - {an}: {name}"
    spec = resolve(
        diff, name, difference_kind(kind), figure=figure, scale=(lv, (-m, m)), title=title
    )
    label = f"{surface_label(name)}: {bn} - {an}"
    signs = (f"{bn} lower than {an}", f"{bn} higher")
    if spec.kind == "curve":
        return dataclasses.replace(
            spec, series={f"{bn} - {an}": spec.series[name]}, right={}, left_label=label,
            signs=signs,
        )  # fmt: skip
    # The best point of a difference is no minimum to look for: its sign says what matters.
    return dataclasses.replace(spec, zlabel=label, mark_min=False, signs=signs)


def render_difference(
    a: Surface,
    b: Surface,
    name: str = "train_loss",
    kind: str = "auto",
    *,
    levels: int | ArrayLike | None = None,
    width: int = 80,
    height: int = 20,
    color: bool = True,
) -> str:
    """``B - A`` drawn as text (``plots.terminal.draw``), its sign labelled under the map."""
    from tui_landscape.plots.terminal import draw

    spec = resolve_difference(a, b, name, kind, levels=levels)
    return draw(spec, width=width, height=height, color=color)


def difference_summary(a: Surface, b: Surface, name: str = "train_loss") -> str:
    """One line of numbers for ``B - A``: its range and where, its mean, the points shared."""
    d = surface_difference(a, b, name)
    an, bn = a.path.name, b.path.name
    ok = np.isfinite(d)
    head = f"{bn} - {an} ({name})"
    if not ok.any():
        return f"{head}: no point finished in both files"
    x, y = b.x, b.y

    def at(k: int) -> str:
        idx = np.unravel_index(k, d.shape)
        return f"({x[idx[-1]]:.3g}, {y[idx[0]]:.3g})" if y is not None else f"({x[idx[0]]:.3g})"

    flat = np.where(ok, d, np.nan).ravel()
    lo, hi = int(np.nanargmin(flat)), int(np.nanargmax(flat))
    missing = int(d.size - ok.sum())
    return (
        f"{head}: from {flat[lo]:+.4g} at {at(lo)} to {flat[hi]:+.4g} at {at(hi)}, "
        f"mean {np.nanmean(flat):+.4g} over {int(ok.sum())} points"
        + (f" ({missing} missing in either file)" if missing else "")
    )


def difference_view(
    surfaces: Sequence[Surface], name: str, kind: str, width: int, height: int, color: bool
) -> tuple[str, str]:
    """The app's difference of two files: the map's text and the numbers' line; a file pair
    that cannot be subtracted gives its one-line reason as the map's text."""
    a, b = surfaces
    try:
        return (
            render_difference(a, b, name, kind, width=width, height=height, color=color),
            difference_summary(a, b, name),
        )
    except LandscapeError as e:
        return str(e), ""
