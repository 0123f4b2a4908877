"""The Python API's engine side: a caller's model, data and loss through ``engine.run``.

``compute_surface``, ``trajectory_surface`` and ``hessian_at`` take what a notebook or a
training script holds (an ``nn.Module``, a ``Dataset`` / ``DataLoader`` / tensors, a loss
callable) and run the same ``prepare`` / ``Job`` as ``tui-landscape compute``, so the same
settings give the same surface and the file (when asked for) is the same format and resumes.
``tui_landscape.api`` wraps them with a progress bar; that is the public face
(``tui_landscape.compute``).

The stored config says what was used. Objects handed over in memory are recorded with the
``python:`` prefix (``engine.config.IN_MEMORY``), which no config can load (one-line error):

- ``model.arch = "python:<module>.<Class>@<16 hex>"``: the class and a digest of its
  parameters and buffers, so resuming with other weights is refused, not silently mixed;
- ``data.dataset`` / ``data.test_dataset = "python:<what>@<16 hex>"``: a digest of the split's
  tensors (no digest for a streamed DataLoader, which is not read ahead);
- ``data.loss = "python:<module>:<qualname>"`` for a callable; a built-in name as it is.

The caller's model leaves as it came (``preserved``): the engine moves its tensors to the
device, into flat buffers and through eval mode, and every one of those is undone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.config import IN_MEMORY, Config, config_from_dict, config_to_toml
from engine.devices import resolve_device
from engine.directions import DirectionSet
from engine.errors import ConfigError, LandscapeError
from engine.formats import Surface, read_surface, read_trajectory
from engine.given import DirectionsLike, given_directions
from engine.hessian import MeanLossHVP, hessian_params
from engine.losses import Loss, LossFn, resolve_loss
from engine.run import Job, PointResult, prepare
from engine.spectrum import center_spectrum
from engine.splits import Batches, Split, as_split

__all__ = [
    "LandscapeResult",
    "api_config",
    "compute_surface",
    "hessian_at",
    "interpolate_surface",
    "preserved",
    "range_spec",
    "trajectory_surface",
]

DataLike = Any  # a torch Dataset, a DataLoader, or a tuple of tensors
LossLike = str | LossFn | Loss | None
RangeLike = str | tuple[float, float, int] | Sequence[float] | None  # 'min:max:num' or a triple
OnStart = Callable[[Job], Callable[[PointResult], None] | None]


@dataclass(frozen=True)
class LandscapeResult:
    """A computed surface: grid coordinates and each surface by name, in the file's
    orientation ((ny, nx) for 2D, (nx,) for 1D). ``path`` is the file, None when none was
    asked for. A PCA surface also has the explained variance ratio of its two axes and the
    checkpoints' coordinates on the plane (``trajectory``, (n, 2), the model at the origin)."""

    x: np.ndarray
    y: np.ndarray | None
    surfaces: Mapping[str, np.ndarray]
    path: Path | None
    config: str  # the resolved config as stored in the file (TOML)
    explained_variance: tuple[float, float] | None = None
    trajectory: np.ndarray | None = None
    # The file as read back (``engine.formats.Surface``): what a plot of the result draws.
    source: Surface | None = field(default=None, repr=False, compare=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.surfaces)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.surfaces[name]
        except KeyError:
            raise KeyError(f"no surface {name!r}; this result has {list(self.surfaces)}") from None


