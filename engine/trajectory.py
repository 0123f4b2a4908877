"""PCA directions of a training trajectory, and the projection of its checkpoints.

After Li et al. 2018 (tomgoldstein/loss-landscape, ``setup_PCA_directions`` and
``project_trajectory``): each checkpoint gives a row ``checkpoint - final model``, flattened
over the direction targets (1-D tensors zeroed with ``ignore='biasbn'``); the rows are centred
as PCA centres them, the two leading components become the x and y directions, and every
checkpoint is projected on them. The final model sits at the origin.

Where the reference stacks all checkpoints into one n x P matrix for scikit-learn, we take the
components from the n x n Gram matrix of the rows in float64, built by streaming checkpoints
from disk in blocks that fit a memory budget, so peak memory is a few model copies plus the
block whatever n is. For a centred Gram eigenvector ``u`` with eigenvalue ``s**2`` the component
is ``sum_i u_i d_i / s`` (the mean row drops out because ``sum_i u_i = 0``), which a second pass
over the checkpoints accumulates; the coordinates ``<d_i, v> = (G u)_i / s`` need no third pass.
"""

from __future__ import annotations

import copy
import glob
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from engine.directions import DirectionSet, DirType, targets
from engine.errors import ConfigError, LandscapeError
from engine.formats.constants import EXPLAINED_VARIANCE, EXPLAINED_VARIANCE_RATIO, SINGULAR_VALUES
from engine.models.checkpoint import load_checkpoint

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "PCAResult",
    "find_checkpoints",
    "pca_directions",
]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".t7", ".ckpt", ".safetensors")
# Rows streamed past the resident block at once: reads fall as the block grows, passes over the
# block (memory-bound) fall as the stream grows. A quarter of the budget, at most 8 rows, ran
# faster than a third, at most 16 (45 s vs 56 s for 100 checkpoints of 10M, noisy machine).
_STREAM_MAX = 8
_RANK_TOL = 1e-10  # a second eigenvalue below this fraction of the first is round-off, not a path
_INT = re.compile(r"\d+")
_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


def _epoch(p: Path) -> int | None:
    """The last integer in the file stem (``model_10`` -> 10), or None."""
    nums = _INT.findall(p.stem)
    return int(nums[-1]) if nums else None


def find_checkpoints(spec: str | Path) -> list[Path]:
    """Checkpoints of a trajectory in epoch order, from a folder or a glob, or as listed.

    Text of several lines is one path per line, taken in the order given (the Python API's
    list of paths). A folder contributes its ``*.pt``, ``*.pth``, ``*.t7``, ``*.ckpt`` and
    ``*.safetensors`` files; a glob whatever files it matches. They are ordered by the last
    integer in the file stem (``model_2`` before ``model_10``); names without one
    (``model_final``, ``last.pt``) are left out unless no name has one. Fewer than 2 is a
    ``ConfigError`` saying where we looked.
    """
    text = os.path.expanduser(str(spec))
    if "\n" in text.strip():
        listed = [Path(os.path.expanduser(t.strip())) for t in text.splitlines() if t.strip()]
        missing = [str(q) for q in listed if not q.is_file()]
        if missing:
            raise ConfigError(f"checkpoint file not found: {missing[0]}")
        return listed
    folder = Path(text)
    if folder.is_dir():
        found = [q for q in folder.iterdir() if q.is_file() and q.suffix in CHECKPOINT_SUFFIXES]
        where = f"folder {folder} ({', '.join('*' + s for s in CHECKPOINT_SUFFIXES)})"
    else:
        found = [Path(q) for q in glob.glob(text, recursive=True) if Path(q).is_file()]
        magic = any(ch in text for ch in "*?[")
        where = f"glob {text!r}" if magic else f"{text} (neither a folder nor a glob)"
    numbered = [q for q in found if _epoch(q) is not None]
    skipped = sorted(q.name for q in found if _epoch(q) is None) if numbered else []
    if numbered:
        # Ties (model_3.pt beside model_3.t7, or one epoch in several runs) fall back to the path.
        found = sorted(numbered, key=lambda q: (_epoch(q), str(q)))
    else:
        found = sorted(found, key=str)
    if len(found) < 2:
        names = f": {found[0].name}" if found else ""
        note = f" ({', '.join(skipped)} left out: no epoch number in the name)" if skipped else ""
        raise ConfigError(
            f"Expected at least 2 checkpoints in {where}, but found {len(found)}{names}{note}."
        )
    return found


