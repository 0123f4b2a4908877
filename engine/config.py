"""Run configuration: TOML mapped onto frozen dataclasses.

Every key has a type, a default and metadata: ``doc`` (its help, shown by the app) and
``identity`` (False for keys that change no computed value; ``Config.identity`` follows it).
Unknown keys and wrong types are refused with the key's dotted path and what was expected;
bad values by each section's ``check``, next to its dataclass. Relative paths are taken from
the current working directory. ``config_to_toml`` writes the resolved config back, and that
text is stored in every output file (``engine.config_save`` writes one for people), and
``output_path`` is the one rule for where a config's surface goes.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w

from engine.errors import ConfigError
from engine.grid import Grid
from engine.imports import IN_MEMORY as IN_MEMORY  # re-exported: callers read it here
from engine.kinds import KINDS
from engine.losses import LOSSES, loss_refusal
from engine.norms import NORMS
from engine.tomlfile import read_toml_file

__all__ = [
    "ComputeConfig",
    "Config",
    "DataConfig",
    "DirectionsConfig",
    "GridConfig",
    "HessianConfig",
    "ModelConfig",
    "OutputConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_toml",
    "load_config",
    "output_path",
    "with_overrides",
]


DEFAULT_BATCH = 1024  # the batch size "auto" means where it does not probe (engine.autobatch)


def _doc(text: str, *, identity: bool = True) -> dict[str, Any]:
    """A key's metadata: ``doc`` is its help (README, app labels); ``identity=False`` marks a
    key that changes no computed value (how, where or how often), so a resume may differ in it.
    A new key is part of the identity unless it says otherwise: refusing a resume is safe."""
    return {"doc": text, "identity": identity}


def _at_least(key: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"Expected `{key}` >= {low}, but got {value}.")


def _finite_positive(key: str, value: float) -> None:
    if not (0 < value < float("inf")):
        raise ConfigError(f"Expected `{key}` to be a finite number > 0.")


def _seed(key: str, value: int) -> None:
    if not 0 <= value < 2**63:
        raise ConfigError(f"Expected `{key}` between 0 and 2**63 - 1, but got {value}.")


def auto_points(spec: str) -> int | None:
    """Points of an ``auto`` / ``auto:N`` axis (fitted to a PCA path, else probed by
    ``engine.autorange``), None for others."""
    if not spec.startswith("auto"):
        return None
    rest = spec[4:]
    if rest == "":
        return AUTO_POINTS
    try:
        return int(rest.removeprefix(":")) if rest.startswith(":") else -1
    except ValueError:
        return -1


AUTO_POINTS = 21  # points per axis of an automatic range (engine/autorange.py, a PCA path)


def _unauto(spec: str) -> str:
    n = auto_points(spec)
    return spec if n is None else f"-1:1:{n}"


class _Section:
    """Base of the config sections: ``check`` refuses bad values of the section's own keys."""

    def check(self, cfg: Config) -> None:
        """Raise ``ConfigError`` naming the key; ``cfg`` is the whole config, for the few
        checks that need another section's value."""


@dataclass(frozen=True)
class ModelConfig(_Section):
    arch: str = field(
        default="digits_cnn",
        metadata=_doc(
            "built-in name, 'pkg.module:callable', 'path/to/file.py:callable' or 'hf:PATH'"
        ),
    )
    checkpoint: str = field(
        default="",
        metadata=_doc("state dict file, or 'recipe:NAME' (trained once on digits and cached)"),
    )
    kwargs: Mapping[str, Any] = field(
        default_factory=dict, metadata=_doc("keyword arguments for the model builder")
    )
    seed: int = field(default=0, metadata=_doc("initialisation seed when there is no checkpoint"))

    def check(self, cfg: Config) -> None:
        _seed("model.seed", self.seed)