# --- the caller's model, left as it came ----------------------------------------------------


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[nn.Module]:
    """Put every module's mode and every parameter and buffer back on exit, errors included.

    The engine calls ``model.to(device)``, ``.eval()`` and ``.to(memory_format=...)`` (which
    swap ``param.data`` and replace entries of ``module._buffers``) and re-points moved tensors
    into flat buffers (``t.data = view``). Saving references (no copies) to each entry's
    object, its ``.data``, ``requires_grad`` and ``.grad`` undoes all of it: the same tensor
    objects on their own storage, strides and device as before.
    """
    saved = []
    for m in model.modules():
        entries = []
        for store in (m._parameters, m._buffers):
            for k, t in store.items():
                if t is None:
                    entries.append((store, k, None, None, False, None, None))
                    continue
                g = t.grad if isinstance(t, nn.Parameter) else None
                gdata = None if g is None else g.data
                entries.append((store, k, t, t.data, t.requires_grad, g, gdata))
        saved.append((m, m.training, [(s, list(s)) for s in (m._parameters, m._buffers)], entries))
    try:
        yield model
    finally:
        for m, training, keys, entries in saved:
            m.training = training  # not .train(): that would recurse into children
            for store, names in keys:
                for k in [k for k in store if k not in names]:
                    del store[k]
            for store, k, t, data, grad_flag, g, gdata in entries:
                store[k] = t
                if t is None:
                    continue
                t.data = data
                if t.requires_grad != grad_flag:
                    t.requires_grad_(grad_flag)
                if isinstance(t, nn.Parameter):
                    if g is not None:
                        g.data = gdata
                    if t.grad is not g:
                        t.grad = g


# --- the config: the caller's keys, and what the arguments decide ---------------------------


def _digest(tensors: Iterator[torch.Tensor]) -> str:
    """16 hex digits of the tensors' dtypes, shapes and bytes (order matters)."""
    h = hashlib.blake2b(digest_size=8)
    for t in tensors:
        t = t.detach()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _tensors(v)


def model_spec(model: nn.Module) -> str:
    """``model.arch`` of a model handed over in memory: its class and weights' digest."""
    cls = type(model)
    state = model.state_dict(keep_vars=True).values()
    return f"{IN_MEMORY}{cls.__module__}.{cls.__qualname__}@{_digest(iter(state))}"


def data_spec(obj: DataLike, split: Split | Batches) -> str:
    """``data.dataset`` of a split handed over in memory: what it was and its digest."""
    if isinstance(obj, tuple | list):
        what = "tensors"
    else:
        what = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if isinstance(split, Split):
        return f"{IN_MEMORY}{what}@{_digest(iter((split.x, split.y)))}"
    if split.streamed:
        return f"{IN_MEMORY}{what}"  # not read ahead: no digest
    return f"{IN_MEMORY}{what}@{_digest(_tensors(split.batches))}"


def loss_spec(loss: LossLike, resolved: Loss) -> str:
    """``data.loss``: a name as given, or the ``python:`` record of a callable."""
    if loss is None or isinstance(loss, str):
        return resolved.name
    return resolved.name if resolved.name.startswith(IN_MEMORY) else IN_MEMORY + resolved.name


def _put(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, as ``--set`` does (``load_config``)."""
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"Cannot set `{dotted}`: `{k}` is not a table.")
    node[keys[-1]] = value


def api_config(
    config: Mapping[str, Any] | None,
    fixed: Mapping[str, Any],
    owned: Sequence[str] = (),
) -> Config:
    """A ``Config`` from the caller's dotted keys (as ``--set`` takes them) plus ``fixed``, the
    keys the API's arguments decide; a caller's key among ``owned`` (or ``fixed``) is refused,
    naming the argument to use instead."""
    data: dict[str, Any] = {}
    for key, value in (config or {}).items():
        if not isinstance(key, str):
            raise ConfigError(f"Expected config keys as 'section.key' strings, but got {key!r}.")
        hit = next((o for o in (*owned, *fixed) if key == o or key.startswith(o + ".")), None)
        if hit is not None:
            arg = _ARGUMENT.get(hit, "an argument")
            raise ConfigError(f"`{key}` is decided by the function's arguments ({arg}).")
        _put(data, key, value)
    for key, value in fixed.items():
        _put(data, key, value)
    return config_from_dict(data)


_ARGUMENT = {
    "model": "the model itself",
    "data.dataset": "train",
    "data.test_dataset": "test",
    "data.splits": "train and test",
    "data.loss": "loss",
    "grid.x": "x",
    "grid.y": "y",
    "output.path": "out",
    "directions.checkpoints": "checkpoints",
    "directions.kind": "trajectory() sets 'pca'",
    "hessian.trace_samples": "trace_samples",
}
_OWNED = ("model", "data.dataset", "data.test_dataset", "data.splits", "data.loss", "output.path")


def range_spec(value: RangeLike, name: str) -> str:
    """``grid.x`` / ``grid.y`` from an argument: a string as it is ('min:max:num', 'auto'),
    ``(min, max, num)`` as 'min:max:num' (``repr`` keeps every digit), None as '' (no axis)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    expected = f"Expected `{name}` to be 'min:max:num' or (min, max, num)"
    if not isinstance(value, Sequence) or len(value) != 3:
        raise ConfigError(f"{expected}, but got {value!r}.")
    lo, hi, num = value
    numbers = all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in value)
    if not numbers or not float(num).is_integer():
        raise ConfigError(f"{expected} with an integer num, but got {value!r}.")
    return f"{float(lo)!r}:{float(hi)!r}:{int(num)}"


