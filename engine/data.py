"""Data sets, decoded and normalised once into tensors (or streamed when too large).

A classifier's split is a ``Split`` of float inputs and integer labels; any other data (a user
loss, dict batches) is ``Batches``: collated once and held in memory, or, past
``data.memory_mb``, streamed through a ``DataLoader`` with workers at every point.
Per-sample transforms never run again after loading, and evaluation never augments.

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 real images, no network). Every fifth
  sample (index % 5 == 0) is test (360), the rest train (1,437); pixels / 16, then
  standardised with ``DIGITS_MEAN`` / ``DIGITS_STD`` (of the train split).
- ``cifar10``, ``cifar100``: the torchvision folders ``cifar-10-batches-py`` and
  ``cifar-100-python`` under ``data.root``, read directly (no md5 pass over 170 MB); CIFAR-10
  is normalised exactly as the reference code does.
- ``mnist``, ``fashionmnist``: the torchvision folders ``MNIST/raw``, ``FashionMNIST/raw``.
- ``imagefolder``: ``data.root/train`` and ``data.root/test`` (or ``val``) in torchvision's
  ImageFolder layout, resized to ``data.image_size``.
- ``charlm``: byte chunks of the standard library's ``pydoc_data.topics`` as dicts of
  ``input_ids`` (``engine.textdata``); ``diabetes``: scikit-learn's bundled regression set
  (``engine.tabular``).
- User data sets: ``data.dataset = 'pkg.mod:fn'`` returning a torch ``Dataset`` of
  ``(input, label)`` pairs (or any tuples / dicts of tensors, for a user loss), and
  ``data.test_dataset`` likewise; ``data.collate`` collates them.

Nothing is downloaded unless ``data.download = true``.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from engine.batching import rebatch
from engine.config import DataConfig
from engine.datasafe import bounded, checked_len, indexed, loader_error
from engine.errors import ConfigError, DataSetError, LandscapeError, describe
from engine.imports import is_callable_spec, load_callable
from engine.losses import is_fused

log = logging.getLogger(__name__)


__all__ = [
    "BUILTIN",
    "DIGITS_MEAN",
    "DIGITS_STD",
    "NORMALIZATION",
    "Batches",
    "Split",
    "check_dataset",
    "dataset_split",
    "digits_splits",
    "load_splits",
    "split_batches",
    "to_device",
]

DIGITS_MEAN = 0.3052  # of x / 16 over the train split, rounded
DIGITS_STD = 0.3763

# Per-channel (mean, std) of inputs scaled to [0, 1]. CIFAR-10's are the reference code's.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "digits": ((DIGITS_MEAN,), (DIGITS_STD,)),
    "cifar10": (
        (125.3 / 255, 123.0 / 255, 113.9 / 255),
        (63.0 / 255, 62.1 / 255, 66.7 / 255),
    ),
    "cifar100": (
        (129.3 / 255, 124.1 / 255, 112.4 / 255),
        (68.2 / 255, 65.4 / 255, 70.4 / 255),
    ),
    "mnist": ((0.1307,), (0.3081,)),
    "fashionmnist": ((0.2860,), (0.3530,)),
    "imagefolder": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


@dataclass(frozen=True)
class Split:
    """One split held as tensors: inputs ``x`` (float) and integer labels ``y``."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


def _normalize(x: torch.Tensor, name: str, cfg: DataConfig | None) -> torch.Tensor:
    """Standardise ``x`` (N, C, H, W in [0, 1]) per channel, unless ``data.raw``."""
    if cfg is not None and cfg.raw:
        return x
    mean, std = (cfg.mean, cfg.std) if cfg is not None and cfg.mean else NORMALIZATION[name]
    if len(mean) not in (1, x.shape[1]):
        raise ConfigError(
            f"`data.mean` has {len(mean)} values but the images have {x.shape[1]} channels."
        )
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def digits_splits(raw: bool = False, cfg: DataConfig | None = None) -> dict[str, Split]:
    """The embedded digits data as ``{'train': Split, 'test': Split}``."""
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    if not raw:
        x = _normalize(x, "digits", cfg)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    test = torch.arange(len(y)) % 5 == 0
    return {"train": Split(x[~test], y[~test]), "test": Split(x[test], y[test])}


