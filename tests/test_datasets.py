"""Built-in data sets read from folders in torchvision's layout that the tests write."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch

from engine.config import DataConfig
from engine.data import NORMALIZATION, load_splits
from engine.errors import ConfigError
from engine.splits import subset_indices


def write_cifar10(root, n_per_batch=6, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n_per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": data, "labels": labels, "filenames": []}, f)
        batches[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return batches


def test_cifar10_layout_and_reference_normalisation(tmp_path):
    batches = write_cifar10(tmp_path)
    s = load_splits(DataConfig(dataset="cifar10", root=str(tmp_path)))
    assert s["train"].x.shape == (30, 3, 32, 32) and s["test"].x.shape == (6, 3, 32, 32)
    data, labels = batches["data_batch_2"]
    raw = torch.from_numpy(data[0].reshape(3, 32, 32)).float() / 255
    mean = torch.tensor([125.3, 123.0, 113.9]).view(3, 1, 1) / 255
    std = torch.tensor([63.0, 62.1, 66.7]).view(3, 1, 1) / 255
    torch.testing.assert_close(s["train"].x[6], (raw - mean) / std)
    assert s["train"].y[6].item() == labels[0]
    unnormalised = load_splits(DataConfig(dataset="cifar10", root=str(tmp_path), raw=True))
    torch.testing.assert_close(unnormalised["train"].x[6], raw)
    assert NORMALIZATION["cifar10"][0][0] == pytest.approx(125.3 / 255)


def test_missing_folder_names_where_it_looked_and_the_flag(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_splits(DataConfig(dataset="cifar10", root=str(tmp_path / "nowhere")))
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg and "data.download" in msg
    with pytest.raises(ConfigError, match="data.download"):
        load_splits(DataConfig(dataset="mnist", root=str(tmp_path)))


def _idx(path, magic, arr):
    with open(path, "wb") as f:
        f.write(struct.pack(">" + "i" * (1 + arr.ndim), magic, *arr.shape))
        f.write(arr.astype(np.uint8).tobytes())


def test_mnist_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(7, 28, 28))
    for prefix, n in (("train", 7), ("t10k", 4)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", 2051, imgs[:n])
        _idx(raw / f"{prefix}-labels-idx1-ubyte", 2049, np.arange(n) % 10)
    s = load_splits(DataConfig(dataset="mnist", root=str(tmp_path)))
    assert s["train"].x.shape == (7, 1, 28, 28) and len(s["test"]) == 4
    expect = (torch.from_numpy(imgs[3]).float() / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(s["train"].x[3, 0], expect)


def test_imagefolder(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for k in range(2):
                Image.new("RGB", (20, 12), colour).save(d / f"{k}.png")
    s = load_splits(DataConfig(dataset="imagefolder", root=str(tmp_path), image_size=8))
    assert s["train"].x.shape == (4, 3, 8, 8) and s["test"].y.tolist() == [0, 0, 1, 1]
    assert s["train"].x[0, 0, 0, 0].item() == pytest.approx(1.0)  # red 1.0 -> (1-0.5)/0.5


def test_subset_is_fixed_by_its_seed():
    full = load_splits(DataConfig(splits=("train",)))["train"]
    a = load_splits(DataConfig(splits=("train",), subset=100, subset_seed=3))["train"]
    b = load_splits(DataConfig(splits=("train",), subset=100, subset_seed=3))["train"]
    idx = subset_indices(len(full), 100, 3)
    assert len(a) == 100 and torch.equal(a.x, b.x) and torch.equal(a.x, full.x[idx])
    c = load_splits(DataConfig(splits=("train",), subset=100, subset_seed=4))["train"]
    assert not torch.equal(a.y, c.y) or not torch.equal(a.x, c.x)