def _device(model: nn.Module, device: str | torch.device | None, config: Mapping | None) -> str:
    """``device``, else the config's ``compute.device``, else where the model already is."""
    if device is not None:
        return str(device)
    if config and "compute.device" in config:
        return str(config["compute.device"])
    t = next(iter(model.parameters()), None)
    t = next(iter(model.buffers()), None) if t is None else t
    return "auto" if t is None else str(t.device)


def _named_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from model.named_parameters()
    yield from model.named_buffers()


def _setup(
    model: nn.Module,
    train: DataLike,
    test: DataLike | None,
    loss: LossLike,
    config: Mapping[str, Any] | None,
    fixed: dict[str, Any],
    device: str | torch.device | None,
) -> tuple[Config, dict[str, Split | Batches], Loss]:
    """The resolved config, the splits and the loss of a call."""
    if not isinstance(model, nn.Module):
        raise LandscapeError(f"Expected `model` to be a torch nn.Module, but got {type(model)}.")
    meta = next((n for n, t in _named_tensors(model) if t.is_meta), None)
    if meta is not None:
        # torch raised a bare NotImplementedError on the first copy of such a tensor.
        raise LandscapeError(
            f"`model` is on the meta device ({meta!r} has a shape but no values): load its "
            "weights first, e.g. model.to_empty(device='cpu') then load_state_dict(...)"
        )
    resolved = resolve_loss(loss, "loss")
    config = dict(config or {})
    fixed = {
        "model.arch": IN_MEMORY + "pending",
        "data.dataset": IN_MEMORY + "pending",
        "data.splits": ["train"] if test is None else ["train", "test"],
        "data.loss": loss_spec(loss, resolved),
        "compute.device": _device(model, device, config),
        **fixed,
    }
    config.pop("compute.device", None)  # decided above
    config.setdefault("compute.workers", 1)  # in this process: a pool rebuilds models from files
    cfg = api_config(config, fixed, _OWNED)
    splits = {"train": as_split(train, cfg.data, "train")}
    if test is not None:
        splits["test"] = as_split(test, cfg.data, "test")
    data = dataclasses.replace(
        cfg.data,
        dataset=data_spec(train, splits["train"]),
        test_dataset="" if test is None else data_spec(test, splits["test"]),
    )
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, arch=model_spec(model)))
    return dataclasses.replace(cfg, data=data), splits, resolved


