"""Training with per-epoch checkpoints: the trajectories and minimizers the paper compares.

``Training`` holds a model, its optimizer and the data on the device and runs one epoch at a
time (a classifier, cross-entropy); ``fit`` trains any model on a loss of ``engine.losses``
(the recipes' language model and regression); ``train_run`` wraps ``Training`` with a run
folder:

- ``config.toml``: the resolved config
- ``model_0.pt`` (the initialisation) and ``model_{epoch}.pt`` every ``train.save_every``
  epochs and at the end, each ``{'state_dict', 'acc', 'epoch'}`` like the reference's ``.t7``
- ``metrics.csv``: per epoch the learning rate, the running train loss and accuracy (train
  mode, augmented, as the reference records them), the test loss and accuracy (eval mode)
- ``last.pt``: model, optimizer and epoch, rewritten after every epoch for ``--resume``

Shuffling and augmentation draw from a generator seeded by ``(train.seed, epoch)``, so a run
resumed at an epoch boundary ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, default_collate

from engine.config import (
    Config,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    config_to_toml,
    read_toml_file,
)
from engine.data import load_splits
from engine.devices import keep_freed_cpu_memory
from engine.errors import ConfigError, LandscapeError, describe
from engine.evaluate import check_model_labels, evaluate, loss_sums, read_sums
from engine.losses import LOSSES, LossFn
from engine.models import build_model
from engine.models.checkpoint import torch_load_error
from engine.splits import Split, to_device

__all__ = [
    "EpochResult",
    "Training",
    "crop_flip",
    "dataset_metrics",
    "fit",
    "lr_at",
    "run_folder",
    "save_checkpoint",
    "train_run",
]

METRICS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"]


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    lr: float
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    seconds: float

    def row(self) -> list[Any]:
        return [getattr(self, k) for k in METRICS]


def lr_at(tc: TrainConfig, epoch: int) -> float:
    """Learning rate of ``epoch`` (1-based)."""
    if tc.schedule == "constant":
        return tc.lr
    if tc.schedule == "cosine":
        return 0.5 * tc.lr * (1 + math.cos(math.pi * (epoch - 1) / tc.epochs))
    # The reference decays after epochs 150, 225 and 275 of 300: 1/2, 3/4 and 11/12 of the run.
    milestones = [tc.epochs // 2, tc.epochs * 3 // 4, tc.epochs * 11 // 12]
    return tc.lr * tc.lr_decay ** sum(epoch > m for m in milestones if m > 0)


def crop_flip(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding (the mean colour, after normalisation) and random flip."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    i = torch.randint(0, 2 * pad + 1, (n,), generator=g).to(x.device)
    j = torch.randint(0, 2 * pad + 1, (n,), generator=g).to(x.device)
    flip = (torch.rand(n, generator=g) < 0.5).to(x.device)
    rows = (i[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (j[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def _optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    if tc.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=tc.lr,
        momentum=tc.momentum,
        nesterov=tc.nesterov,
        weight_decay=tc.weight_decay,
    )


class Training:
    """A model, its optimizer and the data on one device; ``epoch()`` trains one more epoch."""

    def __init__(
        self,
        model: nn.Module,
        splits: dict[str, Split],
        tc: TrainConfig,
        device: torch.device,
        augment: bool,
    ) -> None:
        if tc.optimizer == "sgd" and tc.nesterov and tc.momentum <= 0:
            raise ConfigError("`train.nesterov = true` needs `train.momentum` > 0.")
        if device.type == "cpu":
            keep_freed_cpu_memory()  # large activations reused, not faulted in each step
        self.model = model.to(device)
        self.train = splits["train"].to(device)
        self.test = splits["test"].to(device) if "test" in splits else None
        for name, split in (("train", self.train), ("test", self.test)):
            if split is not None:
                check_model_labels(self.model, split, name)
        self.tc, self.device, self.augment = tc, device, augment
        self.opt = _optimizer(self.model, tc)
        self.done = 0  # epochs finished

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "epoch": self.done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.done = int(state["epoch"])

    def epoch(self, on_batch: Callable[[int, int], None] | None = None) -> EpochResult:
        e = self.done + 1
        t0 = time.perf_counter()
        lr = lr_at(self.tc, e)
        for group in self.opt.param_groups:
            group["lr"] = lr
        g = torch.Generator().manual_seed(self.tc.seed * 1_000_003 + e)
        order = torch.randperm(len(self.train), generator=g).to(self.device)
        bs, n_batches = self.tc.batch_size, math.ceil(len(self.train) / self.tc.batch_size)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self.model.train()
        for b in range(n_batches):
            idx = order[b * bs : (b + 1) * bs]
            x, y = self.train.x[idx], self.train.y[idx]
            if self.augment:
                x = crop_flip(x, g)
            self.opt.zero_grad(set_to_none=True)
            logits = self.model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            self.opt.step()
            loss_sum += loss.detach().double() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            if on_batch is not None:
                on_batch(b + 1, n_batches)
        self.model.eval()
        n = len(self.train)
        test = evaluate(self.model, self.test, 1024) if self.test is not None else None
        self.done = e
        return EpochResult(
            e,
            lr,
            float(loss_sum) / n,
            100.0 * float(correct) / n,
            test.loss if test else float("nan"),
            test.acc if test else float("nan"),
            time.perf_counter() - t0,
        )


def _take(batch: Any, idx: torch.Tensor) -> Any:
    """The samples ``idx`` of a collated batch (tensors in nested tuples, lists and dicts)."""
    if isinstance(batch, torch.Tensor):
        return batch[idx]
    if isinstance(batch, Mapping):
        return {k: _take(v, idx) for k, v in batch.items()}
    return type(batch)(_take(v, idx) for v in batch)


def _sums(out: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss and summed count (1 per sample where the loss gives none) of one batch."""
    loss = out["loss"]
    count = out["count"] if "count" in out else torch.ones_like(loss)
    return loss.sum(), count.sum()