def _missing(what: str, looked: Path, cfg: DataConfig) -> ConfigError:
    return ConfigError(
        f"{what} not found: looked in {looked}; set `data.root` to the folder that holds it, "
        "or `data.download = true` to download it there"
    )


def _cifar(cfg: DataConfig, hundred: bool) -> dict[str, Split]:
    name = "cifar100" if hundred else "cifar10"
    folder = Path(cfg.root) / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    if not folder.is_dir():
        if not cfg.download:
            raise _missing("CIFAR-100" if hundred else "CIFAR-10", folder, cfg)
        import torchvision

        cls = torchvision.datasets.CIFAR100 if hundred else torchvision.datasets.CIFAR10
        cls(cfg.root, train=True, download=True)
        cls(cfg.root, train=False, download=True)
    files = (
        {"train": ["train"], "test": ["test"]}
        if hundred
        else {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    )
    out = {}
    for split in cfg.splits:
        xs, ys = [], []
        for fname in files[split]:
            path = folder / fname
            if not path.is_file():
                raise LandscapeError(f"{name}: {path} is missing; the folder is incomplete")
            try:
                with open(path, "rb") as f:
                    # The torchvision layout: Python pickles of {'data', 'labels'|'fine_labels'}.
                    batch = _CifarUnpickler(f, encoding="latin1").load()
                if not isinstance(batch, dict):
                    raise ValueError(f"a {type(batch).__name__}, not a dict")
                xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch["fine_labels" if hundred else "labels"]))
            except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as e:
                raise LandscapeError(f"{name}: {path} is not a CIFAR batch ({e})") from e
        x = torch.from_numpy(np.concatenate(xs)).float().div_(255)
        out[split] = Split(_normalize(x, name, cfg), torch.from_numpy(np.concatenate(ys)).long())
    return out


# What a CIFAR batch pickle may refer to: numpy arrays (as pickled by numpy 1.x and 2.x, any
# protocol) and bytes. Anything else would run code of the file's choosing when loaded.
_CIFAR_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles the builtins and numpy types of the CIFAR format, and refuses anything else."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(
                f"it refers to {module}.{name}, which a CIFAR batch never does; not loaded"
            )
        return super().find_class(module, name)


def _mnist(cfg: DataConfig, fashion: bool) -> dict[str, Split]:
    import torchvision

    name = "fashionmnist" if fashion else "mnist"
    cls = torchvision.datasets.FashionMNIST if fashion else torchvision.datasets.MNIST
    out = {}
    for split in cfg.splits:
        try:
            ds = cls(cfg.root, train=split == "train", download=cfg.download)
        except RuntimeError:
            raise _missing(cls.__name__, Path(cfg.root) / cls.__name__ / "raw", cfg) from None
        x = ds.data.float().div_(255).unsqueeze(1)
        out[split] = Split(_normalize(x, name, cfg), torch.as_tensor(ds.targets).long())
    return out


def _imagefolder(cfg: DataConfig) -> dict[str, Dataset]:
    import torchvision
    from torchvision import transforms

    root = Path(cfg.root)
    steps = [transforms.Resize((cfg.image_size, cfg.image_size)), transforms.ToTensor()]
    if not cfg.raw:
        mean, std = (cfg.mean, cfg.std) if cfg.mean else NORMALIZATION["imagefolder"]
        if len(mean) not in (1, 3):
            raise ConfigError(f"`data.mean` has {len(mean)} values but the images have 3 channels.")
        steps.append(transforms.Normalize(mean, std))
    tf = transforms.Compose(steps)
    out = {}
    for split in cfg.splits:
        names = ["train"] if split == "train" else ["test", "val"]
        folder = next((root / n for n in names if (root / n).is_dir()), None)
        if folder is None:
            raise ConfigError(
                f"imagefolder: no {' or '.join(names)} folder in {root} (set `data.root`)"
            )
        # Normalised in the transform, so a streamed split (ImageNet-sized) is too.
        out[split] = torchvision.datasets.ImageFolder(str(folder), transform=tf)
    return out


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


