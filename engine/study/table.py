"""The study table: one row per member and seed, written as ``table.json`` and ``table.csv``.

The format (``docs/studies.md``) is the seam between the runner and its readers (the report,
``info``, ``plot``, ``compare``, the app): ``{"format": "tui-landscape-study-table",
"version": 1, "name", "factors", "target", "measures": {name: {"doc", "sharper_is_larger"}},
"rows": [{"member", "seed", "factors", "status", "note", "values", "files", "seconds"}]}``.
A missing value is a measure not computed. Only rows with status "ok" are minimizers.
Both files are written atomically (a temporary file, then a rename), after every member.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "MEASURES",
    "STATUSES",
    "TABLE_FORMAT",
    "TABLE_VERSION",
    "read_table",
    "write_atomic",
    "write_table",
]

TABLE_FORMAT = "tui-landscape-study-table"
TABLE_VERSION = 1
STATUSES = ("ok", "not_converged", "diverged", "failed", "pending")

# name -> (doc, a larger value means a sharper minimum; None where sharpness does not apply)
_M: dict[str, tuple[str, bool | None]] = {
    "train_loss": ("mean train loss at the minimum (eval mode)", None),
    "train_error": ("train error in [0, 1] at the minimum", None),
    "test_loss": ("mean test loss at the minimum", None),
    "test_error": ("test error in [0, 1] at the minimum", None),
    "gap": ("generalization gap: test_error - train_error", None),
    "gap_loss": ("test_loss - train_loss", None),
    "curvature_filter": ("mean 2nd derivative of train loss along the axes, filter-norm", True),
    "basin_width_filter": ("mean width of the sub-(min + margin) basin, filter-norm", False),
    "mean_rise_filter": ("mean train-loss rise within the radius, filter-norm", True),
    "surface_ratio_filter": (
        "mean non-convexity of the 2D surface itself (its 2x2 Hessian), filter-norm",
        None,
    ),
    "curvature_raw": ("as curvature_filter, unnormalized directions", True),
    "basin_width_raw": ("as basin_width_filter, unnormalized directions", False),
    "mean_rise_raw": ("as mean_rise_filter, unnormalized directions", True),
    "surface_ratio_raw": ("as surface_ratio_filter, unnormalized directions", None),
    "lambda_max": ("largest Hessian eigenvalue at the minimum", True),
    "lambda_min": ("smallest Hessian eigenvalue at the minimum", None),
    "eig_ratio": ("|lambda_min / lambda_max| at the minimum", None),
    "trace": ("Hessian trace (Hutchinson) at the minimum", True),
    "trace_se": ("standard error of the trace", None),
    "mean_ratio_map": ("mean |lambda_min / lambda_max| over the 2D Hessian map", None),
    "adaptive_sharpness": ("worst-case adaptive sharpness (projected gradient ascent)", True),
    "average_sharpness": ("average-case sharpness over random perturbations", True),
    "basin_volume": ("fraction of random directions staying under the margin", False),
    "basin_volume_low": ("95% Wilson interval of basin_volume: low end", None),
    "basin_volume_high": ("95% Wilson interval of basin_volume: high end", None),
}
MEASURES: dict[str, dict[str, Any]] = {
    k: {"doc": d, "sharper_is_larger": s} for k, (d, s) in _M.items()
}


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` by a temporary file and a rename: never half a file. The
    temporary name is this writer's own, and is removed when the write fails."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _json_value(v: Any) -> Any:
    """NaN and inf as null: JSON has neither."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def table_dict(
    name: str,
    factors: Sequence[str],
    target: str,
    rows: Sequence[Mapping[str, Any]],
    pairs: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    clean = [
        {**r, "values": {k: _json_value(v) for k, v in r.get("values", {}).items()}} for r in rows
    ]
    return {
        "format": TABLE_FORMAT,
        "version": TABLE_VERSION,
        "name": name,
        "factors": list(factors),
        "target": target,
        "measures": MEASURES,
        "rows": clean,
        "pairs": list(pairs),
    }


def table_csv(table: Mapping[str, Any]) -> str:
    """The rows flattened: label, seed, the factors, status, note, then every measure."""
    factors, measures = table["factors"], list(MEASURES)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["label", "seed", *factors, "status", "note", *measures])
    for r in table["rows"]:
        vals = r.get("values", {})
        w.writerow(
            [
                r["member"],
                r["seed"],
                *(r["factors"].get(f, "") for f in factors),
                r["status"],
                r.get("note", ""),
                *("" if vals.get(m) is None else repr(float(vals[m])) for m in measures),
            ]
        )
    return buf.getvalue()


def write_table(
    folder: Path,
    name: str,
    factors: Sequence[str],
    target: str,
    rows: Sequence[Mapping[str, Any]],
    pairs: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Write ``table.json`` and ``table.csv`` in ``folder``; returns the table."""
    table = table_dict(name, factors, target, rows, pairs)
    write_atomic(folder / "table.json", json.dumps(table, indent=1) + "\n")
    write_atomic(folder / "table.csv", table_csv(table))
    return table


def read_table(folder: Path) -> dict[str, Any]:
    """``table.json`` of a study folder (``LandscapeError`` with one line where it is not)."""
    from engine.errors import LandscapeError

    p = Path(folder) / "table.json"
    try:
        table = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LandscapeError(f"cannot read the study table {p}: {e}") from None
    if not isinstance(table, dict) or table.get("format") != TABLE_FORMAT:
        raise LandscapeError(f"{p} is not a tui-landscape study table")
    if table.get("version") != TABLE_VERSION:
        raise LandscapeError(f"{p}: table version {table.get('version')} is not supported")
    return table
