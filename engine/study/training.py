"""The train stage: a member trained to a minimizer by the study's one rule.

``engine.minimizer.train_member`` (the rule: a learning-rate grid judged by final train loss,
and the train accuracy below which a member is flagged "not_converged") does the work and
writes ``outcome.json`` in the run folder. Where that module is absent this falls back to
``engine.train.train_run`` with the member's own learning rate, judged by the same threshold,
and writes the same ``outcome.json``. Either resumes a killed run from its last epoch.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from engine.config import Config
from engine.study.collect import read_json
from engine.study.spec import RecipeSpec
from engine.study.table import write_atomic

__all__ = ["train_member_outcome"]


def train_member_outcome(cfg: Config, recipe: RecipeSpec, run_dir: Path) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (resuming); returns what ``outcome.json`` holds."""
    try:
        from engine.minimizer import RecipeRule, train_member
    except ImportError:
        return _fallback(cfg, recipe, run_dir)
    rule = RecipeRule(lr_grid=recipe.lr_grid, converged_train_acc=recipe.converged_train_acc)
    o = train_member(cfg, rule, run_dir)
    got = read_json(run_dir / "outcome.json")
    if got is None:  # the seam says train_member writes it; be sure the row can be rebuilt
        got = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(o).items()}
        write_atomic(run_dir / "outcome.json", json.dumps(got, indent=1) + "\n")
    return got


def _fallback(cfg: Config, recipe: RecipeSpec, run_dir: Path) -> dict[str, Any]:
    from engine.devices import resolve_device
    from engine.train import train_run

    if recipe.lr_grid:
        raise RuntimeError("recipe.lr_grid needs engine.minimizer, which is not installed")
    device = resolve_device(cfg.compute.device)
    resume = (run_dir / "last.pt").is_file()
    busy = run_dir.is_dir() and any(run_dir.iterdir())
    train_run(cfg, run_dir, device, resume=resume, overwrite=busy and not resume)
    with open(run_dir / "metrics.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]
    v = {k: float(last[k]) for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    acc = v["train_acc"] / 100.0  # the run's metrics are percent
    if not math.isfinite(v["train_loss"]):
        status, note = "diverged", f"train loss {v['train_loss']} at the last epoch"
    elif acc < recipe.converged_train_acc:
        status = "not_converged"
        note = f"train accuracy {acc:.3f} < {recipe.converged_train_acc:g}"
    else:
        status, note = "ok", ""
    epochs = cfg.train.epochs
    out = {
        "checkpoint": str(run_dir / f"model_{epochs}.pt"),
        "lr": cfg.train.lr,
        "epochs": epochs,
        "train_loss": v["train_loss"],
        "train_acc": acc,
        "test_loss": v["test_loss"],
        "test_acc": v["test_acc"] / 100.0,
        "status": status,
        "note": note,
    }
    clean = {
        k: (None if isinstance(x, float) and not math.isfinite(x) else x) for k, x in out.items()
    }
    write_atomic(run_dir / "outcome.json", json.dumps(clean, indent=1) + "\n")
    return clean
