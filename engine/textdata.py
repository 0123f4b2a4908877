"""Embedded text for language-model surfaces: the Python documentation that ships with Python.

``pydoc_data.topics`` (the ``help()`` topics, e.g. 'assignment', 'if', 'lambda') is part of
every CPython install, so the ``charlm`` data needs no download. The topics are joined in
sorted key order, encoded as UTF-8 bytes (token ids 0..255), and cut into non-overlapping
chunks of ``context + 1`` bytes; every tenth chunk (index % 10 == 0) is test, the rest
train, and ``max_train`` / ``max_test`` keep evenly spaced chunks of each split so every topic
stays represented. The text is the running Python's (Python 3.11.7: 79 topics, 466,117
bytes, 7,171 chunks of 65 bytes), so it may differ between Python releases.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["TensorDictDataset", "charlm_datasets", "charlm_text"]


class TensorDictDataset(Dataset):
    """Samples ``{name: tensor[i]}`` from tensors that share their first dimension."""

    def __init__(self, tensors: Mapping[str, Tensor]) -> None:
        sizes = {len(t) for t in tensors.values()}
        if len(sizes) != 1:
            raise ValueError(f"tensors of different lengths: {sorted(sizes)}")
        self.tensors = dict(tensors)

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: t[i] for k, t in self.tensors.items()}


def charlm_text() -> bytes:
    """The Python help topics, in sorted key order, as UTF-8 bytes."""
    from pydoc_data.topics import topics  # imported here: 0.5 MB of strings

    return b"".join(topics[k].encode("utf-8") for k in sorted(topics))


def _spread(x: Tensor, cap: int) -> Tensor:
    """At most ``cap`` rows of ``x``, evenly spaced from the first."""
    if cap <= 0 or cap >= len(x):
        return x
    return x[torch.arange(cap) * len(x) // cap]


def charlm_datasets(
    context: int = 64, max_train: int = 2048, max_test: int = 256
) -> dict[str, Dataset]:
    """``{'train', 'test'}`` of ``{'input_ids': LongTensor(context + 1)}`` byte chunks.

    The defaults keep a 21x21 surface of ``char_transformer`` to minutes on a CPU; 0 keeps
    a whole split (6,453 train and 718 test chunks at context 64).
    """
    if context < 1:
        raise ValueError(f"Expected `context` >= 1, but got {context}.")
    data = torch.frombuffer(bytearray(charlm_text()), dtype=torch.uint8)
    n = len(data) // (context + 1)
    chunks = data[: n * (context + 1)].view(n, context + 1).long()
    test = torch.arange(n) % 10 == 0
    return {
        "train": TensorDictDataset({"input_ids": _spread(chunks[~test], max_train)}),
        "test": TensorDictDataset({"input_ids": _spread(chunks[test], max_test)}),
    }