@dataclass
class PCAResult:
    """The two PCA directions of a trajectory and every checkpoint's coordinates on them."""

    x: list[torch.Tensor]  # unit norm over all tensors, float32, one per target tensor
    y: list[torch.Tensor]
    explained_variance_ratio: np.ndarray  # (2,), as scikit-learn's PCA
    singular_values: np.ndarray  # (2,), of the centred rows
    explained_variance: np.ndarray  # (2,), singular_values**2 / (n - 1)
    coords_cos: np.ndarray  # (n, 2): <d_i, x>/||x||, the reference's 'cos' projection
    coords_lsq: np.ndarray  # (n, 2): least-squares c with [x y] c = d_i
    checkpoints: list[Path]
    final: Path | None  # None: the model's own weights
    dir_type: DirType
    n_params: int  # entries of a row: the target tensors' elements that are not zeroed
    reads: int  # checkpoint files read, the final model's included
    blocks: int  # resident blocks of rows; 1 means all rows were held at once

    def extras(self) -> dict[str, np.ndarray]:
        """The root datasets of the reference's PCA direction files (``save_directions``)."""
        return {
            EXPLAINED_VARIANCE_RATIO: self.explained_variance_ratio,
            SINGULAR_VALUES: self.singular_values,
            EXPLAINED_VARIANCE: self.explained_variance,
        }

    def direction_set(self) -> DirectionSet:
        """The components as a 2D ``DirectionSet``, with where they came from as attributes."""
        attrs = {
            "method": "pca",
            "final": "the model's own weights" if self.final is None else str(self.final),
            "checkpoints": [str(p) for p in self.checkpoints],
        }
        return DirectionSet(self.x, self.y, self.dir_type, attrs)


class _Rows:
    """Reads checkpoints into float64 rows ``checkpoint - final`` over the kept tensors."""

    def __init__(self, model: nn.Module, dir_type: DirType, ignore: str) -> None:
        # A private CPU copy takes each checkpoint, so the caller's model is never touched.
        self.model = copy.deepcopy(model).cpu()
        self.dir_type = dir_type
        named = targets(self.model, dir_type)
        self.shapes = [tuple(t.shape) for _, t in named]
        # Integer entries (BN counters) never move; 1-D tensors are zeroed as ignore_biasbn does.
        self.keep = [
            k
            for k, (_, t) in enumerate(named)
            if torch.is_floating_point(t) and not (ignore == "biasbn" and t.dim() <= 1)
        ]
        self.size = sum(named[k][1].numel() for k in self.keep)
        self.base: list[torch.Tensor] = []
        self.reads = 0
        self.total = 0
        self.progress: Callable[[int, int], None] | None = None

    def _load(self, path: Path) -> list[torch.Tensor]:
        load_checkpoint(self.model, path, key="checkpoints")
        self.reads += 1
        if self.progress is not None:
            self.progress(self.reads, self.total)
        named = targets(self.model, self.dir_type)
        return [named[k][1] for k in self.keep]

    def set_final(self, path: Path | None) -> None:
        if path is None:
            named = targets(self.model, self.dir_type)
            self.base = [named[k][1].detach().clone() for k in self.keep]
        else:
            self.base = [t.clone() for t in self._load(path)]

    def fill(self, path: Path, out: torch.Tensor) -> None:
        """Write the row of ``path`` into ``out`` (float64, length ``size``) without temporaries."""
        off = 0
        for t, b in zip(self._load(path), self.base, strict=True):
            n = t.numel()
            dst = out[off : off + n]
            if t.dtype in _NUMPY_FLOATS:
                # One pass, subtracting in float64 (exact for float32 inputs); numpy's single
                # thread also beat torch's copy-then-subtract on a busy two-core machine.
                a, c = t.reshape(-1).numpy(), b.reshape(-1).numpy()
                np.subtract(a, c, out=dst.numpy(), dtype=np.float64)
            else:  # bfloat16 has no numpy dtype
                dst.copy_(t.reshape(-1)).sub_(b.reshape(-1))
            off += n

    def unflatten(self, v: torch.Tensor) -> list[torch.Tensor]:
        """A flat row back to one float32 tensor per target (zeros where nothing was kept)."""
        out = [torch.zeros(s, dtype=torch.float32) for s in self.shapes]
        off = 0
        for k in self.keep:
            n = out[k].numel()
            out[k].copy_(v[off : off + n].view(self.shapes[k]))
            off += n
        return out


