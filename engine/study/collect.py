"""A member's measures: sharpness read off its surface files, the Hessian's spectrum, and
``engine.measures`` (adaptive and average sharpness, basin volume); generalization at the
minimum comes from the training outcome (``outcome_values``).

``member_measures`` is the ``measures`` stage; ``outcome_values`` and ``row`` build a table row
from a member's files alone, so a rerun after a crash writes the same row as an unbroken run.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import LandscapeError, describe
from engine.jsonfile import read_json_object
from engine.study.spec import MeasureSpec
from engine.study.table import stored_number, write_atomic

log = logging.getLogger(__name__)

MEASURES_FILE = "measures.json"

__all__ = [
    "MEASURES_FILE",
    "member_measures",
    "outcome_values",
    "read_measures",
    "surface_measures",
]


def read_measures(folder: Path) -> dict[str, Any] | None:
    """``folder/measures.json`` where it is one (``values``: a table of numbers or null), else
    None: absent, or not a measures file (written by hand), which the stage computes again."""
    m = read_json_object(folder / MEASURES_FILE)
    values = None if m is None else m.get("values")
    if not isinstance(values, dict):
        return None
    if any(stored_number(v) is None for v in values.values()):
        return None
    return m


def _error(acc: float) -> float:
    """An error in [0, 1] from an accuracy in percent (the engine's) or a fraction."""
    return 1.0 - (acc / 100.0 if acc > 1.0 else acc)


def outcome_values(outcome: Mapping[str, Any]) -> dict[str, float]:
    """Generalization numbers from a training outcome: the minimizer evaluated in eval mode on
    every sample of each split (``engine.minimizer``)."""
    v: dict[str, float] = {}
    for split in ("train", "test"):
        loss, acc = outcome.get(f"{split}_loss"), outcome.get(f"{split}_acc")
        if loss is not None and acc is not None and math.isfinite(acc):
            v[f"{split}_loss"], v[f"{split}_error"] = float(loss), _error(float(acc))
    _gaps(v)
    return v


def _gaps(v: dict[str, float]) -> None:
    if "train_error" in v and "test_error" in v:
        v["gap"] = v["test_error"] - v["train_error"]
    if "train_loss" in v and "test_loss" in v:
        v["gap_loss"] = v["test_loss"] - v["train_loss"]


def surface_measures(path: Path, ms: MeasureSpec) -> dict[str, float]:
    """Curvature, basin width and mean rise of a surface file's train loss (engine.sharpness):
    the axes' mean curvature and width; the mean rise within ``ms.sharpness_radius``; on a 2D
    surface, the mean of its own non-convexity (``engine.sharpness.surface_ratio``)."""
    from engine.formats import read_surface
    from engine.sharpness import sharpness, surface_ratio

    s = read_surface(path)
    z = s.values["train_loss"]
    sh = sharpness(s.x, s.y, z, margin=ms.margin, radius=ms.sharpness_radius)
    curv = [a.curvature for a in sh.axes if math.isfinite(a.curvature)]
    out = {
        "curvature": float(np.mean(curv)) if curv else math.nan,
        "basin_width": float(np.mean([a.width for a in sh.axes])),
        "mean_rise": sh.mean_increase,
    }
    if s.y is not None and len(s.y) >= 3:
        r = surface_ratio(s.x, s.y, z)
        out["surface_ratio"] = float(np.nanmean(r)) if np.isfinite(r).any() else math.nan
    return out


def hessian_measures(path: Path) -> dict[str, float]:
    """lambda_max, lambda_min, their ratio, the trace and its standard error at the centre,
    and the mean ratio over the map where the file holds one."""
    from engine.formats import read_spectrum, read_surface
    from engine.sharpness import eigen_ratio

    sp = read_spectrum(path) or {}
    v: dict[str, float] = {}
    if "lmax" in sp:
        v["lambda_max"], v["lambda_min"] = float(sp["lmax"]), float(sp["lmin"])
        v["eig_ratio"] = float(eigen_ratio(v["lambda_min"], v["lambda_max"]))
    if "trace" in sp:
        v["trace"], v["trace_se"] = float(sp["trace"]), float(sp["trace_se"])
    s = read_surface(path)
    if s.completed.size > 1 and "max_eig" in s.values and "min_eig" in s.values:
        r = eigen_ratio(s.values["min_eig"], s.values["max_eig"])
        if np.isfinite(r).any():
            v["mean_ratio_map"] = float(np.nanmean(r))
    return v


def member_measures(
    folder: Path,
    model: Any,
    splits: Mapping[str, Any],
    loss_name: str,
    ms: MeasureSpec,
    seed: int,
    device: Any,
) -> dict[str, Any]:
    """The ``measures`` stage: read the member's surface files and Hessian, run
    ``engine.measures``; writes ``folder/measures.json`` ({"values", "params", "notes"}). The
    generalization numbers are the training outcome's (eval mode, every sample of each split).
    """
    values: dict[str, float] = {}
    params: dict[str, Any] = {}
    notes: list[str] = []
    model = model.to(device).eval()
    for kind, names in (
        ("filter", ("surface_2d.h5", "surface_1d.h5")),
        ("raw", ("surface_2d_raw.h5", "surface_1d_raw.h5")),
    ):
        f = next((folder / n for n in names if (folder / n).is_file()), None)
        if f is not None:
            for k, x in surface_measures(f, ms).items():
                values[f"{k}_{kind}"] = x
            params[f"surface_{kind}"] = {
                "file": f.name,
                "margin": ms.margin,
                "radius": ms.sharpness_radius,
            }
    if (folder / "hessian.h5").is_file():
        values.update(hessian_measures(folder / "hessian.h5"))
    values.update(_sharpness_measures(model, splits, loss_name, ms, seed, device, params, notes))
    out = {"values": values, "params": params, "notes": notes}
    write_atomic(folder / MEASURES_FILE, json.dumps(_finite(out), indent=1) + "\n")
    return out


def _sharpness_measures(model, splits, loss_name, ms, seed, device, params, notes):
    """engine.measures' three measures, where that module is present (the h25measures work)."""
    try:
        from engine import measures as m
    except ImportError:
        notes.append(
            "engine.measures is not installed: adaptive/average sharpness and basin "
            "volume not computed"
        )
        return {}
    from engine.losses import resolve_loss

    loss = resolve_loss(loss_name)
    batches = splits["train"].to(device)
    out: dict[str, float] = {}
    calls = (
        ("adaptive_sharpness", m.adaptive_sharpness, {"rho": ms.rho, "p": ms.p, "steps": ms.steps}),
        (
            "average_sharpness",
            m.average_sharpness,
            {"rho": ms.rho, "p": ms.p, "samples": ms.samples},
        ),
        (
            "basin_volume",
            m.basin_volume,
            {"directions": ms.directions, "radius": ms.radius, "margin": ms.margin},
        ),
    )
    for name, fn, kw in calls:
        try:
            r = fn(model, batches, loss, seed=seed, device=device, batch_size=ms.batch_size, **kw)
        except LandscapeError as e:
            notes.append(f"{name}: {e}")
            continue
        except Exception as e:  # one measure failing leaves the others
            notes.append(f"{name}: {describe(e)}")
            log.warning("measure %s failed: %s", name, describe(e))
            continue
        out.update(m.table_values([r]))
        params[name] = r.to_json()["params"]
    return out


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
