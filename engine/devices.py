"""Which device each process computes on: one place for the device policy.

``compute.device`` names the device of a one-process run (``auto``: the first CUDA device
when there is one, else the CPU); ``compute.devices`` and ``compute.workers`` spread a pool's
workers over devices; a torchrun rank takes the device of its local rank.
"""

from __future__ import annotations

import torch

from engine.config import Config
from engine.errors import ConfigError

__all__ = ["PRECISION", "keep_freed_cpu_memory", "rank_device", "resolve_device", "worker_devices"]

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


# glibc's malloc gives each block above its mmap threshold (128 KiB at first, moving up to
# the largest block freed) its own mapping and unmaps it when freed: an evaluation's large
# activations were then new pages, faulted in and zeroed on every pass. On the digits CNN at
# batch 1024, 3,100 page faults a pass; a point cost up to 1.6x its steady time, and the
# batch-size probe, which times sizes in turns, misjudged the sizes by as much.
_MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit: blocks up to this stay in the heap
_TRIM_THRESHOLD = 1 << 30  # and up to this much freed memory at its top is kept for reuse
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_TUNED: list[bool] = []  # once per process


def keep_freed_cpu_memory() -> bool:
    """Make glibc's malloc keep freed blocks of up to 32 MiB for reuse (up to 1 GiB at the
    heap's top) instead of returning them to the system, for the rest of this process.

    Called where a process starts computing on the CPU. Nothing where the allocator is not
    glibc's (macOS, musl), nor where the user tuned it (a ``MALLOC_*_`` or ``GLIBC_TUNABLES``
    variable). Returns whether it changed the settings (now or before)."""
    if _TUNED:
        return _TUNED[0]
    import ctypes
    import os
    import platform

    tuned = False
    user = any(k.startswith("MALLOC_") or k == "GLIBC_TUNABLES" for k in os.environ)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and not user:
        try:
            mallopt = ctypes.CDLL(None).mallopt
            tuned = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
                mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
            )
        except (OSError, AttributeError):  # no such symbol: not glibc after all
            tuned = False
    _TUNED.append(tuned)
    return tuned