def _plan(m: int, size: int, memory_bytes: int) -> tuple[int, int]:
    """Rows held resident and rows streamed at once; ``(m, 0)`` when every row fits."""
    fit = memory_bytes // (8 * max(size, 1))
    if fit >= m:
        return max(m, 1), 0
    stream = max(1, min(_STREAM_MAX, fit // 4))
    return max(1, fit - stream), stream


def _n_reads(m: int, block: int) -> int:
    """Checkpoint reads of both passes for ``m`` non-zero rows in resident blocks of ``block``."""
    starts = range(0, m, block)
    gram = sum(min(block, m - s) + max(0, m - s - block) for s in starts)
    last = starts[-1] if m else 0
    return gram + last  # the second pass reads every row but the last resident block's


def pca_directions(
    model: nn.Module,
    checkpoints: Sequence[Path],
    final: Path | None = None,
    *,
    dir_type: DirType = "weights",
    ignore: Literal["biasbn", "none"] = "biasbn",
    memory_bytes: int = 2**31,
    progress: Callable[[int, int], None] | None = None,
    at_model: bool = False,
) -> PCAResult:
    """The two leading PCA directions of the trajectory ``checkpoints`` around ``final``.

    ``model`` gives the architecture (it is copied, never modified); ``final`` defaults to
    the last checkpoint; with ``at_model`` the final point is ``model``'s own weights (a model
    handed over in memory), and every checkpoint is a row. Rows are ``checkpoint - final``
    over ``targets(model, dir_type)``; integer entries are 0, and so are 1-D tensors with
    ``ignore='biasbn'``. Explained variance (ratio) and singular values are scikit-learn's PCA's.

    Sign convention: each component is flipped so that the first checkpoint has a negative
    coordinate on it (left as it is when that coordinate is exactly 0), so a path runs from
    the negative side towards the final model at the origin.

    ``memory_bytes`` bounds the float64 rows held at once (at least two rows are held, whatever
    the budget): when all fit, the checkpoints are read once; otherwise blocks of rows stay
    resident while later checkpoints stream past them, and a second pass forms the components.
    Coordinates are computed in float64 from the Gram matrix and the float64 components; the
    float32 tensors returned differ from those by rounding only. ``progress(done, total)``
    follows the checkpoint reads.
    """
    if dir_type not in ("weights", "states"):
        raise ConfigError(f"Expected `dir_type` to be 'weights' or 'states', but got {dir_type!r}.")
    if ignore not in ("biasbn", "none"):
        raise ConfigError(f"Expected `ignore` to be 'biasbn' or 'none', but got {ignore!r}.")
    if memory_bytes <= 0:
        raise ConfigError(f"Expected `memory_bytes` to be positive, but got {memory_bytes}.")
    paths = [Path(p) for p in checkpoints]
    n = len(paths)
    if n < 2:
        raise ConfigError(f"Expected at least 2 checkpoints for PCA directions, but got {n}.")
    final_path = None if at_model else Path(final) if final is not None else paths[-1]

    rows = _Rows(model, dir_type, ignore)
    # The final model's own row is 0: it is never read as a row, and its coordinates are 0.
    idx = [
        i for i, p in enumerate(paths) if final_path is None or p.resolve() != final_path.resolve()
    ]
    m = len(idx)
    block, stream = _plan(m, rows.size, memory_bytes)
    rows.total = (final_path is not None) + _n_reads(m, block)
    rows.progress = progress
    rows.set_final(final_path)  # None: the copy's own weights, before any checkpoint is read

    # Pass 1: the Gram matrix, one resident block at a time against the rows after it.
    gram = np.zeros((n, n))
    resident = torch.empty((min(block, m), rows.size), dtype=torch.float64)
    buf = torch.empty((stream, rows.size), dtype=torch.float64) if stream else None
    starts = list(range(0, m, block))
    for s in starts:
        mine = idx[s : s + block]
        held = resident[: len(mine)]
        for r, i in enumerate(mine):
            rows.fill(paths[i], held[r])
        gram[np.ix_(mine, mine)] = (held @ held.T).numpy()
        later = idx[s + block :]
        for t in range(0, len(later), stream or 1):
            chunk = later[t : t + stream]
            assert buf is not None  # streaming only happens when a block did not hold every row
            got = buf[: len(chunk)]
            for r, j in enumerate(chunk):
                rows.fill(paths[j], got[r])
            g = (held @ got.T).numpy()
            gram[np.ix_(mine, chunk)] = g
            gram[np.ix_(chunk, mine)] = g.T
    gram = (gram + gram.T) / 2  # matmul round-off can break exact symmetry

    # Centre as PCA does: K = H G H with H = I - 11^T/n is the Gram matrix of the centred rows.
    k = gram - gram.mean(axis=0, keepdims=True) - gram.mean(axis=1, keepdims=True) + gram.mean()
    lam, u = np.linalg.eigh(k)
    lam, u = lam[::-1][:2].copy(), np.ascontiguousarray(u[:, ::-1][:, :2])
    total = float(np.trace(k))
    if not lam[0] > 0 or not lam[1] > _RANK_TOL * lam[0]:
        span = 0 if not lam[0] > 0 else 1
        raise LandscapeError(
            f"the {n} checkpoints span {span} direction(s) around their mean, PCA needs 2: use 3 "
            "or more checkpoints that do not lie on one line"
        )
    # Eigenvectors of non-zero eigenvalues are orthogonal to the ones vector; remove the
    # round-off so that the mean row drops out of the components exactly.
    u -= u.mean(axis=0, keepdims=True)
    sv = np.sqrt(lam)
    coef = u / sv  # component k is sum_i coef[i, k] d_i
    proj = gram @ coef  # <d_i, component k>
    for c in range(2):
        if proj[0, c] > 0:
            coef[:, c] *= -1
            proj[:, c] *= -1

    # Pass 2: the components; the last resident block is still in memory.
    w = torch.from_numpy(coef)
    last = starts[-1] if starts else 0
    comp = torch.zeros((2, rows.size), dtype=torch.float64)
    if m:
        comp += w[idx[last:]].T @ resident[: m - last]
    before = idx[:last]
    for t in range(0, len(before), stream or 1):
        chunk = before[t : t + stream]
        assert buf is not None
        got = buf[: len(chunk)]
        for r, j in enumerate(chunk):
            rows.fill(paths[j], got[r])
        comp += w[chunk].T @ got
    del resident, buf

    norms = comp.norm(dim=1).numpy()
    comp /= torch.from_numpy(norms)[:, None]
    cos = float(comp[0] @ comp[1])  # 0 up to round-off; lstsq takes it into account
    coords_cos = proj / norms
    gram2 = np.array([[1.0, cos], [cos, 1.0]])
    coords_lsq = np.linalg.solve(gram2, coords_cos.T).T

    return PCAResult(
        x=rows.unflatten(comp[0]),
        y=rows.unflatten(comp[1]),
        explained_variance_ratio=lam / total,
        singular_values=sv,
        explained_variance=lam / (n - 1),
        coords_cos=coords_cos,
        coords_lsq=coords_lsq,
        checkpoints=paths,
        final=final_path,
        dir_type=dir_type,
        n_params=rows.size,
        reads=rows.reads,
        blocks=len(starts),
    )