def _run(
    cfg: Config,
    model: nn.Module,
    splits: dict[str, Split | Batches],
    loss: Loss,
    out: str | Path | None,
    overwrite: bool,
    on_start: OnStart | None,
    directions: Callable[[Config, nn.Module], DirectionSet] | None = None,
) -> LandscapeResult:
    """``prepare`` and run in this process (into a temporary folder without ``out``), then
    read the file back. ``directions`` builds the caller's directions (``engine.given``)."""
    with preserved(model), contextlib.ExitStack() as stack:
        if out is None:
            path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "surface.h5"
        else:
            path = Path(out)
        ds = None if directions is None else directions(cfg, model)
        job = prepare(
            cfg, path, overwrite=overwrite, model=model, splits=splits, loss=loss, directions=ds
        )
        try:
            on_point = on_start(job) if on_start is not None else None
        except BaseException:
            job.close()
            raise
        summary = job.run(on_point)
        if summary.failed:
            k, error = min(summary.failed.items())
            where = f"; the finished points are saved in {path}" if out is not None else ""
            raise LandscapeError(
                f"{len(summary.failed)} of {summary.total} points failed on every try (first "
                f"at {job.grid.point(k)}: {error}){where}"
            ) from job.first_error
        s = read_surface(path)
        explained = coords = None
        if cfg.directions.kind == "pca":
            t = read_trajectory(path, s)
            explained, coords = t.explained, np.c_[t.x, t.y]
        return LandscapeResult(
            s.x,
            s.y,
            dict(s.values),
            None if out is None else path,
            s.provenance.config or config_to_toml(cfg),
            explained,
            coords,
            s,
        )


def compute_surface(
    model: nn.Module,
    train: DataLike,
    *,
    test: DataLike | None = None,
    loss: LossLike = None,
    x: RangeLike = "-1:1:51",
    y: RangeLike = None,
    out: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    on_start: OnStart | None = None,
    directions: DirectionsLike = None,
) -> LandscapeResult:
    """The loss surface of ``model`` around its own weights: ``tui_landscape.compute``.
    ``directions``: None for the config's (random by default); else ``engine.given``'s."""
    kind = (config or {}).get("directions.kind")
    if kind == "pca":
        raise ConfigError("`directions.kind` = 'pca': use trajectory(model, checkpoints, ...).")
    if kind == "interpolate":
        raise ConfigError(
            "`directions.kind` = 'interpolate' needs the second model: use "
            "interpolate(model_a, model_b, data) or compute(..., directions=model_b)."
        )
    fixed = {"grid.x": range_spec(x, "x"), "grid.y": range_spec(y, "y")}
    build = None
    if directions is not None:
        for key in config or {}:
            if key in ("directions.kind", "directions.file", "directions.target"):
                raise ConfigError(f"`{key}` is decided by the function's arguments (directions).")
        keys, build = given_directions(directions, bool(fixed["grid.y"]), _given_spec)
        fixed.update(keys)
    cfg, splits, resolved = _setup(model, train, test, loss, config, fixed, device)
    return _run(cfg, model, splits, resolved, out, overwrite, on_start, build)


def _given_spec(obj: Any) -> str:
    """How the stored config records directions handed over in memory."""
    if isinstance(obj, nn.Module):
        return model_spec(obj)
    return f"{IN_MEMORY}directions@{_digest(_tensors(obj))}"


def interpolate_surface(
    model_a: nn.Module,
    model_b: nn.Module,
    train: DataLike,
    *,
    test: DataLike | None = None,
    loss: LossLike = None,
    x: RangeLike = "-0.5:1.5:41",
    out: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    on_start: OnStart | None = None,
) -> LandscapeResult:
    """The loss along the line from ``model_a`` (0) to ``model_b`` (1),
    f(a) = L(a_w + a (b_w - a_w)): ``tui_landscape.interpolate``. Both come back as they came."""
    if not isinstance(model_b, nn.Module):
        raise LandscapeError(
            f"Expected `model_b` to be a torch nn.Module, but got {type(model_b)}."
        )
    if type(model_b) is not type(model_a):
        raise LandscapeError(
            f"`model_b` is a {type(model_b).__name__} and `model_a` a {type(model_a).__name__}: "
            "interpolation needs two models of one architecture"
        )
    with preserved(model_b):
        return compute_surface(
            model_a,
            train,
            test=test,
            loss=loss,
            x=x,
            y=None,
            out=out,
            config=config,
            device=device,
            overwrite=overwrite,
            on_start=on_start,
            directions=model_b,
        )


