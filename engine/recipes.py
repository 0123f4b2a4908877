"""Named training recipes on the embedded data sets, trained once and cached.

``model.checkpoint = "recipe:digits_cnn"`` makes the demo and the sample configs work on a
fresh install with no files to fetch: the first use trains the model on the CPU
(deterministic for a given torch build, CPU and intra-op thread count: on a 2-core VM the
digits CNN trained one model with 1 thread and another with 2 to 8, the MLP one with 2 and
another with 1, 3 or 4; the cache key holds no thread count) and caches the checkpoint in
``$TUI_LANDSCAPE_CACHE`` (default ``~/.cache/tui-landscape``) in the reference's
``{'state_dict', 'acc', 'epoch'}`` layout. Digits classifiers train with
``engine.train.Training`` (seconds); the other cases with ``engine.train.fit`` on the
recipe's loss over the train split of ``RECIPE_DATA[recipe.data]``: ``charlm`` (a byte-level
transformer on Python's help text, about 20 s on one core) and ``diabetes_mlp``
(regression, about a second).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from engine.config import TrainConfig
from engine.data import digits_splits
from engine.errors import ConfigError
from engine.losses import resolve_loss
from engine.models import build_model
from engine.tabular import diabetes_datasets
from engine.textdata import charlm_datasets
from engine.train import Training, dataset_metrics, fit, save_checkpoint

__all__ = ["RECIPES", "RECIPE_DATA", "Recipe", "cache_dir", "recipe_checkpoint", "train_recipe"]

PREFIX = "recipe:"
log = logging.getLogger(__name__)


# The non-digits data sets a recipe trains on, by ``Recipe.data``; each gives {'train', 'test'}.
RECIPE_DATA: dict[str, Callable[[], dict[str, Any]]] = {
    "charlm": charlm_datasets,
    "diabetes": diabetes_datasets,
}


@dataclass(frozen=True)
class Recipe:
    arch: str
    train: TrainConfig
    doc: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    data: str = "digits"  # 'digits': engine.train.Training; else a key of RECIPE_DATA
    loss: str = "crossentropy"  # an engine.losses name, for the RECIPE_DATA recipes


def _sgd(batch_size: int, epochs: int, lr: float = 0.05) -> TrainConfig:
    return TrainConfig(
        lr=lr, batch_size=batch_size, epochs=epochs, weight_decay=0.0, schedule="constant"
    )


def _adam(batch_size: int, epochs: int, lr: float) -> TrainConfig:
    return TrainConfig(
        optimizer="adam",
        lr=lr,
        batch_size=batch_size,
        epochs=epochs,
        weight_decay=0.0,
        schedule="constant",
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
    "charlm": Recipe(
        "char_transformer",
        _adam(32, 5, 3e-3),
        "byte-level transformer on Python's help text: Adam, batch 32, 320 steps",
        {"vocab": 256, "context": 64, "width": 64, "layers": 2, "heads": 4},
        data="charlm",
        loss="causal_lm",
    ),
    "diabetes_mlp": Recipe(
        "diabetes_mlp",
        _adam(32, 30, 1e-3),
        "regression MLP on the diabetes data: Adam, batch 32, 360 steps",
        {"in_features": 10, "hidden": 32, "out_features": 1},
        data="diabetes",
        loss="squared_error",
    ),
}


def cache_dir() -> Path:
    """$TUI_LANDSCAPE_CACHE, else tui-landscape in $XDG_CACHE_HOME or ~/.cache; a
    ``ConfigError`` where there is no home (a container's user without one)."""
    env = os.environ.get("TUI_LANDSCAPE_CACHE")
    if env:
        return Path(env)
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError as e:  # Path.home(): "Could not determine home directory."
        raise ConfigError(f"No cache folder: {e} Set TUI_LANDSCAPE_CACHE to one.") from None
    return Path(base) / "tui-landscape"


# Fields added after the first recipes enter the key only when set, so the digits recipes
# keep their cache file names.
_LATER = {f.name: f.default for f in fields(Recipe) if f.name in ("data", "loss")}


def _key(r: Recipe) -> str:
    d = {k: v for k, v in asdict(r).items() if k not in _LATER or v != _LATER[k]}
    blob = json.dumps({"recipe": d, "torch": torch.__version__}, sort_keys=True)
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
    log.info("training %s on the embedded %s data (first use, cached in %s)", spec, r.data, path)
    model, acc = train_recipe(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model, r.train.epochs, acc)
    return path


def train_recipe(r: Recipe) -> tuple[torch.nn.Module, float]:
    """The trained model (eval mode) and its test accuracy (NaN for a loss without one)."""
    model = build_model(r.arch, r.kwargs, seed=r.train.seed)
    if r.data == "digits":
        training = Training(model, digits_splits(), r.train, torch.device("cpu"), augment=False)
        result = None
        for _ in range(r.train.epochs):
            result = training.epoch()
        assert result is not None  # epochs >= 1
        log.debug("%s: test accuracy %.2f%%", r.arch, result.test_acc)
        return training.model.eval(), result.test_acc
    data, loss = RECIPE_DATA[r.data](), resolve_loss(r.loss).fn
    history = fit(model, data["train"], loss, r.train)
    test = dataset_metrics(model, data["test"], loss)
    log.debug("%s: train loss %.4f (running), test %s", r.arch, history[-1], test)
    return model, test.get("acc", float("nan"))
