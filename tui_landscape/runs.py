"""Runs that write surfaces: which files are being written, how far, how fast; and a cheap
test of whether a surface changed, which every watcher polls (plot view, browser, ``plot
--watch``).

A run holds ``FILE.h5.lock`` while it writes (``engine.formats.lock_holder`` looks, never
takes it) and appends finished points to ``FILE.h5.journal`` every ``compute.flush_seconds``.
A detached run (``tui_landscape.detach``) also leaves ``FILE.h5.log`` (its output) and
``FILE.h5.toml`` (the config it runs) beside the file; ``engine.formats`` names every side
file (``log_path``, ``run_config_path``, ``sidecars``). No torch here: ``ps`` and ``plot
--watch`` answer at once.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError, LandscapeError
from engine.formats import journal_path, lock_holder, log_path, surface_info
from engine.formats.constants import LOCK_SUFFIX

__all__ = [
    "WATCH_SECONDS",
    "RunStatus",
    "Watch",
    "find_runs",
    "process_start",
    "run_status",
]

WATCH_SECONDS = 1.0  # how often watchers look: a run flushes points every 2 s by default


@dataclass(frozen=True)
class RunStatus:
    """A surface being written: by whom, how far, how fast."""

    path: Path
    pid: int  # the writer's process id; 0 where it cannot be named
    done: int
    failed: int
    total: int  # 0 while the run prepares (model, directions) and the file is not there yet
    rate: float | None  # points per second since the last checkpoint; None while unknown
    log: Path | None  # a detached run's output, where there is one

    @property
    def percent(self) -> float | None:
        return 100.0 * self.done / self.total if self.total else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate."""
        if not self.rate or not self.total:
            return None
        return (self.total - self.done - self.failed) / self.rate


def run_status(path: str | Path) -> RunStatus | None:
    """The run writing ``path``, or None when no process holds its lock.

    Progress comes from ``surface_info`` (the file with its journal). The rate is the
    journal's points over the time since the last checkpoint (the file's ``updated``, when
    the journal was emptied, or the writer's start where that is later) up to the journal's
    last write: one look, no sampling.
    """
    p = Path(path)
    pid = lock_holder(p)
    if pid is None:
        return None
    started = process_start(pid) if pid else None
    log = log_path(p)
    # A detached run writes its log as it starts: an older log is an earlier run's.
    log = log if log.is_file() and (started is None or _mtime(log) >= started - 1.0) else None
    try:
        info = surface_info(p)
    except LandscapeError:
        # Locked but no readable file yet: the run is still building its model and directions.
        return RunStatus(p, pid, 0, 0, 0, None, log)
    return RunStatus(p, pid, info.done, info.failed, info.total, _rate(p, info, started), log)


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return float("-inf")


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), from ``/proc``; None where it
    cannot be read (not Linux, the process gone, a hostile value)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rpartition(")")[2].split()[19])  # field 22: start time after boot
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _rate(p: Path, info, started: float | None = None) -> float | None:
    """The journal's points over the time since the last checkpoint (the file's ``updated``,
    when the journal was emptied) or since the writer started, whichever is later: a resumed
    run's journal holds only its own points, while ``updated`` is the last run's."""
    if not info.journaled or not info.updated:
        return None
    try:
        since = dt.datetime.fromisoformat(info.updated).timestamp()
        last = os.stat(journal_path(p)).st_mtime
    except (ValueError, OSError, OverflowError):
        return None  # a hostile or foreign time stamp: no rate rather than a wrong one
    if started is not None:
        since = max(since, started)
    # ``updated`` has whole seconds: a span under one says little.
    return info.journaled / (last - since) if last - since >= 1.0 else None


def find_runs(targets: Iterable[str | Path], recursive: bool = False) -> list[RunStatus]:
    """The runs writing surfaces in these folders (their ``*.h5.lock``; with ``recursive``
    in their subfolders too) or these files.

    Raises ``ConfigError`` for a target that does not exist.
    """
    found: dict[Path, RunStatus] = {}
    pattern = f"*.h5{LOCK_SUFFIX}"
    for t in map(Path, targets):
        if not t.exists():
            raise ConfigError(f"not found: {t}")
        locks = (t.rglob(pattern) if recursive else t.glob(pattern)) if t.is_dir() else ()
        files = [t] if t.is_file() else sorted(
            q.with_name(q.name.removesuffix(LOCK_SUFFIX)) for q in locks
        )  # fmt: skip
        for f in files:
            if f not in found and (r := run_status(f)) is not None:
                found[f] = r
    return list(found.values())


Stamp = tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]


def _stat(p: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(p)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Watch:
    """Whether a surface may have changed since the last look: two ``stat`` calls.

    A flush grows the journal; a checkpoint renames a new file in (a new inode) and empties
    the journal; a new run creates both. Nothing else is read until one of them changes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._last: Stamp | None = None

    def stamp(self) -> Stamp:
        return (_stat(self.path), _stat(journal_path(self.path)))

    def changed(self) -> bool:
        """True at the first look and whenever the file or its journal changed since."""
        now = self.stamp()
        if now == self._last:
            return False
        self._last = now
        return True
