"""A split of data held for evaluation: ``Split`` (classifier tensors) or ``Batches`` (any
batch structure, in memory or streamed), and what makes one from a ``Dataset``, a
``DataLoader`` or tensors.

A classifier's split is a ``Split`` of float inputs and integer labels; any other data (a user
loss, dict batches) is ``Batches``: collated once and held in memory, or, past
``data.memory_mb``, streamed through a ``DataLoader`` with workers at every point.
Per-sample transforms never run again after loading, and evaluation never augments.
The data sets a config names are loaded in ``engine.data``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from engine.batching import rebatch
from engine.config import DataConfig
from engine.datasafe import bounded, checked_len, indexed, loader_error
from engine.errors import ConfigError, DataSetError, LandscapeError, describe
from engine.imports import load_callable
from engine.losses import is_fused

log = logging.getLogger(__name__)


__all__ = [
    "Batches",
    "Split",
    "as_split",
    "batch_size_of",
    "dataset_split",
    "first_batch",
    "split_batches",
    "subset_indices",
    "to_device",
]


@dataclass(frozen=True)
class Split:
    """One split held as tensors: inputs ``x`` (float) and integer labels ``y``."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """``batch`` with every tensor in its (nested) tuples, lists and dicts on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device, non_blocking) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    return batch


def batch_size_of(batch: Any) -> int | None:
    """The number of samples in a collated batch: the leading size of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else None
    values = batch.values() if isinstance(batch, Mapping) else batch
    if isinstance(values, list | tuple) or isinstance(batch, Mapping):
        for v in values:
            n = batch_size_of(v)
            if n is not None:
                return n
    return None


@dataclass(frozen=True)
class Batches:
    """A split of any batch structure (tuples, dicts, nested containers of tensors).

    In memory: ``batches`` holds the collated batches, moved to the device once (``to``).
    Streamed: ``loader`` makes a fresh ``DataLoader`` for each pass, and each batch is moved
    as it comes, so no more than a few batches are held at once.
    """

    n: int  # samples
    batches: tuple[Any, ...] = ()
    loader: Callable[[], Iterable[Any]] | None = None
    device: torch.device | None = None  # where a streamed split's batches are moved to
    key: str = "data.dataset"  # the config key (or argument) that names it, for errors
    loader_at: Callable[[int], Iterable[Any]] | None = None  # a streamed loader at a batch size

    def __len__(self) -> int:
        return self.n

    @property
    def streamed(self) -> bool:
        return self.loader is not None

    def to(self, device: torch.device | str) -> Batches:
        device = torch.device(device)
        if self.loader is not None:
            return replace(self, device=device)
        return replace(self, batches=tuple(to_device(b, device) for b in self.batches))

    def __iter__(self) -> Iterator[Any]:
        if self.loader is None:
            return iter(self.batches)
        return self._stream()

    def _stream(self) -> Iterator[Any]:
        pin = self.device is not None and self.device.type == "cuda"
        # Each pass ends at the n samples the split was made with: a loader that yields more
        # (an endless IterableDataset or sampler) is refused, not read forever.
        batches = bounded(self.loader(), self.n, self.key, batch_size_of)
        try:
            for b in batches:
                yield b if self.device is None else to_device(b, self.device, non_blocking=pin)
        finally:
            batches.close()  # now, not in a finalizer, where a signal's exception is lost

    def resized(self, size: int) -> Batches:
        """The same samples in batches of ``size``: re-sliced in memory, a new loader when
        streamed; itself where neither can be done (a structure that does not slice)."""
        if self.loader is not None:
            if self.loader_at is None:
                return self
            return replace(self, loader=lambda: self.loader_at(size))
        batches = rebatch(self.batches, size)
        return self if batches is None else replace(self, batches=batches)

    def head(self) -> Any:
        """The first batch (for checks)."""
        return first_batch(self, 1)


def split_batches(split: Split | Batches, batch_size: int) -> Iterable[Any]:
    """The batches of a split: ``(x, y)`` slices of a ``Split``, a ``Batches``' own."""
    if isinstance(split, Batches):
        return split
    return ((split.x[i : i + batch_size], split.y[i : i + batch_size]) for i in
            range(0, len(split), batch_size))  # fmt: skip


