"""What ``tl.compute`` / ``interpolate`` / ``trajectory`` return: the engine's result with a
plot and a notebook display.

``Result.plot(kind=...)`` is a matplotlib ``Figure`` drawn from the same ``PlotSpec`` as
``tui-landscape plot --export`` (``plots.spec.resolve`` then ``plots.export.spec_figure``), so
a notebook and an exported file show the same thing. In Jupyter a result shows itself as a
short table of what it holds and, where matplotlib is installed, its default plot.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from engine.api import LandscapeResult
from engine.errors import ConfigError

__all__ = ["Result", "as_result"]


@dataclass(frozen=True)
class _Path:
    x: np.ndarray
    y: np.ndarray
    explained: tuple[float, float] | None


@dataclass(frozen=True)
class Result(LandscapeResult):
    """A computed surface (``LandscapeResult``) that can draw itself."""

    def plot(
        self,
        kind: str = "auto",
        name: str = "train_loss",
        *,
        levels: int | ArrayLike | None = None,
        log: bool = False,
        title: str | None = None,
        size: tuple[float, float] = (6, 4.5),
        dpi: float = 100,
    ) -> Any:
        """A matplotlib ``Figure`` of surface ``name`` as ``kind`` (``contour``, ``filled``,
        ``heatmap``, ``surface3d``, ``curve``, ``ratio``; ``auto`` as ``plot``). Needs
        matplotlib (the ``export`` extra)."""
        from tui_landscape.plots.export import spec_figure
        from tui_landscape.plots.spec import resolve

        if self.source is None:
            raise ConfigError("this result holds no surface to plot")
        path = None
        if self.trajectory is not None:
            path = _Path(self.trajectory[:, 0], self.trajectory[:, 1], self.explained_variance)
        label = title
        if label is None:
            label = name if self.path is None else f"{self.path.name}: {name}"
        spec = resolve(
            self.source, name, kind, levels=levels, log=log, trajectory=path, figure=True,
            title=label,
        )  # fmt: skip
        return spec_figure(spec, dpi=dpi, size=size)

    def _summary(self) -> list[tuple[str, str]]:
        grid = f"{len(self.x)}" if self.y is None else f"{len(self.x)} x {len(self.y)}"
        rows = [("grid", grid), ("file", str(self.path) if self.path else "(none)")]
        for name, z in self.surfaces.items():
            finite = z[np.isfinite(z)]
            low = f"{finite.min():.6g}" if finite.size else "no finite value"
            rows.append((name, f"min {low}, {finite.size}/{z.size} finite"))
        if self.explained_variance is not None:
            a, b = self.explained_variance
            rows.append(("explained variance", f"{100 * a:.2f} %, {100 * b:.2f} %"))
        return rows

    def __str__(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self._summary())

    def _repr_html_(self) -> str:
        """Jupyter's display: the summary table and, with matplotlib, the default plot."""
        cells = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
            for k, v in self._summary()
        )
        out = f"<table>{cells}</table>"
        try:
            fig = self.plot(name=next(iter(self.surfaces)))
        except Exception:  # no matplotlib, nothing finite: the table alone says what there is
            return out
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        data = base64.b64encode(buf.getvalue()).decode()
        return out + f'<img src="data:image/png;base64,{data}"/>'


def as_result(r: LandscapeResult) -> Result:
    """The engine's result as a ``Result`` (the same fields)."""
    return Result(**{f.name: getattr(r, f.name) for f in fields(r)})
