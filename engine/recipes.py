"""Named training recipes on the embedded digits data, trained once and cached.

``model.checkpoint = "recipe:digits_cnn"`` makes the demo and the sample configs work on a
fresh install with no files to fetch: the first use trains the model on the CPU with
``engine.train.Training`` (seconds, deterministic for a given torch build) and caches the
checkpoint in ``$TUI_LANDSCAPE_CACHE`` (default ``~/.cache/tui-landscape``) in the
reference's ``{'state_dict', 'acc', 'epoch'}`` layout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.config import TrainConfig
from engine.data import digits_splits
from engine.errors import ConfigError
from engine.models import build_model
from engine.train import Training, save_checkpoint

__all__ = ["RECIPES", "Recipe", "cache_dir", "recipe_checkpoint"]

PREFIX = "recipe:"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    arch: str
    train: TrainConfig
    doc: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def _sgd(batch_size: int, epochs: int, lr: float = 0.05) -> TrainConfig:
    return TrainConfig(
        lr=lr, batch_size=batch_size, epochs=epochs, weight_decay=0.0, schedule="constant"
    )


_W = {"width": 8}  # explicit, so a change of the builder's default renames the cache file
RECIPES: dict[str, Recipe] = {
    "digits_cnn": Recipe("digits_cnn", _sgd(32, 8), "the demo's model: SGD, batch 32", _W),
    "digits_cnn_small_batch": Recipe(
        "digits_cnn", _sgd(16, 20), "small-batch minimizer (batch 16)", _W
    ),
    "digits_cnn_large_batch": Recipe(
        "digits_cnn", _sgd(512, 20), "large-batch minimizer (batch 512), same epochs", _W
    ),
    "digits_mlp": Recipe("digits_mlp", _sgd(32, 10), "MLP without batch norm: SGD, batch 32"),
}


def cache_dir() -> Path:
    env = os.environ.get("TUI_LANDSCAPE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tui-landscape"


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
    model = build_model(r.arch, r.kwargs, seed=r.train.seed)
    training = Training(model, digits_splits(), r.train, torch.device("cpu"), augment=False)
    result = None
    for _ in range(r.train.epochs):
        result = training.epoch()
    assert result is not None  # epochs >= 1
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, training.model.eval(), r.train.epochs, result.test_acc)
    log.debug("%s: test accuracy %.2f%%", spec, result.test_acc)
    return path