def fit(
    model: nn.Module,
    dataset: Dataset,
    loss_fn: LossFn,
    tc: TrainConfig,
    device: torch.device | None = None,
) -> list[float]:
    """Train ``model`` in place on ``dataset`` to minimise ``loss_fn``'s count-weighted mean
    (per batch: sum of loss / sum of count), with the optimizer, learning rate and schedule,
    batch size, epochs and shuffling seed of ``tc``. Returns each epoch's running train loss.

    The data set is collated once into memory (the recipes' sets are a few MB); shuffling
    draws from ``(tc.seed, epoch)`` as ``Training`` does, so a run is deterministic on a CPU.
    """
    device = device or torch.device("cpu")
    data = to_device(default_collate([dataset[i] for i in range(len(dataset))]), device)
    model.to(device)
    opt = _optimizer(model, tc)
    history = []
    for e in range(1, tc.epochs + 1):
        for group in opt.param_groups:
            group["lr"] = lr_at(tc, e)
        g = torch.Generator().manual_seed(tc.seed * 1_000_003 + e)
        order = torch.randperm(len(dataset), generator=g).to(device)
        total = torch.zeros(2, dtype=torch.float64, device=device)
        model.train()
        for idx in order.split(tc.batch_size):
            loss, count = _sums(loss_fn(model, _take(data, idx)))
            opt.zero_grad(set_to_none=True)
            (loss / count).backward()
            opt.step()
            total += torch.stack([loss.detach(), count.detach()]).double()
        model.eval()
        history.append(float(total[0] / total[1]))
    return history


def dataset_metrics(
    model: nn.Module, dataset: Dataset, loss_fn: LossFn, batch_size: int = 1024
) -> dict[str, float]:
    """Every metric of ``loss_fn`` over ``dataset`` as sum(value) / sum(count), in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    n = len(dataset)
    batches = (
        to_device(default_collate([dataset[i] for i in range(a, min(a + batch_size, n))]), device)
        for a in range(0, n, batch_size)
    )
    sums, samples = loss_sums(loss_fn, model, batches, device.type)
    got = read_sums(sums, getattr(loss_fn, "__qualname__", "loss"))
    count = got.pop("count") if "count" in got else float(samples)
    return {k: v / count for k, v in got.items()}


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, model: nn.Module, epoch: int, acc: float) -> None:
    """A checkpoint in the reference's layout: ``{'state_dict', 'acc', 'epoch'}``."""
    _atomic_save({"state_dict": model.state_dict(), "acc": acc, "epoch": epoch}, path)


