"""The data sets a config names (``data.dataset``), decoded and normalised once into tensors
(or streamed when too large): each split a ``Split`` or ``Batches`` (``engine.splits``).

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

import pickle
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.config import DataConfig
from engine.errors import ConfigError, LandscapeError
from engine.imports import is_callable_spec, load_callable
from engine.splits import Batches, Split, dataset_split, subset_indices

__all__ = [
    "BUILTIN",
    "DIGITS_MEAN",
    "DIGITS_STD",
    "NORMALIZATION",
    "check_dataset",
    "digits_splits",
    "load_splits",
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
