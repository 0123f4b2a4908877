"""The train stage: a member trained to a minimizer by the study's one rule.

``engine.minimizer.train_member`` does the work (the rule: a learning-rate grid judged by
final train loss, and the train accuracy below which a member is "not_converged"; a diverged
run is recorded, not raised) and writes ``outcome.json`` in the run folder; it resumes a
killed run from its last epoch. ``member_outcome`` reads that file back as one flat dict,
the checkpoint an absolute path, for the runner and the table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.config import Config
from engine.study.spec import RecipeSpec

__all__ = ["member_outcome", "train_member_outcome"]


def train_member_outcome(
    cfg: Config,
    recipe: RecipeSpec,
    run_dir: Path,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` by the study's rule (resuming); returns the outcome."""
    from engine.minimizer import RecipeRule, train_member

    rule = RecipeRule(lr_grid=recipe.lr_grid, converged_train_acc=recipe.converged_train_acc)
    train_member(cfg, rule, run_dir, progress=progress)
    got = member_outcome(run_dir)
    assert got is not None  # train_member wrote it (a bug otherwise, not the user's input)
    return got


def member_outcome(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir/outcome.json`` as a flat dict (checkpoint absolute), None while there is none."""
    from engine.minimizer import read_outcome

    o = read_outcome(run_dir)
    if o is None:
        return None
    return {
        "checkpoint": str(Path(o.checkpoint).resolve()),
        "lr": o.lr,
        "epochs": o.epochs,
        "train_loss": o.train_loss,
        "train_acc": o.train_acc,
        "test_loss": o.test_loss,
        "test_acc": o.test_acc,
        "status": o.status,
        "note": o.note,
    }