@dataclass(frozen=True)
class DataConfig(_Section):
    dataset: str = field(
        default="digits",
        metadata=_doc("built-in name, or a callable returning a torch Dataset (the train split)"),
    )
    test_dataset: str = field(
        default="", metadata=_doc("callable returning the test split of a user data set")
    )
    root: str = field(
        default="data", metadata=_doc("folder of a torchvision-format data set or image folder")
    )
    download: bool = field(
        default=False, metadata=_doc("download a missing torchvision data set into data.root")
    )
    raw: bool = field(default=False, metadata=_doc("turn input normalisation off"))
    subset: int = field(
        default=0, metadata=_doc("evaluate a fixed random subset of N samples per split (0: all)")
    )
    subset_seed: int = field(default=0, metadata=_doc("seed that picks the subset"))
    image_size: int = field(
        default=32, metadata=_doc("imagefolder: images are resized to this square size")
    )
    mean: tuple[float, ...] = field(
        default=(), metadata=_doc("per-channel mean for normalisation (empty: the data set's)")
    )
    std: tuple[float, ...] = field(
        default=(), metadata=_doc("per-channel std for normalisation (empty: the data set's)")
    )
    splits: tuple[Literal["train", "test"], ...] = field(
        default=("train", "test"), metadata=_doc("splits to evaluate at each grid point")
    )
    batch_size: int | Literal["auto"] = field(
        default="auto",
        metadata=_doc(
            "evaluation batch size; auto: the fastest per sample, timed before the grid starts "
            f"and cached ({DEFAULT_BATCH} where it is not timed). Changes no point, but for "
            "compute.bn = 'recalibrate' (part of the identity then, and auto is "
            f"{DEFAULT_BATCH})",
            identity=False,
        ),
    )
    loss: str = field(
        default="crossentropy",
        metadata=_doc(
            f"a built-in loss ({', '.join(LOSSES)}; mse is on softmax outputs, as the "
            "reference) or a function fn(model, batch) as 'pkg.module:fn' / 'file.py:fn'"
        ),
    )
    collate: str = field(
        default="",
        metadata=_doc("user collate function 'pkg.module:fn' for a user data set (empty: torch's)"),
    )
    l2: float = field(
        default=0.0, metadata=_doc("adds l2/2 * ||params||^2 to every loss surface (weight decay)")
    )
    stream: bool | Literal["auto"] = field(
        default="auto",
        metadata=_doc(
            "stream a user data set through a DataLoader at every point; auto: when a split is "
            "larger than data.memory_mb",
            identity=False,
        ),
    )
    memory_mb: int = field(
        default=4096,
        metadata=_doc(
            "a split larger than this (MiB) streams (data.stream = 'auto')", identity=False
        ),
    )
    loader_workers: int = field(
        default=2, metadata=_doc("DataLoader worker processes of a streamed split", identity=False)
    )

    @property
    def fixed_batch(self) -> int:
        """The batch size where one is needed before (or without) timing: loading data,
        recalibrating BN statistics, Hessian-vector products."""
        return DEFAULT_BATCH if self.batch_size == "auto" else self.batch_size

    def check(self, cfg: Config) -> None:
        if self.subset < 0:
            raise ConfigError(f"Expected `data.subset` >= 0 (0 means all), but got {self.subset}.")
        _at_least("data.image_size", self.image_size, 1)
        if len(self.mean) != len(self.std):
            raise ConfigError("Expected `data.mean` and `data.std` to have the same length.")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)):
            # NaN passes 'std > 0' by failing every comparison, and gave an all-NaN surface
            raise ConfigError("Expected every `data.mean` and `data.std` value to be finite.")
        if any(v <= 0 for v in self.std):
            raise ConfigError("Expected every `data.std` value > 0.")
        if (b := self.batch_size) != "auto" and not 1 <= b < 2**63:  # 2**63: a DataLoader raised
            raise ConfigError(f"Expected `data.batch_size` in 1..2**63-1 or 'auto', but got {b}.")
        if not self.splits:
            raise ConfigError("Expected `data.splits` to name at least one of 'train', 'test'.")
        if len(set(self.splits)) != len(self.splits):
            raise ConfigError(
                f"Expected `data.splits` without repeats, but got {list(self.splits)}."
            )
        _seed("data.subset_seed", self.subset_seed)
        if self.loss not in LOSSES and ":" not in self.loss:
            raise ConfigError(loss_refusal(self.loss))
        if self.collate and ":" not in self.collate:
            raise ConfigError(
                f"Expected `data.collate` as 'pkg.module:fn' or 'file.py:fn', but got "
                f"{self.collate!r}."
            )
        if not 0 <= self.l2 < math.inf:
            raise ConfigError(f"Expected `data.l2` to be a finite number >= 0, but got {self.l2}.")
        _at_least("data.memory_mb", self.memory_mb, 1)
        _at_least("data.loader_workers", self.loader_workers, 0)