def _user_split(spec: str, key: str, cfg: DataConfig) -> Split | Batches:
    fn = load_callable(spec, key)
    try:
        ds = fn()
    except Exception as e:
        raise LandscapeError(f"`{key}` {spec!r} raised {type(e).__name__}: {e}") from e
    return dataset_split(ds, cfg, key)


BUILTIN: dict[str, Callable[[DataConfig], dict[str, Split | Dataset]]] = {
    "digits": lambda cfg: digits_splits(cfg=cfg),  # _normalize honours cfg.raw
    "cifar10": lambda cfg: _cifar(cfg, hundred=False),
    "cifar100": lambda cfg: _cifar(cfg, hundred=True),
    "mnist": lambda cfg: _mnist(cfg, fashion=False),
    "fashionmnist": lambda cfg: _mnist(cfg, fashion=True),
    "imagefolder": _imagefolder,
    # Imported on use: the text and tabular sets are not needed by the image ones.
    "charlm": lambda cfg: _lazy("engine.textdata", "charlm_datasets"),
    "diabetes": lambda cfg: _lazy("engine.tabular", "diabetes_datasets"),
}


def _lazy(module: str, name: str) -> dict[str, Dataset]:
    import importlib

    return getattr(importlib.import_module(module), name)()


def subset_indices(n: int, size: int, seed: int) -> torch.Tensor:
    """A fixed random subset of ``size`` of ``range(n)``, in increasing order."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[: min(size, n)].sort().values


def _take_subset(split: Split, cfg: DataConfig) -> Split:
    if not cfg.subset:
        return split
    idx = subset_indices(len(split), cfg.subset, cfg.subset_seed)
    return Split(split.x[idx], split.y[idx])


def check_dataset(cfg: DataConfig) -> None:
    """The data set's names, checked without loading anything: a built-in name, or callables
    for a user data set (its test split's too, when ``data.splits`` asks for it)."""
    if is_callable_spec(cfg.dataset):
        if cfg.test_dataset and not is_callable_spec(cfg.test_dataset):
            raise ConfigError(
                f"Expected `data.test_dataset` as 'module:callable', got {cfg.test_dataset!r}."
            )
        if "test" in cfg.splits and not cfg.test_dataset:
            raise ConfigError(
                "`data.splits` asks for 'test' but `data.test_dataset` is empty; name a callable "
                "for the test split or set data.splits = ['train']."
            )
        return
    if cfg.dataset not in BUILTIN:
        raise ConfigError(
            f"Unknown data set {cfg.dataset!r} in `data.dataset`; expected one of "
            f"{', '.join(sorted(BUILTIN))}, or 'module:callable' / 'file.py:callable'."
        )
    if cfg.test_dataset:
        raise ConfigError("`data.test_dataset` is only for user data sets given as callables.")


def load_splits(cfg: DataConfig, splits: Sequence[str] | None = None) -> dict[str, Split]:
    """Load the splits named in ``cfg.splits`` (or ``splits``) on the CPU, each decoded once."""
    if splits is not None:
        cfg = replace(cfg, splits=tuple(splits))
    check_dataset(cfg)
    if is_callable_spec(cfg.dataset):
        out = {}
        if "train" in cfg.splits:
            out["train"] = _user_split(cfg.dataset, "data.dataset", cfg)
        if "test" in cfg.splits:
            out["test"] = _user_split(cfg.test_dataset, "data.test_dataset", cfg)
        return out
    loaded = BUILTIN[cfg.dataset](cfg)
    out = {}
    for name in cfg.splits:
        got = loaded[name]
        if isinstance(got, Split):
            out[name] = _take_subset(got, cfg)
        else:  # a Dataset: collated (or streamed) like a user's
            out[name] = dataset_split(got, cfg, f"data.dataset {cfg.dataset!r}")
    return out


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
