"""Embedded tabular data for regression surfaces: scikit-learn's bundled diabetes data.

``diabetes``: 442 patients, 10 features (age, sex, BMI, blood pressure, six blood serum
measurements) and a disease-progression target one year on, read from the files that ship
with scikit-learn (no network). Every fifth sample (index % 5 == 0) is test (89), the rest
train (353). Features and target are standardised with the train split's mean and
population standard deviation (computed in float64), so a model that
predicts 0 has a squared error of 1 on train.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

__all__ = ["diabetes_arrays", "diabetes_datasets"]


def diabetes_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The raw features (442, 10) and targets (442,), in scikit-learn's order, float64."""
    from sklearn.datasets import load_diabetes  # imported here: sklearn is slow to import

    bunch = load_diabetes(scaled=False)  # unscaled: we standardise with train statistics
    return bunch.data.astype(np.float64), bunch.target.astype(np.float64)


def diabetes_datasets() -> dict[str, Dataset]:
    """``{'train', 'test'}`` of ``(x: float32 (10,), y: float32 ())`` pairs, standardised."""
    x, y = diabetes_arrays()
    test = np.arange(len(y)) % 5 == 0
    mx, sx = x[~test].mean(0), x[~test].std(0)
    my, sy = y[~test].mean(), y[~test].std()
    xs = torch.from_numpy(((x - mx) / sx).astype(np.float32))
    ys = torch.from_numpy(((y - my) / sy).astype(np.float32))
    mask = torch.from_numpy(test)
    return {
        "train": TensorDataset(xs[~mask], ys[~mask]),
        "test": TensorDataset(xs[mask], ys[mask]),
    }
