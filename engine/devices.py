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
# the largest block freed, 32 MiB at most) its own mapping and unmaps it when freed, and
# returns the freed top of its heap to the system: an evaluation's large activations were
# then new pages, faulted in and zeroed on every pass. The digits CNN at batch 1024: 4,900
# page faults a pass, and the batch-size probe, which times sizes in turns, misjudged the
# sizes by it; ResNet-20 on CIFAR-shaped images at 1024 (activations over 32 MiB): 520,000
# faults a pass, which took 2.6 s instead of 1.3.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt's parameter numbers (malloc.h)
_TRIM_THRESHOLD = 1 << 30  # freed memory kept at the heap's top for reuse
_TUNED: list[bool] = []  # once per process


def keep_freed_cpu_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse, for the rest of this process: every
    block from its heap (no block of its own mapping, which is unmapped when freed; glibc
    still maps one where the heap cannot grow) and up to 1 GiB freed at the heap's top kept.

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
            tuned = bool(mallopt(_M_MMAP_MAX, 0)) and bool(
                mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
            )
        except (OSError, AttributeError):  # no such symbol: not glibc after all
            tuned = False
    _TUNED.append(tuned)
    return tuned