@dataclass(frozen=True)
class DirectionsConfig(_Section):
    kind: Literal[KINDS.names()] = field(  # engine/kinds.py's names, as norm's below
        default="random", metadata=_doc("where the directions come from")
    )
    type: Literal["auto", "weights", "states"] = field(
        default="auto",
        metadata=_doc(
            "'states' also moves BN running statistics; auto: states for interpolation "
            "of a BN model (with compute.bn = 'keep'), else weights"
        ),
    )
    # The choices are the registry's, read each time the hints are resolved (a string
    # annotation): a norm registered in engine/norms.py is accepted, and offered by the app.
    norm: Literal[NORMS.names()] = field(
        default="filter", metadata=_doc("normalisation of random directions")
    )
    ignore: Literal["biasbn", "none"] = field(
        default="biasbn", metadata=_doc("'biasbn' zeroes the direction on 1-D tensors")
    )
    seed: int = field(default=0, metadata=_doc("seed of the CPU generator for random directions"))
    same: bool = field(default=False, metadata=_doc("use the x direction for y as well"))
    file: str = field(default="", metadata=_doc("direction file to use (kind = 'file')"))
    target: str = field(
        default="", metadata=_doc("second model's checkpoint (kind = 'interpolate')")
    )
    checkpoints: str = field(
        default="",
        metadata=_doc(
            "folder or glob of a training run's checkpoints, or one path per line (kind = 'pca')"
        ),
    )
    pair: Literal["max_min", "top2"] = field(
        default="max_min",
        metadata=_doc("kind = 'hessian': top and most negative eigenvector, or the top two"),
    )

    def check(self, cfg: Config) -> None:
        if self.kind == "pca":
            if not self.checkpoints:
                raise ConfigError(
                    "`directions.kind` = 'pca' needs `directions.checkpoints` (a folder or glob)."
                )
            if not cfg.grid.y:
                raise ConfigError(
                    "`directions.kind` = 'pca' gives two directions: set `grid.y` too."
                )
        _seed("directions.seed", self.seed)
        if self.target and self.kind != "interpolate":
            raise ConfigError(
                "`directions.target` is only used with directions.kind = 'interpolate'."
            )
        if self.file and self.kind != "file":
            raise ConfigError("`directions.file` is only used with directions.kind = 'file'.")
        if self.kind == "file" and not self.file:
            raise ConfigError(
                "Expected `directions.file` to name a direction file (kind = 'file')."
            )
        if self.kind == "interpolate":
            if not self.target:
                raise ConfigError(
                    "Expected `directions.target` to name the second model's checkpoint "
                    "(kind = 'interpolate')."
                )
            if cfg.grid.y:
                raise ConfigError(
                    "Expected `grid.y` to be empty: interpolation between two models is 1D."
                )


@dataclass(frozen=True)
class GridConfig(_Section):
    x: str = field(
        default="-1:1:51",
        metadata=_doc(
            "'min:max:num', or 'auto' / 'auto:N' (N points, 21 by default): fitted to a PCA "
            "path, else the range where the train loss rises to 3x its centre value + 1"
        ),
    )
    y: str = field(
        default="", metadata=_doc("'min:max:num' or 'auto' (as grid.x); empty for a 1D surface")
    )

    def check(self, cfg: Config) -> None:
        for key, spec in (("grid.x", self.x), ("grid.y", self.y)):
            n = auto_points(spec)
            if n is not None and n < 2:
                raise ConfigError(
                    f"Expected `{key}` to be 'auto' or 'auto:N' with N >= 2, but got {spec!r}."
                )
        g = cfg.parsed_grid  # raises on a bad grid spec
        single = [a for a in (g.x, g.y) if a is not None and a.num == 1]
        if single and not (cfg.hessian.enabled and g.ndim == 1):
            key, spec = ("grid.x", self.x) if g.x.num == 1 else ("grid.y", self.y)
            raise ConfigError(
                f"Expected `{key}` to have 2+ points, but got {spec!r}: one point "
                "('0:0:1', with grid.y empty) is only for a Hessian run at the centre "
                "(tui-landscape hessian --center)."
            )