def first_batch(split: Split | Batches, batch_size: int) -> Any:
    """The first batch of a split, its pass closed at once (a streamed loader's workers stop
    now, not when the garbage collector finds them)."""
    it = iter(split_batches(split, batch_size))
    try:
        return next(it)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def subset_indices(n: int, size: int, seed: int) -> torch.Tensor:
    """A fixed random subset of ``size`` of ``range(n)``, in increasing order."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[: min(size, n)].sort().values


def _nbytes(item: Any) -> int:
    """Bytes of one sample's tensors (and arrays), nested containers included."""
    if isinstance(item, torch.Tensor):
        return item.element_size() * item.numel()
    if isinstance(item, np.ndarray):
        return int(item.nbytes)
    if isinstance(item, Mapping):
        return sum(_nbytes(v) for v in item.values())
    if isinstance(item, list | tuple):
        return sum(_nbytes(v) for v in item)
    return 8


def dataset_split(ds: Dataset, cfg: DataConfig, key: str) -> Split | Batches:
    """A user (or built-in) Dataset as a split: ``(input, label)`` tensors for the classifier
    losses, else collated batches in memory, or streamed when larger than ``data.memory_mb``."""
    n = checked_len(ds, key)
    if n == 0:
        raise LandscapeError(f"`{key}` returned an empty Dataset.")
    ds = indexed(ds, key, n)  # an item that raises names the data set and its index
    if cfg.subset:
        ds = Subset(ds, subset_indices(n, cfg.subset, cfg.subset_seed).tolist())
        n = len(ds)
    collate = load_callable(cfg.collate, "data.collate") if cfg.collate else None
    stream = cfg.stream
    if stream == "auto":
        try:
            first = ds[0]
        except DataSetError:
            raise
        except Exception as e:
            raise LandscapeError(f"`{key}`: reading item 0 raised {type(e).__name__}: {e}") from e
        stream = _nbytes(first) * n > cfg.memory_mb * 2**20
    if is_fused(cfg.loss) and collate is None and not stream:
        return _tensorize(ds, key, cfg.loss, n)

    def loader(size: int = cfg.fixed_batch) -> DataLoader:
        workers = cfg.loader_workers if stream else 0
        return DataLoader(
            ds,
            batch_size=size,
            shuffle=False,
            collate_fn=collate,
            num_workers=workers,
            pin_memory=stream and torch.cuda.is_available(),
            persistent_workers=False,
            prefetch_factor=2 if workers else None,
        )

    if stream:
        log.info("%s: %d samples stream from a DataLoader at each point", key, n)
        return Batches(n, loader=loader, key=key, loader_at=loader)
    batches: list[Any] = []
    try:
        for batch in bounded(loader(), n, key, batch_size_of):
            batches.append(batch)
    except DataSetError:
        raise
    except Exception as e:
        bs = cfg.fixed_batch
        first, last = len(batches) * bs, min((len(batches) + 1) * bs, n)
        if collate is not None:  # the user's collate failed, not the items' format
            raise LandscapeError(
                f"`data.collate` {cfg.collate!r} failed on items {first}..{last - 1} of "
                f"`{key}`: {describe(e)}"
            ) from e
        raise LandscapeError(
            f"`{key}`: collating items {first}..{last - 1} failed ({describe(e)}); items must "
            "be tensors, or tuples / dicts of them, of equal shapes (or set `data.collate`)"
        ) from e
    return Batches(n, batches=tuple(batches), key=key)


def _tensorize(ds: Dataset, key: str, cfg_loss: str = "crossentropy", n: int = 0) -> Split:
    """Run a Dataset (of a length ``dataset_split`` checked) once and stack it; per-sample
    transforms never run again."""
    xs, ys = [], []
    try:
        loader = DataLoader(ds, batch_size=256, shuffle=False, num_workers=0)
        for xb, yb in bounded(loader, n or len(ds), key, batch_size_of):
            xs.append(torch.as_tensor(xb))
            ys.append(torch.as_tensor(yb))
        x, y = torch.cat(xs), torch.cat(ys)  # items of different shapes fail here
    except DataSetError:
        raise
    except Exception as e:
        raise LandscapeError(
            f"`{key}`: items must be (input tensor, integer label) pairs for `data.loss` = "
            f"{cfg_loss!r} ({describe(e)}); other items need a loss function"
        ) from e
    if not torch.is_floating_point(x):
        x = x.float()
    if torch.is_floating_point(y) or y.ndim != 1:
        raise LandscapeError(
            f"`{key}`: labels must be integer class indices for `data.loss` = {cfg_loss!r}, got "
            f"{y.dtype} of shape {tuple(y.shape)}; set `data.loss` to 'squared_error' or a "
            "function for other targets."
        )
    return Split(x, y.long())


