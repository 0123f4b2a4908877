"""Named training recipes on the embedded digits data, trained once and cached.

``model.checkpoint = "recipe:digits_cnn"`` makes the demo and the sample configs
work on a fresh install with no files to fetch: the first use trains the model on
the CPU (seconds, deterministic for a given torch build) and caches the
checkpoint in ``$TUI_LANDSCAPE_CACHE`` (default ``~/.cache/tui-landscape``) in
the reference's ``{'state_dict', 'acc', 'epoch'}`` layout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.data import Split, digits_splits
from engine.errors import ConfigError
from engine.evaluate import evaluate
from engine.models import build_model

__all__ = ["RECIPES", "Recipe", "cache_dir", "recipe_checkpoint", "train_classifier"]

PREFIX = "recipe:"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    arch: str
    batch_size: int
    epochs: int
    lr: float
    doc: str
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    kwargs: dict[str, Any] = field(default_factory=dict)


_W = {"width": 8}  # explicit, so a change of the builder's default renames the cache file
RECIPES: dict[str, Recipe] = {
    "digits_cnn": Recipe("digits_cnn", 32, 8, 0.05, "the demo's model: SGD, batch 32", kwargs=_W),
    "digits_cnn_small_batch": Recipe(
        "digits_cnn", 16, 20, 0.05, "small-batch minimizer (batch 16)", kwargs=_W
    ),
    "digits_cnn_large_batch": Recipe(
        "digits_cnn", 512, 20, 0.05, "large-batch minimizer (batch 512), same epochs", kwargs=_W
    ),
    "digits_mlp": Recipe("digits_mlp", 32, 10, 0.05, "MLP without batch norm: SGD, batch 32"),
}


def cache_dir() -> Path:
    env = os.environ.get("TUI_LANDSCAPE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tui-landscape"


def train_classifier(
    model: nn.Module,
    train: Split,
    *,
    batch_size: int,
    epochs: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> nn.Module:
    """Plain SGD with cross-entropy; the shuffling comes from its own seeded generator."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=g)
        for start in range(0, len(train), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(train.x[idx]), train.y[idx]).backward()
            opt.step()
    return model.eval()


def _key(r: Recipe) -> str:
    blob = json.dumps({"recipe": asdict(r), "torch": torch.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def recipe_checkpoint(spec: str) -> Path:
    """Path of the cached checkpoint for ``recipe:NAME``, training it on first use."""
    name = spec.removeprefix(PREFIX)
    if name not in RECIPES:
        raise ConfigError(
            f"Unknown recipe {name!r}; expected one of "
            + ", ".join(f"'recipe:{k}'" for k in sorted(RECIPES))
            + "."
        )
    r = RECIPES[name]
    path = cache_dir() / f"{name}-{_key(r)}.pt"
    if path.is_file():
        return path
    log.info("training %s on the embedded digits data (first use, cached in %s)", spec, path)
    splits = digits_splits()
    torch_threads = torch.get_num_threads()
    model = build_model(r.arch, r.kwargs, seed=r.seed)
    train_classifier(
        model,
        splits["train"],
        batch_size=r.batch_size,
        epochs=r.epochs,
        lr=r.lr,
        momentum=r.momentum,
        weight_decay=r.weight_decay,
        seed=r.seed,
    )
    torch.set_num_threads(torch_threads)
    acc = evaluate(model, splits["test"], 1024).acc
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary file and renamed, so concurrent first uses never see half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save({"state_dict": model.state_dict(), "acc": acc, "epoch": r.epochs}, tmp)
    os.replace(tmp, path)
    log.debug("%s: test accuracy %.2f%%", spec, acc)
    return path