@dataclass(frozen=True)
class ComputeConfig(_Section):
    device: str = field(
        default="auto", metadata=_doc("'auto', 'cpu', 'cuda' or 'cuda:N'", identity=False)
    )
    flush_seconds: float = field(
        default=2.0,
        metadata=_doc("finished points reach the journal at least this often", identity=False),
    )
    precision: Literal["fp32", "bf16", "fp16"] = field(
        # Part of the identity: bf16 moves losses by up to ~1%, so a resume must not mix it in.
        default="fp32",
        metadata=_doc("autocast precision of the forward pass"),
    )
    channels_last: bool | Literal["auto"] = field(
        default="auto",
        metadata=_doc(
            "channels-last layout for 4-D inputs; auto: on when the model has a Conv2d",
            identity=False,
        ),
    )
    compile: bool = field(
        default=False,
        metadata=_doc("torch.compile the model (falls back to eager on failure)", identity=False),
    )
    points_per_batch: int | Literal["auto"] = field(
        default="auto",
        metadata=_doc(
            "grid points evaluated together: on GPU one forward pass (torch.func.vmap), on "
            "CPU passes in turn with their loss and metrics at once; auto: timed",
            identity=False,
        ),
    )
    preview: bool = field(
        default=False,
        metadata=_doc("compute every 4th point of each axis first, then the rest", identity=False),
    )
    workers: int | Literal["auto"] = field(
        default="auto",
        metadata=_doc(
            "worker processes; auto: one per device in compute.devices or per GPU", identity=False
        ),
    )
    devices: tuple[str, ...] = field(
        default=(),
        metadata=_doc("devices of the workers, e.g. ['cuda:0', 'cuda:2']", identity=False),
    )
    retries: int = field(
        default=2, metadata=_doc("tries after a point's first failure", identity=False)
    )
    restarts: int = field(
        default=3, metadata=_doc("worker restarts allowed in one run", identity=False)
    )
    checkpoint_seconds: float = field(
        default=60.0,
        metadata=_doc("how often the journal is folded into the HDF5 file", identity=False),
    )
    bn: Literal["keep", "recalibrate"] = field(
        # Default 'keep': the reference's numbers, and no extra pass per point.
        default="keep",
        metadata=_doc(
            "BN running statistics at each point: 'keep' the checkpoint's (moved by 'states' "
            "directions), or 'recalibrate': re-estimate them from the train split (one more "
            "pass over it per point, in train mode)"
        ),
    )

    def check(self, cfg: Config) -> None:
        if self.bn == "recalibrate" and cfg.directions.type == "states":
            raise ConfigError(
                "`compute.bn` = 'recalibrate' re-estimates the BN statistics that "
                "`directions.type` = 'states' would move: set it to 'weights' or 'auto'."
            )
        ppb = self.points_per_batch
        if ppb != "auto" and ppb < 1:
            raise ConfigError(f"Expected `compute.points_per_batch` >= 1 or 'auto', but got {ppb}.")
        _finite_positive("compute.flush_seconds", self.flush_seconds)
        _finite_positive("compute.checkpoint_seconds", self.checkpoint_seconds)
        w = self.workers
        if w != "auto" and not 1 <= w <= 1024:
            raise ConfigError(f"Expected `compute.workers` to be 1..1024 or 'auto', but got {w}.")
        _at_least("compute.retries", self.retries, 0)
        _at_least("compute.restarts", self.restarts, 0)


@dataclass(frozen=True)
class TrainConfig(_Section):
    optimizer: Literal["sgd", "adam"] = field(
        default="sgd", metadata=_doc("'sgd' or 'adam'", identity=False)
    )
    lr: float = field(default=0.1, metadata=_doc("initial learning rate", identity=False))
    momentum: float = field(default=0.9, metadata=_doc("SGD momentum", identity=False))
    nesterov: bool = field(default=False, metadata=_doc("Nesterov momentum (SGD)", identity=False))
    weight_decay: float = field(default=0.0005, metadata=_doc("L2 weight decay", identity=False))
    batch_size: int = field(default=128, metadata=_doc("training batch size", identity=False))
    epochs: int = field(default=300, metadata=_doc("number of epochs", identity=False))
    schedule: Literal["step", "cosine", "constant"] = field(
        default="step",
        metadata=_doc(
            "'step': x lr_decay after 50%, 75% and 11/12 of the epochs, as the reference",
            identity=False,
        ),
    )
    lr_decay: float = field(
        default=0.1, metadata=_doc("factor of each step of 'step'", identity=False)
    )
    save_every: int = field(
        default=1, metadata=_doc("write model_{epoch}.pt every N epochs", identity=False)
    )
    seed: int = field(
        default=0,
        metadata=_doc("seed of initialisation, shuffling and augmentation", identity=False),
    )
    augment: Literal["auto", "none", "crop_flip"] = field(
        default="auto",
        metadata=_doc(
            "'crop_flip': random crop (padding 4) and flip; auto: crop_flip on CIFAR",
            identity=False,
        ),
    )
    out: str = field(
        default="", metadata=_doc("run folder; default 'runs/<config name>'", identity=False)
    )

    def check(self, cfg: Config) -> None:
        _at_least("train.batch_size", self.batch_size, 1)
        _at_least("train.epochs", self.epochs, 1)
        _at_least("train.save_every", self.save_every, 1)
        if self.lr <= 0:
            raise ConfigError(f"Expected `train.lr` > 0, but got {self.lr}.")
        _seed("train.seed", self.seed)