def run_folder(cfg: Config, config_path: str | Path | None) -> Path:
    if cfg.train.out:
        return Path(cfg.train.out)
    return Path("runs") / (Path(config_path).stem if config_path else "train")


def _training_identity(cfg: Config) -> dict[str, Any]:
    """The keys that decide a training run (a resume must match them)."""
    d = config_to_dict(cfg)
    d["model"].pop("checkpoint")  # what compute reads afterwards, not what training starts from
    d["train"].pop("out")
    return {k: d[k] for k in ("model", "data", "train")}


def train_run(
    cfg: Config,
    run_dir: Path,
    device: torch.device,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_start: Callable[[Training], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> Training:
    """Train ``cfg`` into ``run_dir`` (see the module docstring); returns the finished Training."""
    tc = cfg.train
    last = run_dir / "last.pt"
    if "train" not in cfg.data.splits:
        raise ConfigError("`data.splits` must include 'train' to train.")
    if run_dir.exists() and any(run_dir.iterdir()) and not (resume or overwrite):
        raise LandscapeError(
            f"run folder {run_dir} is not empty; pass --resume to continue it, --overwrite to "
            "start again, or choose another train.out / --out"
        )
    if resume and not last.is_file():
        raise LandscapeError(f"nothing to resume: {last} does not exist")
    if resume:
        try:
            # A regular file only: a FIFO planted there blocked the resume for good.
            stored = config_from_dict(read_toml_file(run_dir / "config.toml", "Run config")[1])
        except LandscapeError as e:
            raise LandscapeError(f"cannot resume from {run_dir}: {e}") from None
        if _training_identity(stored) != _training_identity(cfg):
            raise LandscapeError(
                f"{run_dir} was trained with a different config (model, data or train keys); "
                "resume it with the same config, or pass --overwrite"
            )
    augment = tc.augment == "crop_flip" or (
        tc.augment == "auto" and cfg.data.dataset in ("cifar10", "cifar100")
    )
    if cfg.data.loss not in LOSSES or not LOSSES.get(cfg.data.loss).trainable:
        # Training is the paper's classifier recipe; a surface takes any loss, training not yet.
        raise ConfigError(
            f"`train` trains classifiers (with cross-entropy); `data.loss` = {cfg.data.loss!r} "
            "is for surfaces (compute): train such a model in your own script"
        )
    model = build_model(cfg.model.arch, cfg.model.kwargs, seed=tc.seed)
    training = Training(model, load_splits(cfg.data), tc, device, augment)
    if resume:
        try:
            state = torch.load(last, map_location=device, weights_only=True)
        except Exception as e:  # torch's message is a page; a refused global is named
            raise LandscapeError(f"cannot resume: {torch_load_error(last, None, e)}") from e
        try:
            training.load_state_dict(state)
        except Exception as e:
            raise LandscapeError(f"cannot resume from {last}: {describe(e)}") from e
    else:
        if overwrite and run_dir.exists():
            for old in [*run_dir.glob("model_*.pt"), last, run_dir / "metrics.csv"]:
                old.unlink(missing_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(config_to_toml(cfg))
        save_checkpoint(run_dir / "model_0.pt", training.model, 0, float("nan"))
        with open(run_dir / "metrics.csv", "w", newline="") as f:
            csv.writer(f).writerow(METRICS)
    _truncate_metrics(run_dir / "metrics.csv", training.done)
    if on_start is not None:
        on_start(training)
    while training.done < tc.epochs:
        r = training.epoch(on_batch)
        acc = r.test_acc if not math.isnan(r.test_acc) else r.train_acc
        if r.epoch % tc.save_every == 0 or r.epoch == tc.epochs:
            save_checkpoint(run_dir / f"model_{r.epoch}.pt", training.model, r.epoch, acc)
        with open(run_dir / "metrics.csv", "a", newline="") as f:
            csv.writer(f).writerow(r.row())
        _atomic_save(training.state_dict(), last)
        if on_epoch is not None:
            on_epoch(r)
    return training


def _truncate_metrics(path: Path, epochs: int) -> None:
    """Drop rows past the resumed epoch (written after the last saved state)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= epochs]
    if len(keep) != len(rows):
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(keep)
