"""A study folder as the front ends use it: a member's file of a stage, and the members where
only one factor varies. For ``plot``/``compare``/``info`` (``cli/studydir.py``) and the app's
study view alike. The folder's layout and table are docs/studies.md's;
``engine.study.table`` reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.study.table import Row, StudyTable

__all__ = [
    "DEFAULT_STAGE",
    "INFO_MEASURES",
    "factor_members",
    "is_study",
    "member_file",
]

DEFAULT_STAGE = "surface_2d"
# The measures `info` shows beside each member (the report and table.csv have them all).
INFO_MEASURES = ("gap", "curvature_filter", "mean_rise_filter", "lambda_max", "mean_ratio_map",
                 "adaptive_sharpness", "basin_volume")  # fmt: skip


def is_study(path: Path) -> bool:
    """Whether ``path`` is a study folder (it holds ``table.json``)."""
    from engine.study.table import is_study_folder

    return is_study_folder(path)


def _stages(table: StudyTable, row: Row | None = None) -> str:
    """The stages with a surface file (not the checkpoint), of a row or of any row."""
    rows = [row] if row is not None else table.rows
    names = dict.fromkeys(s for r in rows for s, f in r.files.items() if f.endswith(".h5"))
    return ", ".join(names) or "none yet"


def member_file(folder: Path, member: str | None, stage: str | None) -> tuple[Path, Row]:
    """The file of ``member``'s ``stage`` in a study folder; without a member, one line that
    lists the members and stages to choose from."""
    from engine.study.table import read_table

    table = read_table(folder)
    if not member:
        raise ConfigError(
            f"{folder} is a study folder: name a member with --member (one of "
            f"{', '.join(r.label for r in table.rows)}) and a stage with --stage (one of "
            f"{_stages(table)}; default {DEFAULT_STAGE})"
        )
    row = table.find(member)
    stage = stage or DEFAULT_STAGE
    path = table.file(row, stage)
    if path is None:
        raise ConfigError(
            f"member {row.label} has no {stage!r} file; its stages: {_stages(table, row)}"
        )
    return path, row


def factor_members(
    folder: Path, factor: str | None, stage: str | None, member: str | None
) -> tuple[list[Path], list[str], list[Row]]:
    """The files of ``stage`` of the ok members where only ``factor`` varies: the group of
    ``member`` (else of the first ok member), at its seed. Returns the paths, their labels and
    the group's members left out (not minimizers, or without the file)."""
    from engine.study.table import read_table

    table = read_table(folder)
    if factor not in table.factors:
        choices = ", ".join(table.factors) or "(none)"
        if factor is None:
            raise ConfigError(f"{folder} is a study folder: name a factor with --factor (one of "
                              f"{choices}) to compare its members")  # fmt: skip
        raise ConfigError(f"Expected `--factor` to be one of {choices}, but got {factor!r}.")
    stage = stage or DEFAULT_STAGE
    ok = table.ok_rows()
    anchor = table.find(member) if member else (ok[0] if ok else None)
    if anchor is None:
        raise ConfigError(f"no member of {folder} reached a minimizer: nothing to compare")
    others = [f for f in table.factors if f != factor]
    group = [
        r for r in table.rows
        if r.seed == anchor.seed and all(r.factors.get(o) == anchor.factors.get(o) for o in others)
    ]  # fmt: skip
    paths, labels, left = [], [], []
    for r in group:
        p = table.file(r, stage)
        if r.ok and p is not None:
            paths.append(p)
            labels.append(f"{r.label} ({factor}={r.factors.get(factor)})")
        else:
            left.append(r)
    if len(paths) < 2:
        fixed = ", ".join(f"{o}={anchor.factors.get(o)}" for o in others)
        raise ConfigError(
            f"fewer than two members with a {stage!r} file where only {factor} varies "
            f"(seed {anchor.seed}{', ' + fixed if fixed else ''}); pick another group with "
            "--member"
        )
    return paths, labels, left