@dataclass(frozen=True)
class HessianConfig(_Section):
    enabled: bool = field(
        default=False, metadata=_doc("also map the Hessian's extreme eigenvalues at every point")
    )
    tol: float = field(
        default=1e-3,
        metadata=_doc(
            "each eigenvalue's tolerance relative to itself: residual ||Hv - lambda v|| <= "
            "tol * max(|lambda|, 0.01 * |lambda_max|); 1e-3 puts lambda_min within 1% of itself "
            "wherever |lambda_min| >= 1e-3 lambda_max"
        ),
    )
    max_products: int = field(
        default=1000,
        metadata=_doc(
            "Hessian-vector products per point; a point still above tol then is kept with "
            "hessian_converged = 0"
        ),
    )
    params: Literal["2d", "all"] = field(
        default="2d",
        metadata=_doc(
            "'2d': tensors with 2+ dims, as the reference (biases and norm weights left out); "
            "or 'all'"
        ),
    )
    split: Literal["train", "test"] = field(
        default="train", metadata=_doc("the split whose mean loss the Hessian is of")
    )
    trace_samples: int = field(
        default=50,
        metadata=_doc("Hutchinson probes for the trace at the center (0: skip)", identity=False),
    )
    top_k: int = field(
        default=5, metadata=_doc("largest eigenvalues found at the center", identity=False)
    )
    density_probes: int = field(
        default=5,
        metadata=_doc(
            "probe vectors of the eigenvalue density at the center (stochastic Lanczos "
            "quadrature; 0: skip)",
            identity=False,
        ),
    )
    density_steps: int = field(
        default=40,
        metadata=_doc("Lanczos steps per density probe (quadrature nodes)", identity=False),
    )

    def check(self, cfg: Config) -> None:
        if not (0 < self.tol < 1):
            raise ConfigError(f"Expected `hessian.tol` in (0, 1), but got {self.tol}.")
        _at_least("hessian.trace_samples", self.trace_samples, 0)
        if self.trace_samples == 1:
            raise ConfigError("Expected `hessian.trace_samples` 0 or >= 2, but got 1.")
        _at_least("hessian.max_products", self.max_products, 2)
        _at_least("hessian.top_k", self.top_k, 1)
        _at_least("hessian.density_probes", self.density_probes, 0)
        _at_least("hessian.density_steps", self.density_steps, 2)
        splits = cfg.data.splits
        if (self.enabled or cfg.directions.kind == "hessian") and self.split not in splits:
            raise ConfigError(
                f"`hessian.split` = {self.split!r} must be one of `data.splits` ({list(splits)})."
            )


