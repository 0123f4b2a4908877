"""What ``compare`` says about several surface files besides the plots: each file's sharpness
numbers, the warnings (grids or directions that differ, points that are not finite, files not
complete) and the verdict (which is sharpest). One place for the ``compare`` command and the
app's compare screen, so that both say the same thing (``compare_surfaces``).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import LandscapeError
from engine.sharpness import Sharpness, curvature_notes, sharpness
from tui_landscape.plots.spec import surface_values

if TYPE_CHECKING:
    from engine.formats import Surface

__all__ = ["Comparison", "FileNumbers", "compare_surfaces", "file_label", "grid_warning"]


@dataclass(frozen=True)
class FileNumbers:
    """One file's sharpness numbers, or why it has none."""

    name: str  # the file's name (a study member's label)
    label: str  # the name, with how far it is where it is not complete
    sharpness: Sharpness | None
    error: str = ""  # why `sharpness` is None (a surface with no finite value)


@dataclass(frozen=True)
class Comparison:
    """Several files' numbers for one surface, what to beware of, and which is sharpest."""

    surface: str
    files: tuple[FileNumbers, ...]
    warnings: tuple[str, ...]  # one line each, without a "note:" in front
    verdict: str  # which is sharpest; "no verdict: ..." for a surface that is not a loss


def compare_surfaces(
    surfaces: Sequence[Surface],
    name: str,
    *,
    margin: float = 0.1,
    radius: float = 0.25,
    fit_radius: float | None = None,
    labels: Mapping[Path, str] | None = None,
) -> Comparison:
    """Fit each file's surface ``name`` (``engine.sharpness``) and say what to beware of.

    Raises ``ConfigError`` where a file lacks the surface or an option is bad; a surface with
    no finite value is that file's ``error``, not an exception. ``labels`` name files (a
    study's members) instead of their file names.
    """
    files = []
    for s in surfaces:
        z = surface_values(s, name)
        try:
            sh = sharpness(s.x, s.y, z, margin=margin, radius=radius, fit_radius=fit_radius)
            files.append(FileNumbers(_name(s, labels), file_label(s, labels), sh))
        except LandscapeError as e:
            files.append(FileNumbers(_name(s, labels), file_label(s, labels), None, str(e)))
    grids, directions = grid_warning(surfaces), _directions_warning(surfaces)
    warnings = [w for w in (grids, directions) if w is not None]
    warnings.extend(_non_finite_warnings(surfaces, name))
    warnings.extend(_curvature_warnings(files))
    partial = [file_label(s, labels) for s in surfaces if s.n_done < s.completed.size]
    if partial:  # the minimum and the fits are of the finished points only
        warnings.append(f"not complete, numbers of the finished points only: {', '.join(partial)}")
    caveats = []
    if grids is not None:
        caveats.append("the grids differ: the numbers agree only to within their sampling")
    if directions is not None:
        caveats.append("the directions differ")
    if partial:
        caveats.append(f"not complete: {', '.join(partial)}")
    if name.endswith("_loss"):
        verdict = _sharpest(files, radius)
        if caveats:
            verdict += f" (but {'; '.join(caveats)})"
    else:  # the lowest accuracy is no minimizer, nor is the lowest of a metric we do not know
        verdict = f"no verdict: {name} is not a loss, so its lowest point is no minimizer"
    return Comparison(name, tuple(files), tuple(warnings), verdict)


def file_label(s: Surface, labels: Mapping[Path, str] | None = None) -> str:
    """A file's name (or its label in ``labels``), with how far it is where it is not
    complete: its numbers are of the finished points only (rounded down: 440 of 441 is 99%,
    never 100%)."""
    total = s.completed.size
    name = _name(s, labels)
    return name if s.n_done == total else f"{name} ({100 * s.n_done // total}%)"


def _name(s: Surface, labels: Mapping[Path, str] | None) -> str:
    return (labels or {}).get(s.path, s.path.name)


def grid_warning(surfaces: Sequence[Surface]) -> str | None:
    """Where the files' grids (ranges or point counts) differ, or None."""
    grids = {s.path.name: s.grid for s in surfaces}
    if len({(g.x, g.y) for g in grids.values()}) <= 1:
        return None
    text = "; ".join(
        f"{n}: x {g.x.spec()}" + (f", y {g.y.spec()}" if g.y is not None else "")
        for n, g in grids.items()
    )
    return f"the grids differ ({text}); one colour scale, own axes"


