"""Run configuration: TOML mapped onto frozen dataclasses.

Every key has a type and a default; unknown keys, wrong types and bad values are
refused with the key's dotted path and what was expected. Relative paths are
taken from the current working directory. ``config_to_toml`` writes the resolved
config back, and that text is stored in every output file.
"""

from __future__ import annotations

import dataclasses
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
]


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True)
class ModelConfig:
    arch: str = field(
        default="digits_cnn",
        metadata=_doc("built-in name, 'pkg.module:callable' or 'path/to/file.py:callable'"),
    )
    checkpoint: str = field(
        default="",
        metadata=_doc("state dict file, or 'recipe:NAME' (trained once on digits and cached)"),
    )
    kwargs: Mapping[str, Any] = field(
        default_factory=dict, metadata=_doc("keyword arguments for the model builder")
    )
    seed: int = field(default=0, metadata=_doc("initialisation seed when there is no checkpoint"))


@dataclass(frozen=True)
class DataConfig:
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
    batch_size: int = field(
        default=1024, metadata=_doc("evaluation batch size (does not change the numbers)")
    )
    loss: Literal["crossentropy", "mse"] = field(
        default="crossentropy", metadata=_doc("'mse' is MSE on softmax outputs, as the reference")
    )


@dataclass(frozen=True)
class DirectionsConfig:
    kind: Literal["random", "interpolate", "file", "pca", "hessian"] = field(
        default="random", metadata=_doc("where the directions come from")
    )
    type: Literal["auto", "weights", "states"] = field(
        default="auto",
        metadata=_doc(
            "'states' also moves BN running statistics; auto: states for interpolation "
            "of a BN model, else weights"
        ),
    )
    norm: Literal["filter", "layer", "weight", "none"] = field(
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
        default="", metadata=_doc("folder or glob of a training run's checkpoints (kind = 'pca')")
    )
    pair: Literal["max_min", "top2"] = field(
        default="max_min",
        metadata=_doc("kind = 'hessian': top and most negative eigenvector, or the top two"),
    )


@dataclass(frozen=True)
class GridConfig:
    x: str = field(default="-1:1:51", metadata=_doc("'min:max:num'"))
    y: str = field(default="", metadata=_doc("'min:max:num'; empty for a 1D surface"))


@dataclass(frozen=True)
class ComputeConfig:
    device: str = field(default="auto", metadata=_doc("'auto', 'cpu', 'cuda' or 'cuda:N'"))
    flush_seconds: float = field(
        default=2.0, metadata=_doc("finished points reach the journal at least this often")
    )
    precision: Literal["fp32", "bf16", "fp16"] = field(
        default="fp32", metadata=_doc("autocast precision of the forward pass")
    )
    channels_last: bool | Literal["auto"] = field(
        default="auto",
        metadata=_doc("channels-last layout for 4-D inputs; auto: on when the model has a Conv2d"),
    )
    compile: bool = field(
        default=False, metadata=_doc("torch.compile the model (falls back to eager on failure)")
    )
    points_per_batch: int | Literal["auto"] = field(
        default="auto",
        metadata=_doc(
            "grid points per forward pass (torch.func.vmap); auto: timed on GPU, 1 on CPU"
        ),
    )
    preview: bool = field(
        default=False, metadata=_doc("compute every 4th point of each axis first, then the rest")
    )
    workers: int | Literal["auto"] = field(
        default="auto",
        metadata=_doc("worker processes; auto: one per device in compute.devices or per GPU"),
    )
    devices: tuple[str, ...] = field(
        default=(), metadata=_doc("devices of the workers, e.g. ['cuda:0', 'cuda:2']")
    )
    retries: int = field(default=2, metadata=_doc("tries after a point's first failure"))
    restarts: int = field(default=3, metadata=_doc("worker restarts allowed in one run"))
    checkpoint_seconds: float = field(
        default=60.0, metadata=_doc("how often the journal is folded into the HDF5 file")
    )