@dataclass(frozen=True)
class OutputConfig(_Section):
    path: str = field(
        default="",
        metadata=_doc("surface file; default '<config name>.h5' (or --out)", identity=False),
    )


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    directions: DirectionsConfig = field(default_factory=DirectionsConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    hessian: HessianConfig = field(default_factory=HessianConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def parsed_grid(self) -> Grid:
        """The grid; an ``auto`` axis (PCA: fitted to the path) is -1:1 until resolved."""
        return Grid.parse(*(_unauto(v) for v in (self.grid.x, self.grid.y)))

    def identity(self) -> dict[str, Any]:
        """The parts that decide a surface's values (a resume must match them): every key
        whose metadata does not say ``identity=False``, by section; sections left empty
        (output, train) are dropped."""
        plain = config_to_dict(self)
        d: dict[str, Any] = {}
        for sec in dataclasses.fields(self):
            keys = dataclasses.fields(getattr(self, sec.name))
            kept = {
                f.name: plain[sec.name][f.name] for f in keys if f.metadata.get("identity", True)
            }
            if kept:
                d[sec.name] = kept
        d["data"]["splits"] = sorted(d["data"]["splits"])  # the order changes no value
        if self.compute.bn == "recalibrate":
            # Recalibrated statistics average per-batch ones: the batching changes them.
            d["data"]["batch_size"] = self.data.fixed_batch  # 'auto' recalibrates at 1024
        return d

    def check(self) -> None:
        """Refuse bad values: each section checks its own keys, in the order of the file."""
        for sec in dataclasses.fields(self):
            getattr(self, sec.name).check(self)


# --- conversion ------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin in (Mapping, dict):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, str(tp)
    )


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        for arm in typing.get_args(tp):
            try:
                return _convert(value, arm, key)
            except ConfigError:
                pass
        raise ConfigError(f"Expected `{key}` to be {_type_name(tp)}, but got {value!r}.")
    bad = ConfigError(f"Expected `{key}` to be {_type_name(tp)}, but got {value!r}.")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise bad
        item = typing.get_args(tp)[0]
        return tuple(_convert(v, item, f"{key}[{n}]") for n, v in enumerate(value))
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise bad
        return types.MappingProxyType(dict(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported config type {tp!r} at {key}")  # a bug, not user input


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(
                f"Unknown config key `{dotted}`; expected one of: "
                + ", ".join(f"{prefix}{n}" for n in names)
                + "."
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, Mapping):
                raise ConfigError(f"Expected `{dotted}` to be a table, but got {value!r}.")
            kwargs[key] = _build(tp, value, f"{dotted}.")
        else:
            kwargs[key] = _convert(value, tp, dotted)
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build and validate a ``Config`` from nested mappings (as read from TOML)."""
    cfg = _build(Config, data, "")
    cfg.check()
    return cfg


def key_type(dotted: str) -> Any | None:
    """The annotated type of a dotted config key (``grid.x``), or None for an unknown key (which
    ``config_from_dict`` then refuses with the valid names)."""
    tp: Any = Config
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(tp):
            return None
        tp = typing.get_type_hints(tp).get(part)
        if tp is None:
            return None
    return tp


def parse_value(text: str, tp: Any | None = None) -> Any:
    """A typed value as a user types it, on the command line (``--set``) or in the app: the one
    parser of both. A key whose type is ``str`` takes the text as it is (a path named ``2024``
    or ``true`` stays a string); any other value is read as TOML, and text that is not TOML is
    kept as a bare word (``auto``, ``-1:1:21``) for the config's checks to judge. A quoted
    TOML string (``'cpu'``) is its content for every key."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise ConfigError(f"The value {text[:40]!r}... is nested too deeply.") from None
    return text if tp is str and not isinstance(value, str) else value


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"Expected `--set` as 'section.key=value', but got {item!r}.")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = parse_value(raw, key_type(key))
    except ConfigError:
        raise ConfigError(f"`--set {key}`: the value is nested too deeply.") from None
    return key.split("."), value


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> Config:
    """Read a TOML file (or start from the defaults) and apply ``section.key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        _, data = read_toml_file(Path(path), "Config file")
    return with_overrides(data, overrides)


def with_overrides(data: dict[str, Any], overrides: Iterable[str] = ()) -> Config:
    """The config of parsed TOML ``data`` with ``section.key=value`` overrides applied."""
    for item in overrides:
        keys, value = _parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Cannot set `{item.split('=')[0]}`: `{k}` is not a table.")
        node[keys[-1]] = value
    return config_from_dict(data)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dicts (tuples as lists) suitable for TOML."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def config_to_toml(cfg: Config) -> str:
    return tomli_w.dumps(config_to_dict(cfg))


def output_path(cfg: Config, config_path: str | Path | None, out: str | Path | None = None) -> Path:
    """Where a run of ``cfg`` writes: ``out`` (``--out``), else ``output.path``, else
    '<config name>.h5' beside the working directory ('surface.h5' for a config with no file)."""
    if out:
        return Path(out)
    if cfg.output.path:
        return Path(cfg.output.path)
    return Path(f"{Path(config_path).stem if config_path else 'surface'}.h5")


def iter_keys() -> list[tuple[str, str, Any]]:
    """Every config key as ``(dotted name, doc, default)``, for docs and tests."""
    out = []
    for name, section in typing.get_type_hints(Config).items():
        for f in dataclasses.fields(section):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            out.append((f"{name}.{f.name}", f.metadata.get("doc", ""), default))
    return out
