"""The resume policy: when an existing output is resumed, and with which directions.

A run on an output that holds a surface resumes it only when the stored config matches in
every key that changes values (``Config.identity``) and the direction file the surface names
is unchanged since it was started; anything else is refused with one line, never replaced
without ``--overwrite``. Called by ``engine.run.prepare`` with the output's lock held.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine.config import Config, config_from_dict, with_overrides
from engine.directions import DirectionSet
from engine.errors import ConfigError, LandscapeError
from engine.formats import LAYOUT_OURS, Surface, direction_hash, load_directions, read_surface
from engine.tomlfile import parse_toml

__all__ = ["existing_surface", "resumed_directions", "stored_config"]


def stored_config(path: Path, overrides: Iterable[str] = ()) -> Config:
    """The config a surface file was started with (``compute --resume FILE``), with
    ``section.key=value`` overrides on top; one line where the file has none to give."""
    if not path.is_file():
        raise ConfigError(f"--resume: no surface file at {path}")
    s = read_surface(path)
    if s.layout != LAYOUT_OURS or not s.provenance.config.strip():
        raise ConfigError(
            f"--resume: {path} stores no config (written by another tool); "
            "run `compute CONFIG --out FILE` with its config instead"
        )
    return with_overrides(parse_toml(s.provenance.config, f"the config stored in {path}"),
                          overrides)  # fmt: skip


def existing_surface(out: Path, cfg: Config, overwrite: bool) -> Surface | None:
    """The surface to resume, or None for a fresh start; refuses to clobber other work."""
    if not out.exists():
        return None
    if overwrite:
        return None  # replaced atomically once everything else has been checked
    s = read_surface(out)
    hint = "pass --overwrite to replace it, or choose another --out"
    if s.layout != LAYOUT_OURS:
        raise LandscapeError(f"{out} exists and is not a tui-landscape surface; {hint}")
    try:
        stored = config_from_dict(parse_toml(s.provenance.config, "config"))
    except LandscapeError:
        raise LandscapeError(f"{out} exists but its stored config cannot be read; {hint}") from None
    mine, theirs = cfg.identity(), stored.identity()
    if "auto" in (mine["directions"]["type"], theirs["directions"]["type"]):
        # 'auto' resolves from the model and kind, which are compared too: compare the result.
        mine["directions"]["type"] = theirs["directions"]["type"] = s.provenance.dir_type or None
    if mine != theirs:
        diff = next(
            f"{sec}.{k}: {theirs[sec].get(k)!r} in the file vs {mine[sec].get(k)!r} now"
            for sec in mine
            for k in mine[sec]
            if mine[sec].get(k) != theirs[sec].get(k)
        )
        raise LandscapeError(f"{out} holds a surface from a different config ({diff}); {hint}")
    return s


def resumed_directions(out: Path, existing: Surface, ndim: int) -> tuple[Path, DirectionSet]:
    """The direction file a surface names, unchanged since the surface was started."""
    dir_file = Path(existing.dir_file)
    if not dir_file.is_absolute():
        dir_file = out.parent / dir_file
    if not dir_file.is_file():
        raise LandscapeError(
            f"direction file {dir_file} named by {out} is missing; restore it, "
            "or pass --overwrite to start again"
        )
    ds = load_directions(dir_file)
    ds.y = ds.y if ndim == 2 else None
    if direction_hash(ds.x, ds.y) != existing.provenance.dir_hash:
        raise LandscapeError(
            f"direction file {dir_file} changed since {out} was started; "
            "pass --overwrite to start again"
        )
    return dir_file, ds