@dataclass(frozen=True)
class TrainConfig:
    optimizer: Literal["sgd", "adam"] = field(default="sgd", metadata=_doc("'sgd' or 'adam'"))
    lr: float = field(default=0.1, metadata=_doc("initial learning rate"))
    momentum: float = field(default=0.9, metadata=_doc("SGD momentum"))
    nesterov: bool = field(default=False, metadata=_doc("Nesterov momentum (SGD)"))
    weight_decay: float = field(default=0.0005, metadata=_doc("L2 weight decay"))
    batch_size: int = field(default=128, metadata=_doc("training batch size"))
    epochs: int = field(default=300, metadata=_doc("number of epochs"))
    schedule: Literal["step", "cosine", "constant"] = field(
        default="step",
        metadata=_doc(
            "'step': x lr_decay after 50%, 75% and 11/12 of the epochs, as the reference"
        ),
    )
    lr_decay: float = field(default=0.1, metadata=_doc("factor of each step of 'step'"))
    save_every: int = field(default=1, metadata=_doc("write model_{epoch}.pt every N epochs"))
    seed: int = field(
        default=0, metadata=_doc("seed of initialisation, shuffling and augmentation")
    )
    augment: Literal["auto", "none", "crop_flip"] = field(
        default="auto",
        metadata=_doc("'crop_flip': random crop (padding 4) and flip; auto: crop_flip on CIFAR"),
    )
    out: str = field(default="", metadata=_doc("run folder; default 'runs/<config name>'"))


@dataclass(frozen=True)
class HessianConfig:
    enabled: bool = field(
        default=False, metadata=_doc("also map the Hessian's extreme eigenvalues at every point")
    )
    tol: float = field(default=1e-3, metadata=_doc("relative tolerance of the eigenvalues"))
    params: Literal["2d", "all"] = field(
        default="2d", metadata=_doc("'2d': tensors with 2+ dims, as the reference; or 'all'")
    )
    split: Literal["train", "test"] = field(
        default="train", metadata=_doc("the split whose mean loss the Hessian is of")
    )
    trace_samples: int = field(
        default=50, metadata=_doc("Hutchinson samples for the trace at the center (0: skip)")
    )


