"""Which device each process computes on: one place for the device policy.

``compute.device`` names the device of a one-process run (``auto``: the first CUDA device
when there is one, else the CPU); ``compute.devices`` and ``compute.workers`` spread a pool's
workers over devices; a torchrun rank takes the device of its local rank.
"""

from __future__ import annotations

import torch

from engine.config import Config
from engine.errors import ConfigError

__all__ = ["PRECISION", "rank_device", "resolve_device", "worker_devices"]

# compute.precision -> the autocast dtype (None: plain float32)
PRECISION = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str) -> torch.device:
    """'auto' is the first CUDA device when there is one, else the CPU; others are checked."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise ConfigError(
            f"Expected `compute.device` to be 'auto', 'cpu', 'cuda' or 'cuda:N', but got {spec!r}."
        ) from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError(f"`compute.device` = {spec!r}, but no CUDA device is available.")
        if dev.index is not None and dev.index >= n:
            raise ConfigError(
                f"`compute.device` = {spec!r}, but only {n} CUDA device(s) exist (cuda:0..{n - 1})."
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"`compute.device` = {spec!r}, but this machine has no MPS device.")
    elif dev.type != "cpu":
        raise ConfigError(f"`compute.device` = {spec!r} is not supported; use 'cpu' or 'cuda'.")
    return dev


def worker_devices(cfg: Config) -> list[str]:
    """One device per pool worker: ``compute.devices`` cycled, or every GPU, or the one device."""
    c = cfg.compute
    devices = []
    for d in c.devices:
        try:
            devices.append(str(resolve_device(d)))
        except ConfigError as e:
            raise ConfigError(f"in `compute.devices`: {e}") from None
    if not devices:
        dev = resolve_device(c.device)
        if c.device in ("auto", "cuda") and dev.type == "cuda":
            devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        else:
            devices = [str(dev)]
    n = len(devices) if c.workers == "auto" else int(c.workers)
    return [devices[i % len(devices)] for i in range(n)]


def rank_device(cfg: Config, local_rank: int) -> torch.device:
    """A torchrun rank's device: ``compute.devices`` cycled by local rank, else the local
    rank's GPU (with ``compute.device`` ``auto`` or ``cuda``), else ``compute.device``."""
    c = cfg.compute
    if c.devices:
        return resolve_device(c.devices[local_rank % len(c.devices)])
    dev = resolve_device(c.device)
    if c.device in ("auto", "cuda") and dev.type == "cuda":
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return dev
