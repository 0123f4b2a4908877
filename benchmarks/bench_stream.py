"""Peak memory of a split larger than the memory budget: it streams, a few batches at a time.

    python benchmarks/bench_stream.py                      # 1 GiB split, 256 MiB budget
    python benchmarks/bench_stream.py --mb 64 --budget 16  # seconds

A user data set of ``--mb`` MiB (items of 1 KiB: 256 float32 inputs and a float target, made
from their index on the fly, so the set itself holds nothing) is evaluated at a few grid
points with ``data.memory_mb = --budget``; the split is 4x the budget, so it streams through
a ``DataLoader`` with ``data.loader_workers``. Reported: the peak resident memory of this
process and of the largest worker, against this process before the run, and the data size.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

ITEM = 256  # float32 inputs per item: 1 KiB


class Synthetic(Dataset):
    """``n`` items made from their index: nothing is held."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(ITEM, generator=g)
        return x, x[:4].sum()


def train() -> Synthetic:
    # Loaded as 'file.py:train' (a module of its own): the size comes through the environment.
    return Synthetic(int(os.environ["BENCH_STREAM_ITEMS"]))


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(ITEM, 32), nn.ReLU(), nn.Linear(32, 1))


def rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mb", type=int, default=1024, help="split size in MiB")
    p.add_argument("--budget", type=int, default=256, help="data.memory_mb")
    p.add_argument("--points", type=int, default=2, help="grid points (x axis)")
    p.add_argument("--workers", type=int, default=2, help="data.loader_workers")
    p.add_argument("--out", default="/tmp/bench_stream.h5")
    args = p.parse_args()
    os.environ["BENCH_STREAM_ITEMS"] = str(args.mb * 2**20 // (ITEM * 4))

    from engine.config import load_config
    from engine.data import load_splits
    from engine.run import prepare

    here = Path(__file__).resolve()
    sets = [
        f"model.arch={here}:model",
        f"data.dataset={here}:train",
        "data.splits=['train']",
        "data.loss=squared_error",
        "data.batch_size=1024",
        f"data.memory_mb={args.budget}",
        f"data.loader_workers={args.workers}",
        f"grid.x=-1:1:{args.points}",
    ]
    before = rss_mb(resource.RUSAGE_SELF)
    cfg = load_config(None, sets)
    t = time.perf_counter()
    split = load_splits(cfg.data)["train"]
    print(f"split: {len(split):,} items, {args.mb} MiB; budget {args.budget} MiB; "
          f"streamed: {split.streamed}")  # fmt: skip
    Path(args.out).unlink(missing_ok=True)
    summary = prepare(cfg, args.out, overwrite=True).run()
    seconds = time.perf_counter() - t
    print(f"{summary.done} points in {seconds:.1f} s; min train_loss {summary.min_value:.4f}")
    print(f"peak RSS: this process {rss_mb(resource.RUSAGE_SELF):.0f} MiB (before the run "
          f"{before:.0f} MiB), largest worker {rss_mb(resource.RUSAGE_CHILDREN):.0f} MiB; "
          f"the split is {args.mb} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
