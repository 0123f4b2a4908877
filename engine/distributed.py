"""One surface over many processes and nodes with torch.distributed, launched by torchrun.

Every rank evaluates its share of the unfinished points (``todo[rank::world]``) on its own
device; after each round of a few points per rank, rank 0 gathers the new results
(``gather_object``: the finished points only, never the whole grid) and is the only process
that writes the file. Rank 0 prepares the run (checks, creates or resumes the file, writes
the directions) and broadcasts the work; the other ranks read the same direction file, so it
must be on a file system every node sees. Resume works with any number of ranks, since the
work is what the file (and its journal) says is unfinished.

    # one node, 4 GPUs (NCCL) or 4 CPU processes (gloo)
    torchrun --standalone --nproc-per-node=4 -m tui_landscape compute CONFIG.toml
    # two nodes; run on each, HOST being the first node
    torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 \\
        -m tui_landscape compute CONFIG.toml
    # under SLURM, one torchrun per node
    srun --nodes=2 --ntasks-per-node=1 torchrun --nnodes=2 --nproc-per-node=8 \\
        --rdzv-id=$SLURM_JOB_ID --rdzv-backend=c10d --rdzv-endpoint=$HOST:29500 \\
        -m tui_landscape compute CONFIG.toml
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from engine.config import Config, config_to_toml
from engine.devices import rank_device
from engine.errors import ConfigError, LandscapeError
from engine.landscape import landscape_from_files
from engine.pool import Outcome, evaluate_local
from engine.run import Job, prepare

__all__ = ["Rank", "launched"]

POINTS_PER_ROUND = 8  # per rank, before the results go to rank 0


def launched() -> bool:
    """True inside a torchrun launch of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


class Rank:
    """This process's part in a distributed run (use as a context manager)."""

    def __init__(self, cfg: Config) -> None:
        self.rank = int(os.environ["RANK"])
        self.world = int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
        c = cfg.compute
        device = rank_device(cfg, local)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        self.device = device
        # Each rank is one worker on one device; compute.* never changes a surface's values.
        compute = dataclasses.replace(c, device=str(device), devices=(), workers=1)
        self.cfg = dataclasses.replace(cfg, compute=compute)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        self.job: Job | None = None
        self.todo: list[int] = []

    def __enter__(self) -> Rank:
        return self

    def __exit__(self, *exc: object) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    def prepare(self, out: Any, overwrite: bool = False) -> Job | None:
        """Rank 0 prepares the file and shares the work; returns the Job on rank 0 only."""
        msg: dict[str, Any] = {}
        error: LandscapeError | None = None
        if self.rank == 0:
            try:
                self.job = prepare(self.cfg, out, overwrite=overwrite)
                msg = {
                    "grid": self.job.grid,  # an automatic (PCA) range is resolved here
                    "todo": self.job.todo(),
                    "dir_file": str(self.job.dir_file),
                    "dir_type": self.job.landscape.ds.dir_type,
                }
            except LandscapeError as e:
                error = e
                msg = {"error": str(e), "exit_code": e.exit_code}
        box = [msg]
        dist.broadcast_object_list(box, src=0)
        msg = box[0]
        if error is not None:
            raise error
        if "error" in msg:
            cls = ConfigError if msg["exit_code"] == ConfigError.exit_code else LandscapeError
            raise cls(msg["error"])
        self.todo, self.grid = msg["todo"], msg["grid"]
        if self.job is not None:
            self.land = self.job.landscape
        else:
            self.land = landscape_from_files(
                config_to_toml(self.cfg), msg["dir_file"], msg["dir_type"], str(self.device),
                points=-(-len(self.todo) // self.world),  # sizes a batch-size probe
            )  # fmt: skip
        return self.job

    def outcomes(self) -> Iterator[Outcome]:
        """Evaluate this rank's share round by round; rank 0 yields everyone's outcomes."""
        mine = self.todo[self.rank :: self.world]
        per_round = max(POINTS_PER_ROUND, self.land.points_per_batch)
        rounds = math.ceil(math.ceil(len(self.todo) / self.world) / per_round)
        grid = self.grid
        for r in range(rounds):
            chunk = mine[r * per_round : (r + 1) * per_round]
            done = list(
                evaluate_local(
                    self.land.evaluate_many,
                    grid.point,
                    chunk,
                    self.land.points_per_batch,
                    self.cfg.compute.retries,
                )
            )
            gathered: list[list[Outcome]] | None = [[] for _ in range(self.world)]
            dist.gather_object(done, gathered if self.rank == 0 else None, dst=0)
            if self.rank == 0:
                for part in gathered:
                    yield from part

    def work(self) -> None:
        """A rank other than 0: evaluate and send, until the work is done."""
        for _ in self.outcomes():
            pass
        self.land.reset()