@dataclass(frozen=True)
class OutputConfig:
    path: str = field(
        default="", metadata=_doc("surface file; default '<config name>.h5' (or --out)")
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
        """The parts that decide a surface's values (a resume must match them)."""
        d = config_to_dict(self)
        d.pop("compute")
        d.pop("output")
        d.pop("train")
        d["data"].pop("batch_size")
        d["hessian"].pop("trace_samples")  # a summary at the center, not a surface value
        d["data"]["splits"] = sorted(d["data"]["splits"])  # the order changes no value
        return d


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


def auto_points(spec: str) -> int | None:
    """Points of an ``auto`` / ``auto:N`` axis (fitted to a PCA path), None for others."""
    if not spec.startswith("auto"):
        return None
    rest = spec[4:]
    if rest == "":
        return AUTO_POINTS
    try:
        return int(rest.removeprefix(":")) if rest.startswith(":") else -1
    except ValueError:
        return -1


AUTO_POINTS = 21  # points per axis of a grid fitted to a PCA path, unless 'auto:N' says


def _unauto(spec: str) -> str:
    n = auto_points(spec)
    return spec if n is None else f"-1:1:{n}"


def _validate(cfg: Config) -> None:
    d, data = cfg.directions, cfg.data
    for key, spec in (("grid.x", cfg.grid.x), ("grid.y", cfg.grid.y)):
        n = auto_points(spec)
        if n is not None and d.kind != "pca":
            raise ConfigError(
                f"`{key}` = {spec!r}: an automatic range needs directions.kind = 'pca'."
            )
        if n is not None and n < 2:
            raise ConfigError(
                f"Expected `{key}` to be 'auto' or 'auto:N' with N >= 2, but got {spec!r}."
            )
    _ = cfg.parsed_grid  # raises on a bad grid spec
    if d.kind == "pca":
        if not d.checkpoints:
            raise ConfigError(
                "`directions.kind` = 'pca' needs `directions.checkpoints` (a folder or glob)."
            )
        if not cfg.grid.y:
            raise ConfigError("`directions.kind` = 'pca' gives two directions: set `grid.y` too.")
    if data.subset < 0:
        raise ConfigError(f"Expected `data.subset` >= 0 (0 means all), but got {data.subset}.")
    if data.image_size < 1:
        raise ConfigError(f"Expected `data.image_size` >= 1, but got {data.image_size}.")
    if len(data.mean) != len(data.std):
        raise ConfigError("Expected `data.mean` and `data.std` to have the same length.")
    if any(v <= 0 for v in data.std):
        raise ConfigError("Expected every `data.std` value > 0.")
    if data.batch_size < 1:
        raise ConfigError(f"Expected `data.batch_size` >= 1, but got {data.batch_size}.")
    if not data.splits:
        raise ConfigError("Expected `data.splits` to name at least one of 'train', 'test'.")
    if len(set(data.splits)) != len(data.splits):
        raise ConfigError(f"Expected `data.splits` without repeats, but got {list(data.splits)}.")
    t = cfg.train
    for key, value in (
        ("train.batch_size", t.batch_size),
        ("train.epochs", t.epochs),
        ("train.save_every", t.save_every),
    ):
        if value < 1:
            raise ConfigError(f"Expected `{key}` >= 1, but got {value}.")
    if t.lr <= 0:
        raise ConfigError(f"Expected `train.lr` > 0, but got {t.lr}.")
    ppb = cfg.compute.points_per_batch
    if ppb != "auto" and ppb < 1:
        raise ConfigError(f"Expected `compute.points_per_batch` >= 1 or 'auto', but got {ppb}.")
    if not (0 < cfg.compute.flush_seconds < float("inf")):
        raise ConfigError("Expected `compute.flush_seconds` to be a finite number > 0.")
    h = cfg.hessian
    if not (0 < h.tol < 1):
        raise ConfigError(f"Expected `hessian.tol` in (0, 1), but got {h.tol}.")
    if h.trace_samples < 0:
        raise ConfigError(f"Expected `hessian.trace_samples` >= 0, but got {h.trace_samples}.")
    if (h.enabled or cfg.directions.kind == "hessian") and h.split not in cfg.data.splits:
        raise ConfigError(
            f"`hessian.split` = {h.split!r} must be one of `data.splits` ({list(cfg.data.splits)})."
        )
    if not (0 < cfg.compute.checkpoint_seconds < float("inf")):
        raise ConfigError("Expected `compute.checkpoint_seconds` to be a finite number > 0.")
    w = cfg.compute.workers
    if w != "auto" and not 1 <= w <= 1024:
        raise ConfigError(f"Expected `compute.workers` to be 1..1024 or 'auto', but got {w}.")
    for key in ("retries", "restarts"):
        if (value := getattr(cfg.compute, key)) < 0:
            raise ConfigError(f"Expected `compute.{key}` >= 0, but got {value}.")
    for key, seed in (
        ("model.seed", cfg.model.seed),
        ("directions.seed", d.seed),
        ("data.subset_seed", data.subset_seed),
        ("train.seed", cfg.train.seed),
    ):
        if not 0 <= seed < 2**63:
            raise ConfigError(f"Expected `{key}` between 0 and 2**63 - 1, but got {seed}.")
    if d.target and d.kind != "interpolate":
        raise ConfigError("`directions.target` is only used with directions.kind = 'interpolate'.")
    if d.file and d.kind != "file":
        raise ConfigError("`directions.file` is only used with directions.kind = 'file'.")
    if d.kind == "file" and not d.file:
        raise ConfigError("Expected `directions.file` to name a direction file (kind = 'file').")
    if d.kind == "interpolate":
        if not d.target:
            raise ConfigError(
                "Expected `directions.target` to name the second model's checkpoint "
                "(kind = 'interpolate')."
            )
        if cfg.grid.y:
            raise ConfigError(
                "Expected `grid.y` to be empty: interpolation between two models is 1D."
            )


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build and validate a ``Config`` from nested mappings (as read from TOML)."""
    cfg = _build(Config, data, "")
    _validate(cfg)
    return cfg


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"Expected `--set` as 'section.key=value', but got {item!r}.")
    key, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare strings such as -1:1:21 or runs/model.pt
    return key.strip().split("."), value


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> Config:
    """Read a TOML file (or start from the defaults) and apply ``section.key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"Config file not found: {p}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"Cannot read config file {p}: {e}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"Config file {p} is not valid TOML: {e}") from None
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


def iter_keys() -> list[tuple[str, str, Any]]:
    """Every config key as ``(dotted name, doc, default)``, for docs and tests."""
    out = []
    for name, section in typing.get_type_hints(Config).items():
        for f in dataclasses.fields(section):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            out.append((f"{name}.{f.name}", f.metadata.get("doc", ""), default))
    return out
