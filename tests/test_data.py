import textwrap

import pytest
import torch

from engine.config import DataConfig
from engine.data import DIGITS_MEAN, DIGITS_STD, digits_splits, load_splits
from engine.errors import ConfigError, LandscapeError


def test_digits_split_is_fixed():
    s = digits_splits()
    assert len(s["train"]) == 1437 and len(s["test"]) == 360
    assert s["train"].x.shape[1:] == (1, 8, 8) and s["train"].y.dtype == torch.long
    raw = digits_splits(raw=True)["train"].x
    assert raw.mean().item() == pytest.approx(DIGITS_MEAN, abs=1e-3)
    assert raw.std().item() == pytest.approx(DIGITS_STD, abs=1e-3)
    assert load_splits(DataConfig(splits=("test",))).keys() == {"test"}


def test_user_dataset_callables(tmp_path):
    (tmp_path / "myds.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch.utils.data import TensorDataset
            def train():
                g = torch.Generator().manual_seed(0)
                return TensorDataset(torch.randn(20, 1, 8, 8, generator=g), torch.arange(20) % 10)
            def test():
                return TensorDataset(torch.zeros(5, 1, 8, 8), torch.zeros(5, dtype=torch.long))
            def float_labels():
                return TensorDataset(torch.zeros(5, 3), torch.zeros(5))
            """
        )
    )
    f = tmp_path / "myds.py"
    s = load_splits(DataConfig(dataset=f"{f}:train", test_dataset=f"{f}:test"))
    assert len(s["train"]) == 20 and len(s["test"]) == 5
    with pytest.raises(ConfigError, match="data.test_dataset"):
        load_splits(DataConfig(dataset=f"{f}:train"))
    assert load_splits(DataConfig(dataset=f"{f}:train", splits=("train",))).keys() == {"train"}
    with pytest.raises(LandscapeError, match="labels must be integer"):
        load_splits(DataConfig(dataset=f"{f}:float_labels", splits=("train",)))


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="Unknown data set 'cifar11'.*digits"):
        load_splits(DataConfig(dataset="cifar11"))
