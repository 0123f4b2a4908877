"""Runs that outlive the app: ``tui-landscape compute CONFIG --out FILE`` as its own process.

The child gets its own session (``start_new_session``), so neither the app's exit nor a
dropped SSH connection (SIGHUP to the terminal's process groups) reaches it; stdin is
/dev/null and its output goes to ``FILE.h5.log`` beside the surface. The config it runs is
a file: the setup's own TOML when that is saved unchanged, else ``FILE.h5.toml``. The start
takes the output's lock before it writes anything and hands that very lock to the child
(``LOCK_FD_ENV``), so a second start on the same output is refused at once, never between the
first's config and its child's lock. The run is then found as any other, by its lock
(``tui_landscape.runs``): in the browser, with ``tui-landscape ps``, and by an app opened
later.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.config import Config, config_to_toml, load_config
from engine.errors import LandscapeError
from engine.formats import LOCK_FD_ENV, Lock, acquire_lock, log_path, run_config_path

__all__ = ["Detached", "config_file_for", "start_detached"]


@dataclass(frozen=True)
class Detached:
    """A started run: its process, the files it writes, the config it runs."""

    pid: int
    out: Path
    config: Path
    log: Path


def config_file_for(cfg: Config, out: Path, saved: Path | None = None) -> Path:
    """The TOML a detached run of ``cfg`` reads: ``saved`` when it holds exactly ``cfg``,
    else ``cfg`` written to ``FILE.h5.toml`` beside the output."""
    text = config_to_toml(cfg)
    if saved is not None:
        try:
            # The same config, however written (a saved file holds only non-default keys).
            if saved.is_file() and load_config(saved) == cfg:
                return saved
        except LandscapeError:
            pass  # unreadable or invalid: write our own beside the output
    path = run_config_path(out)
    if path.is_symlink():  # as the engine's side files: never written through
        raise LandscapeError(f"{path} is a symbolic link; refusing to write through it")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:  # a read-only folder, a full disk: one line in the app, no crash
        raise LandscapeError(f"cannot write the run's config {path}: {e.strerror}") from None
    return path


def start_detached(
    cfg: Config,
    out: str | Path,
    saved: Path | None = None,
    cwd: Path | None = None,
    overwrite: bool = False,
) -> Detached:
    """Start ``compute`` on ``cfg`` into ``out`` in its own session and return at once.

    ``cwd`` (default: the current directory) is where relative paths in the config are read,
    as for a run inside the app. Refuses a surface another run already writes. ``overwrite``
    passes ``--overwrite`` on (the file is replaced, not resumed).
    """
    cwd = Path.cwd() if cwd is None else Path(cwd)
    out = Path(out) if Path(out).is_absolute() else cwd / out
    # Taken here, handed to the child: a second start is refused now, before it writes a file.
    lock = acquire_lock(out)
    try:
        return _start_locked(cfg, out, saved if saved is None or saved.is_absolute()
                             else cwd / saved, cwd, lock, overwrite)  # fmt: skip
    except BaseException:
        lock.close(remove=True)  # nothing started: a lock file this start made goes
        raise
    finally:
        lock.close()  # the child holds the same lock now, through its own descriptor


def _start_locked(
    cfg: Config, out: Path, saved: Path | None, cwd: Path, lock: Lock, overwrite: bool = False
) -> Detached:
    """``start_detached``'s part under the output's lock, which the child inherits."""
    config = config_file_for(cfg, out, saved)
    log = log_path(out)
    argv = [sys.executable, "-m", "tui_landscape", "compute", str(config), "--out", str(out)]
    if overwrite:
        argv.append("--overwrite")
    # O_NOFOLLOW: a link planted at the log's name is refused, not written through.
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise LandscapeError(f"cannot write the run's log {log}: {e.strerror}") from None
    with os.fdopen(fd, "ab") as f:
        started = dt.datetime.now().isoformat(timespec="seconds")
        f.write(f"# {started} $ {shlex.join(argv)}\n".encode())
        f.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # lines reach the log as they happen
        env[LOCK_FD_ENV] = str(lock.fileno())
        env.pop("COLUMNS", None)  # the app's terminal size is not the log's
        env.pop("LINES", None)
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=f,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            pass_fds=(lock.fileno(),),
        )  # fmt: skip
    # The child's pid in the lock file: ``lock_holder`` names it, not this process (the
    # kernel lists a lock under the pid that took it).
    lock.record(proc.pid)
    # Reaped when it ends, so a long-lived app leaves no zombie behind; a daemon thread does
    # not keep the app alive, and the child does not depend on it.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return Detached(proc.pid, out, config, log)