def as_split(obj: Any, cfg: DataConfig, key: str) -> Split | Batches:
    """A split from what a Python caller holds: a ``Dataset``, a ``DataLoader``, or a tuple of
    tensors (a ``TensorDataset``); ``key`` names it in errors.

    A Dataset or tensors go through ``dataset_split`` (``data.subset``, ``data.batch_size`` and
    streaming as for a configured data set). A DataLoader's batches are used as they come:
    held in memory while they fit ``data.memory_mb`` (joined into a ``Split`` for the
    classifier losses on ``(input, label)`` batches, the fused path), else the loader is
    iterated again at every point; it brings its own batching, so ``data.subset`` is refused.
    """
    from torch.utils.data import TensorDataset

    if isinstance(obj, tuple | list) and obj and all(isinstance(t, torch.Tensor) for t in obj):
        if len({len(t) for t in obj}) != 1:
            sizes = ", ".join(str(len(t)) for t in obj)
            raise LandscapeError(f"`{key}`: the tensors have different lengths ({sizes}).")
        obj = TensorDataset(*obj)
    if isinstance(obj, Dataset) and not isinstance(obj, DataLoader):
        return dataset_split(obj, cfg, key)
    if not isinstance(obj, DataLoader):
        raise LandscapeError(
            f"`{key}` is a {type(obj).__name__}; expected a torch Dataset, a DataLoader or a "
            "tuple of tensors"
        )
    if cfg.subset:
        raise ConfigError(
            f"`data.subset` cannot pick samples from the DataLoader `{key}`; pass its dataset "
            "(or a Subset) instead"
        )
    budget = cfg.memory_mb * 2**20
    try:
        n_batches: int | None = len(obj)
    except Exception:  # an IterableDataset or sampler without a length
        n_batches = None
    # Every pass is bounded by the loader's len(): an endless one is refused, not read forever;
    # one without a length must fit in memory, where the budget bounds it.
    passes = bounded(obj, n_batches, key, lambda b: 1, "batches") if n_batches else obj
    held: list[Any] = []
    n = size = 0
    if cfg.stream is not True:
        try:
            for batch in passes:
                held.append(batch)
                n += batch_size_of(batch) or 0
                size += _nbytes(batch)
                if size > budget and (cfg.stream == "auto" or n_batches is None):
                    held = []  # too large to hold: streamed below
                    break
        except DataSetError:
            raise
        except Exception as e:
            raise LandscapeError(
                f"`{key}`: the DataLoader raised {loader_error(e)} at batch {len(held)}"
            ) from e
    if held or (cfg.stream is False and n_batches is not None):
        if n == 0:
            raise LandscapeError(f"`{key}` gave no samples.")
        pairs = all(
            isinstance(b, list | tuple) and len(b) == 2 and isinstance(b[0], torch.Tensor)
            for b in held
        )
        if is_fused(cfg.loss) and pairs:
            x = torch.cat([torch.as_tensor(b[0]) for b in held])
            y = torch.cat([torch.as_tensor(b[1]) for b in held])
            if not torch.is_floating_point(x):
                x = x.float()
            if torch.is_floating_point(y) or y.ndim != 1:
                raise LandscapeError(
                    f"`{key}`: labels must be integer class indices, got {y.dtype}."
                )
            return Split(x, y.long())
        return Batches(n, batches=tuple(held), key=key)
    if n_batches is None:
        raise DataSetError(
            f"`{key}` is a DataLoader without len() larger than `data.memory_mb` "
            f"({cfg.memory_mb} MiB): it cannot be streamed, since its end cannot be checked; "
            "give its data set a __len__, or raise data.memory_mb"
        )
    try:  # one pass to count: the loader knows no total
        n = sum(batch_size_of(b) or 0 for b in bounded(obj, n_batches, key, lambda b: 1, "batches"))
    except DataSetError:
        raise
    except Exception as e:
        raise LandscapeError(f"`{key}`: the DataLoader raised {loader_error(e)}") from e
    if n == 0:
        raise LandscapeError(f"`{key}` gave no samples.")
    log.info("%s: %d samples stream from its DataLoader at each point", key, n)
    return Batches(n, loader=lambda: obj, key=key)
