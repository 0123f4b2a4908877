"""Checkpoints of the common shapes, read without running code from the file.

PyTorch files (``.pt``, ``.pth``, ``.t7``, ...) are read with ``weights_only=True``:
a bare state dict; ``{'state_dict': ...}`` (the reference's ``.t7`` layout, with ``acc``
and ``epoch``); ``{'model_state_dict' | 'model' | 'net': ...}``; keys prefixed by
``module.`` (DataParallel) or ``_orig_mod.`` (torch.compile). ``.safetensors`` files
(recognised by name or by content) are read with ``safetensors.torch.load_file``, and a
sharded Hugging Face checkpoint by its ``*.safetensors.index.json``, whose shards are merged.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from engine.errors import ConfigError, LandscapeError, clean_text, describe

__all__ = ["is_safetensors", "load_checkpoint", "read_state_dict"]

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
_PREFIXES = ("module.", "_orig_mod.")
SAFETENSORS_SUFFIX = ".safetensors"
SAFETENSORS_INDEX_SUFFIX = ".safetensors.index.json"  # what save_pretrained writes for shards


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def is_safetensors(path: str | Path) -> bool:
    """Whether ``path`` starts like a safetensors file: an 8-byte little-endian header length
    that fits in the file, then a JSON object."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(9)
        size = p.stat().st_size
    except OSError:
        return False
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    # A zip-based torch.save file starts 'PK\x03\x04...', a length far beyond its size.
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _read_safetensors(p: Path, key: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(p, device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise LandscapeError(
            f"`{key}`: {p} is not a readable safetensors file ({describe(e)})"
        ) from e


def _read_sharded(index: Path, key: str) -> dict[str, torch.Tensor]:
    """Merge the shards that a ``*.safetensors.index.json`` lists in its ``weight_map``."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise LandscapeError(
            f"`{key}`: {index} is not a safetensors index (expected JSON with a 'weight_map' "
            f"of tensor name -> shard file; {describe(e)})"
        ) from e
    sd: dict[str, torch.Tensor] = {}
    for name in shards:
        shard = index.parent / str(name)
        if not shard.is_file():
            raise ConfigError(f"`{key}`: shard {name!r} listed in {index} not found: {shard}")
        sd.update(_read_safetensors(shard, key))
    absent = [k for k in weight_map if k not in sd]
    if absent:
        raise LandscapeError(
            f"`{key}`: the shards of {index} lack tensors it lists: {_preview(absent)}"
        )
    return sd


# What torch's weights-only unpickler says when a pickle asks for something beyond tensors and
# plain containers: a global of a blocked module (os, posix, subprocess, ...) or one not
# allowed, a call of an unknown function, an object of an unknown class.
_REFUSED = (
    re.compile(r"GLOBAL (\S+) whose module \S+ is blocked"),
    re.compile(r"GLOBAL (\S+) was not an allowed global"),
    re.compile(r"call reduce for unrecognized function (.+?)(?: which belongs|$)", re.M),
    re.compile(r"classes allowlisted via `add_safe_globals` but got (.+)$", re.M),
)


def refused_global(e: BaseException) -> str | None:
    """The global a weights-only ``torch.load`` refused (``posix.system``), from its message;
    None when the error is not such a refusal (a damaged or foreign file)."""
    text = str(e)
    for pattern in _REFUSED:
        m = pattern.search(text)
        if m:
            return m.group(1).strip().rstrip(".")
    return None


def torch_load_error(p: Path, key: str | None, e: BaseException) -> LandscapeError:
    """One line for a ``torch.load(..., weights_only=True)`` that failed: a refusal names the
    global that would have run code; anything else says the file is not readable."""
    where = f"`{key}`: " if key else ""
    name = refused_global(e)
    if name is not None:
        return LandscapeError(
            f"{where}checkpoint {p} was refused: its pickle names {clean_text(name)}, which "
            "loading would import or run (only tensors and plain containers are read, with "
            "weights_only=True)"
        )
    if isinstance(e, pickle.UnpicklingError):
        return LandscapeError(f"{where}{p} is not a readable PyTorch checkpoint")
    return LandscapeError(f"{where}{p} is not a readable PyTorch checkpoint ({describe(e)})")


def _read_torch(p: Path, key: str) -> object:
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise torch_load_error(p, key, e) from e


def read_state_dict(path: str | Path, key: str = "model.checkpoint") -> dict[str, torch.Tensor]:
    """Load a checkpoint file and return its state dict with wrapper prefixes removed."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"`{key}`: checkpoint not found: {p}")
    if not p.is_file():
        raise ConfigError(f"`{key}`: not a file: {p}")
    if p.name.endswith(SAFETENSORS_INDEX_SUFFIX):
        obj: object = _read_sharded(p, key)
    elif p.suffix == SAFETENSORS_SUFFIX or is_safetensors(p):
        obj = _read_safetensors(p, key)
    else:
        obj = _read_torch(p, key)
    if not _is_state_dict(obj) and isinstance(obj, Mapping):
        for wrapper in _WRAPPER_KEYS:
            if _is_state_dict(obj.get(wrapper)):
                obj = obj[wrapper]
                break
    if not _is_state_dict(obj):
        raise LandscapeError(
            f"`{key}`: checkpoint {p} holds no state dict (expected a dict of tensors, "
            f"or one under {', '.join(repr(k) for k in _WRAPPER_KEYS)})"
        )
    sd = dict(obj)
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def _preview(items: list[str], n: int = 3) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _tied_groups(sd: Mapping[str, torch.Tensor]) -> list[list[str]]:
    """Names that share one tensor (same memory, shape and strides), in groups of two or more."""
    groups: dict[tuple[int, tuple[int, ...], tuple[int, ...]], list[str]] = {}
    for k, v in sd.items():
        if v.device.type != "meta" and v.numel() > 0:  # no memory to compare otherwise
            groups.setdefault((v.data_ptr(), tuple(v.shape), tuple(v.stride())), []).append(k)
    return [g for g in groups.values() if len(g) > 1]


def _kind(dtype: torch.dtype) -> str:
    """bool, int, float or complex: within a kind a copy only rounds (float16 to float32)."""
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return "complex"
    return "float" if dtype.is_floating_point else "int"


def load_checkpoint(model: nn.Module, path: str | Path, key: str = "model.checkpoint") -> None:
    """Load ``path`` into ``model`` strictly; a mismatch (keys, shapes, or dtype kinds: int or
    bool tensors for float parameters) is one line naming the first keys."""
    sd = read_state_dict(path, key)
    expected = model.state_dict()
    # Tied weights (a language model's embedding and output layer) are one tensor under several
    # names; safetensors files, save_pretrained's included, keep only one of the names.
    for group in _tied_groups(expected):
        present = [k for k in group if k in sd]
        for k in group:
            if present and k not in sd:
                sd[k] = sd[present[0]]
    # Checkpoints from PyTorch < 0.4.1 (the reference's era) have no BN counters.
    missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in expected]
    misshaped = [
        f"{k} {tuple(sd[k].shape)} in checkpoint vs {tuple(v.shape)} in model"
        for k, v in expected.items()
        if k in sd and sd[k].shape != v.shape
    ]
    # Integers or booleans copied into float parameters (or floats into counters) would be
    # cast silently by load_state_dict: a wrong model, not an error, so refuse them as shapes.
    miskinded = [
        f"{k} {str(sd[k].dtype).removeprefix('torch.')} in checkpoint vs "
        f"{str(v.dtype).removeprefix('torch.')} in model"
        for k, v in expected.items()
        if k in sd and _kind(sd[k].dtype) != _kind(v.dtype)
    ]
    # Sparse or meta tensors hold no dense values to copy: load_state_dict raised in torch.
    hollow = [
        f"{k} ({'meta' if v.is_meta else str(v.layout).removeprefix('torch.')})"
        for k, v in sd.items()
        if k in expected and (v.is_meta or v.layout != torch.strided)
    ]
    problems = []
    if hollow:
        problems.append(f"tensors without dense values: {_preview(hollow)}")
    if missing:
        problems.append(f"missing keys: {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_preview(unexpected)}")
    if misshaped:
        problems.append(f"shape mismatch: {_preview(misshaped, 2)}")
    if miskinded:
        problems.append(f"dtype mismatch: {_preview(miskinded, 2)}")
    if problems:
        raise LandscapeError(f"checkpoint {path} does not fit the model: " + "; ".join(problems))
    for k, v in expected.items():
        if k not in sd:
            sd[k] = v  # the counters skipped above
    model.load_state_dict(sd, strict=True)
