"""A study folder made by hand for the analysis, report, CLI and app tests: a ``table.json`` in
the format of docs/studies.md and tiny surface files written with the engine's writer, so these
tests need no training and no study runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.formats import Provenance, SurfaceWriter
from engine.grid import Grid

FACTORS = ("batch_size", "weight_decay")
MEMBERS = {  # label: (batch size, weight decay)
    "bs16-wd0": (16, 0.0),
    "bs128-wd0": (128, 0.0),
    "bs16-wd5": (16, 5e-4),
    "bs128-wd5": (128, 5e-4),
}


def sharp(bs: int, wd: float, seed: int) -> float:
    """The constructed curvature: larger batch sharper, weight decay sharper, seeds jitter."""
    return 1.0 + bs / 64 + 2000 * wd + 0.05 * seed


def write_surface(path: Path, a: float, ndim: int, *, eig: bool = False) -> None:
    """``a * (x^2 + y^2) / 2 + 0.1`` (curvature ``a``) on a tiny grid; with ``eig`` the
    Hessian's ``max_eig``/``min_eig`` surfaces too (the ratio map)."""
    g = Grid.parse("-1:1:9", "-1:1:7" if ndim == 2 else "")
    names = ["train_loss", "test_loss", *(["max_eig", "min_eig"] if eig else [])]
    with SurfaceWriter.create(path, g, names, Provenance(), "d.h5") as w:
        for k in range(g.size):
            x, y = g.point(k)
            loss = 0.5 * a * (x * x + (y * y if ndim == 2 else 0.0)) + 0.1
            v = {"train_loss": loss, "test_loss": 1.5 * loss}
            if eig:
                v |= {"max_eig": a * (1 + x * x), "min_eig": -0.1 * a * abs(x * y)}
            w.record(k, v)


def make_study(
    root: Path,
    seeds: tuple[int, ...] = (0, 1, 2),
    *,
    surfaces: bool = True,
    flagged: bool = True,
    members: tuple[str, ...] = tuple(MEMBERS),
) -> Path:
    """A 2 x 2 (batch size x weight decay) study over ``seeds``; with ``flagged`` a diverged
    and a not-converged member whose numbers would turn every tau around if they were used.
    ``members``: a few of ``MEMBERS`` (figures cost about a second each)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in seeds:
        for label in members:
            bs, wd = MEMBERS[label]
            a = sharp(bs, wd, seed)
            values = {
                "train_loss": 0.01, "train_error": 0.0, "test_loss": 0.1 * a,
                "test_error": 0.02 * a, "gap": 0.02 * a, "gap_loss": 0.1 * a - 0.01,
                "curvature_filter": a, "basin_width_filter": 2.0 / a,
                "curvature_raw": 3.0 - a + 0.01 * seed, "lambda_max": 10 * a,
                "mean_ratio_map": 0.1,
            }  # fmt: skip
            files = {}
            if surfaces:
                d = root / "members" / f"{label}-s{seed}"
                d.mkdir(parents=True, exist_ok=True)
                write_surface(d / "surface_1d.h5", a, 1)
                write_surface(d / "surface_2d.h5", a, 2)
                write_surface(d / "hessian.h5", a, 2, eig=True)
                files = {s: f"members/{label}-s{seed}/{s}.h5"
                         for s in ("surface_1d", "surface_2d", "hessian")}  # fmt: skip
            rows.append({"member": label, "seed": seed,
                         "factors": {"batch_size": bs, "weight_decay": wd},
                         "status": "ok", "note": "", "values": values, "files": files})  # fmt: skip
    if flagged:
        for label, status in (("bs512-wd0", "diverged"), ("bs256-wd0", "not_converged")):
            bs = int(label[2:5])
            rows.append({"member": label, "seed": seeds[0],
                         "factors": {"batch_size": bs, "weight_decay": 0.0},
                         "status": status, "note": "train accuracy 0.31 < 0.95",
                         "values": {"gap": 0.0, "curvature_filter": 1e6, "train_loss": 2.3},
                         "files": {}})  # fmt: skip
    table = {
        "format": "tui-landscape-study-table",
        "version": 1,
        "name": "tiny",
        "factors": list(FACTORS),
        "target": "gap",
        "measures": {
            "curvature_filter": {"doc": "curvature, filter-normalized", "sharper_is_larger": True},
            "basin_width_filter": {"doc": "basin width", "sharper_is_larger": False},
            "curvature_raw": {"doc": "curvature, unnormalized", "sharper_is_larger": True},
            "lambda_max": {"doc": "top Hessian eigenvalue", "sharper_is_larger": True},
            "mean_ratio_map": {"doc": "mean |min/max eig|", "sharper_is_larger": True},
        },
        "rows": rows,
    }
    (root / "table.json").write_text(json.dumps(table, indent=1))
    return root


def values_of(root: Path, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """The ok rows' ``measure`` and gap, as the analysis must take them."""
    doc = json.loads((root / "table.json").read_text())
    ok = [r for r in doc["rows"] if r["status"] == "ok"]
    return (
        np.array([r["values"][measure] for r in ok]),
        np.array([r["values"]["gap"] for r in ok]),
    )