def trajectory_surface(
    model: nn.Module,
    checkpoints: str | Path | Sequence[str | Path],
    train: DataLike,
    *,
    test: DataLike | None = None,
    loss: LossLike = None,
    x: RangeLike = "auto",
    y: RangeLike = "auto",
    out: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    on_start: OnStart | None = None,
) -> LandscapeResult:
    """The surface on the PCA plane of a training path that ends at ``model``'s own weights:
    ``tui_landscape.trajectory``. ``checkpoints``: a folder, a glob, or a list of files (in
    path order)."""
    if isinstance(checkpoints, str | Path):
        spec = str(checkpoints)
    else:
        if len(checkpoints) < 2:
            raise ConfigError(
                f"Expected at least 2 checkpoints, but got {len(checkpoints)}: {checkpoints!r}."
            )
        spec = "\n".join(str(Path(p).resolve()) for p in checkpoints)
    fixed = {
        "grid.x": range_spec(x, "x"),
        "grid.y": range_spec(y, "y"),
        "directions.kind": "pca",
        "directions.checkpoints": spec,
    }
    cfg, splits, resolved = _setup(model, train, test, loss, config, fixed, device)
    return _run(cfg, model, splits, resolved, out, overwrite, on_start)


def hessian_at(
    model: nn.Module,
    data: DataLike,
    *,
    loss: LossLike = None,
    config: Mapping[str, Any] | None = None,
    trace_samples: int = 0,
    top_k: int | None = None,
    density_probes: int = 0,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """The Hessian's spectrum of the mean loss over ``data`` at the model's own weights.

    Over ``hessian.params`` (default '2d': tensors with 2+ dims, so biases and norm layers'
    weights are left out, as in the reference; 'all' takes every trainable tensor), each
    eigenvalue to ``hessian.tol`` of itself (``engine.hessian.accepted``). Keys: ``params``,
    ``n`` (parameters), ``tol``, ``lambda_max``, ``lambda_min`` and their residuals
    ``lambda_max_residual``, ``lambda_min_residual`` (``||Hv - lambda v||``), ``converged``,
    ``top_k`` (the ``top_k`` largest, largest first; default ``hessian.top_k``) and
    ``top_k_residual``; with ``trace_samples`` >= 2 Hutchinson's ``trace``, ``trace_se`` and
    ``trace_probes``; with ``density_probes`` >= 1 the eigenvalue density by stochastic Lanczos
    quadrature (``density_grid``, ``density``, ``density_sigma``, ``slq_nodes``,
    ``slq_weights``; ``hessian.density_steps`` steps per probe)."""
    if trace_samples and trace_samples < 2:
        raise ConfigError(f"Expected `trace_samples` 0 or >= 2, but got {trace_samples}.")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"Expected `top_k` >= 1, but got {top_k}.")
    if density_probes < 0:
        raise ConfigError(f"Expected `density_probes` >= 0, but got {density_probes}.")
    for key in config or {}:
        if key in ("hessian.trace_samples", "hessian.density_probes") or key.startswith("grid"):
            raise ConfigError(f"`{key}` is not used by hessian(); see its arguments.")
    cfg, splits, resolved = _setup(model, data, None, loss, config, {}, device)
    h = cfg.hessian
    with preserved(model):
        dev = resolve_device(cfg.compute.device)
        model.to(dev).eval()
        hvp = MeanLossHVP(
            model,
            splits["train"],
            cfg.data.fixed_batch,
            resolved,
            params=hessian_params(model, h.params),
            l2=cfg.data.l2,
        )
        sp = center_spectrum(
            hvp,
            h.params,
            h.tol,
            top_k=h.top_k if top_k is None else top_k,
            trace_probes=trace_samples,
            density_probes=density_probes,
            density_steps=h.density_steps,
            max_products=h.max_products,
        )
    values = sp.file_values()
    renamed = {"lmax": "lambda_max", "lmin": "lambda_min", "lmax_residual": "lambda_max_residual",
               "lmin_residual": "lambda_min_residual"}  # fmt: skip
    out = {renamed.get(k, k): v for k, v in values.items()}
    out["converged"] = bool(sp.converged)
    return out