# --- helpers ---------------------------------------------------------------------------------

# How a file's directions were made: keys of the stored config's [directions] table. Files
# that differ in these measure distances in different units (docs/sharpness.md).
_MADE = ("kind", "norm", "ignore")


def _directions_warning(surfaces: Sequence[Surface]) -> str | None:
    """The directions made differently (kind, normalisation, type), or one model seen along
    different directions; None where they agree or the files do not say (reference files)."""
    made: dict[str, str] = {}
    models: dict[str, list[Surface]] = {}
    for s in surfaces:
        cfg = _config(s)
        d = cfg.get("directions", {})
        if d:
            how = [f"{k} {d[k]}" for k in _MADE if k in d]
            if s.provenance.dir_type:
                how.append(f"type {s.provenance.dir_type}")
            made[s.path.name] = ", ".join(how)
        if "model" in cfg and s.provenance.dir_hash:
            models.setdefault(repr(sorted(cfg["model"].items())), []).append(s)
    if len(set(made.values())) > 1:
        text = "; ".join(f"{n}: {how}" for n, how in made.items())
        return f"the directions are made differently ({text}): distances are in other units"
    for same in models.values():
        if len({s.provenance.dir_hash for s in same}) > 1:
            names = ", ".join(s.path.name for s in same)
            return f"the directions differ for one model ({names}): each is another slice"
    return None


def _config(s: Surface) -> dict:
    """The file's stored config as a dict; {} where it has none or it does not parse."""
    try:
        return tomllib.loads(s.provenance.config) if s.provenance.config else {}
    except tomllib.TOMLDecodeError:
        return {}


def _curvature_warnings(files: Sequence[FileNumbers]) -> list[str]:
    """A line per reason a curvature could not be fitted, naming the files and axes: a coarse
    grid gives every file the same reason, said once."""
    where: dict[str, dict[str, list[str]]] = {}  # reason -> file -> axes
    for f in files:
        if f.sharpness is not None:
            for a, why in curvature_notes(f.sharpness):
                where.setdefault(why, {}).setdefault(f.name, []).append(a.axis)
    return [
        "curvature n/a ("
        + "; ".join(f"{name} {', '.join(axes)}" for name, axes in by_file.items())
        + f"): {why}"
        for why, by_file in where.items()
    ]


def _non_finite_warnings(surfaces: Sequence[Surface], name: str) -> list[str]:
    """A line per file with finished points whose value is NaN or inf (diverged or failed):
    left out of every number, never read as zero."""
    out = []
    for s in surfaces:
        z = surface_values(s, name)
        bad = int((s.completed & ~np.isfinite(z)).sum())
        failed = len(s.failed)
        parts = [f"{bad} finished points not finite"] if bad else []
        if failed:
            parts.append(f"{failed} failed")
        if parts:
            out.append(f"{s.path.name}: {' and '.join(parts)} (left out of the numbers)")
    return out


def _sharpest(files: Sequence[FileNumbers], radius: float) -> str:
    """Which file is sharpest: by the mean rise, else by the mean curvature; ties said so."""
    fitted = [(f.name, f.sharpness) for f in files if f.sharpness is not None]
    rises = {n: sh.mean_increase for n, sh in fitted}
    curvatures = {
        n: float(np.mean([a.curvature for a in sh.axes])) if sh.axes else math.nan
        for n, sh in fitted
    }
    for values, what in ((rises, f"mean rise within r={radius:g}"), (curvatures, "mean curvature")):
        finite = {k: v for k, v in values.items() if np.isfinite(v)}
        if len(finite) < 2:
            continue
        order = sorted(finite, key=finite.get, reverse=True)
        hi, lo = finite[order[0]], finite[order[-1]]
        if np.isclose(hi, lo, rtol=1e-9, atol=0.0):
            return f"no difference in {what}: {', '.join(order)} tie"
        return f"sharpest by {what}: {order[0]}; flattest: {order[-1]}"
    return (
        "sharpest: not measurable (too few finite numbers; try a finer grid or a larger "
        "--radius or --fit-radius)"
    )
