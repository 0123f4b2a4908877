"""One writer per surface: ``FILE.h5.lock`` held with ``flock``, and who holds it.

``acquire_lock`` takes the lock (or refuses in one line) and writes the holder's pid into the
lock file; ``lock_holder`` names the process that holds it without ever taking it;
``check_output`` makes the output's checks before anything is built. A run started detached
from the app is handed the lock its starter took (``LOCK_FD_ENV``), so two starts on one
output are decided before either writes a thing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from engine.errors import ConfigError, LandscapeError
from engine.formats.files import lock_path, open_side

__all__ = ["LOCK_FD_ENV", "Lock", "acquire_lock", "check_output", "lock_holder"]

# A process started with this variable set to an open descriptor of its output's lock file
# holds that lock already (its starter took it and passed it on): ``acquire_lock`` adopts it.
LOCK_FD_ENV = "TUI_LANDSCAPE_LOCK_FD"


class Lock:
    """``PATH.lock`` held with ``flock``: one writer per surface, released by ``close``."""

    def __init__(self, fd: int, path: Path, created: bool) -> None:
        self._fd: int | None = fd
        self.path, self.created = path, created

    @property
    def closed(self) -> bool:
        return self._fd is None

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the lock is released")
        return self._fd

    def record(self, pid: int) -> None:
        """Write ``pid`` into the lock file: the holder ``lock_holder`` confirms first. Best
        effort (a full disk may refuse even these bytes; the kernel's list still names one)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self.fileno(), 0)
            os.pwrite(self.fileno(), f"{pid}\n".encode(), 0)

    def close(self, remove: bool = False) -> None:
        """Release; ``remove`` also deletes the lock file if this lock created it (a run
        refused before it wrote anything leaves no file). It is unlinked while still held, so
        a process that opened it meanwhile finds it locked and is refused."""
        if self._fd is None:
            return
        if remove and self.created:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def acquire_lock(path: str | Path) -> Lock:
    """Hold ``PATH.lock`` exclusively, or refuse: another process writes this surface.

    Take it before reading anything about the output, and hand it to the writer: whoever
    holds it decides what the file becomes.
    """
    path = Path(path)
    lpath = lock_path(path)
    adopted = _handed(lpath)
    if adopted is not None:
        del os.environ[LOCK_FD_ENV]  # used once: a pool's workers never see it
        fd, created = adopted, False
    else:
        try:
            fd, created = open_side(lpath, os.O_RDWR | os.O_CREAT | os.O_EXCL), True
        except FileExistsError:
            fd, created = open_side(lpath, os.O_RDWR), False
    try:
        # On a handed-over descriptor this is a no-op that checks it is still ours.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LandscapeError(
            f"{path} is being computed by another process; wait for it or choose another output"
        ) from None
    lock = Lock(fd, lpath, created)
    lock.record(os.getpid())
    return lock


def _handed(lpath: Path) -> int | None:
    """The descriptor of ``lpath`` this process was handed (``LOCK_FD_ENV``); None where
    there is none or it is not this lock file's (a stale or foreign variable)."""
    value = os.environ.get(LOCK_FD_ENV)
    if value is None:
        return None
    try:
        fd = int(value)
        st, here = os.fstat(fd), os.lstat(lpath)
    except (ValueError, OSError):
        return None
    if not stat.S_ISREG(here.st_mode) or (st.st_dev, st.st_ino) != (here.st_dev, here.st_ino):
        return None
    return fd


def lock_holder(path: str | Path) -> int | None:
    """Who writes the surface ``path``: the pid holding its ``PATH.lock``, 0 when it is held
    by a process we cannot name, None when no process holds it (or there is no lock file).

    The lock is looked up, never taken: Linux lists every ``flock`` in ``/proc/locks`` by
    device and inode, with the pid that took it. Taking it, even for a moment, could refuse a
    run starting in that moment, so a non-blocking try is only the fallback where the holder
    cannot be looked up. On an anonymous device (tmpfs, overlay, btrfs: major 0) the kernel's
    list may name the device underneath, so a lock on the same inode number is confirmed
    through ``/proc/PID/fd`` (the very file, by device and inode) and ``/proc/PID/fdinfo``
    (holding a lock): an unrelated lock elsewhere is no one's. A lock path that is a link or
    not a regular file is nobody's lock (hostile files are never followed).
    """
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(lock_path(Path(path)), flags)
    except OSError:
        return None  # absent, a link, unreadable: no run of ours holds it
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        held = _proc_locks()
        if held is None:
            return _probe(fd, None)
        same_ino = [(dev, pid) for dev, ino, pid in held if ino == st.st_ino]
        if not same_ino:
            return None  # the common case: nothing holds it, one read of /proc/locks
        recorded = _recorded_pid(fd)
        # The pid written in the file first: a detached run's starter took the lock and the
        # kernel's list keeps the starter's pid, while the run holds it.
        if recorded and _holds(recorded, st):
            return recorded
        dev = (os.major(st.st_dev), os.minor(st.st_dev))
        exact = next((pid for d, pid in same_ino if d == dev), None)
        if exact is not None or dev[0] != 0:
            return exact
        seen = [_holds(pid, st) for _, pid in same_ino]
        for (_, pid), yes in zip(same_ino, seen, strict=True):
            if yes:
                return pid
        return _probe(fd, recorded) if None in seen else None
    finally:
        os.close(fd)


def _probe(fd: int, recorded: int | None) -> int | None:
    """The fallback: a non-blocking shared ``flock``, released at once."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return recorded or 0
    except OSError:
        return None
    fcntl.flock(fd, fcntl.LOCK_UN)
    return None


def _recorded_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0)
        pid = int(text.strip() or b"0")
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def _holds(pid: int, st: os.stat_result) -> bool | None:
    """Whether process ``pid`` holds an exclusive ``flock`` on the file ``st`` (by device and
    inode, as ``stat`` reports them); None where its descriptors cannot be looked at."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False  # gone
    except OSError:
        return None  # another user's process
    for n in fds:
        try:
            s = os.stat(f"/proc/{pid}/fd/{n}")
            if (s.st_dev, s.st_ino) != (st.st_dev, st.st_ino):
                continue
            with open(f"/proc/{pid}/fdinfo/{n}", encoding="ascii", errors="replace") as f:
                info = f.read()
        except OSError:
            continue
        if any(_is_write_flock(line.removeprefix("lock:").split()) for line in
               info.splitlines() if line.startswith("lock:")):  # fmt: skip
            return True
    return False


def _is_write_flock(parts: list[str]) -> bool:
    # "1: FLOCK  ADVISORY  WRITE 12849 fe:00:2148414 0 EOF"; a waiter's has "->" second.
    return len(parts) >= 6 and parts[1] == "FLOCK" and parts[3] == "WRITE"


def parse_locks(text: str) -> list[tuple[tuple[int, int], int, int]]:
    """``/proc/locks``' exclusive ``flock`` entries: ((major, minor), inode, pid) each."""
    held = []
    for line in text.splitlines():
        parts = line.split()
        if not _is_write_flock(parts):
            continue
        try:
            major, minor, ino = parts[5].split(":")
            held.append(((int(major, 16), int(minor, 16)), int(ino), int(parts[4])))
        except ValueError:
            continue
    return held


def _proc_locks() -> list[tuple[tuple[int, int], int, int]] | None:
    """Every exclusive ``flock`` the kernel lists; None where ``/proc/locks`` cannot be read
    (not Linux)."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            return parse_locks(f.read())
    except OSError:
        return None


def check_output(path: str | Path) -> Path:
    """The output's checks, made before anything is built: a ``.h5`` name, a folder that
    exists and can be written, no run writing it now. ``prepare`` makes them first and the
    app's setup on every change, so Run is refused where the run would be; the lock taken
    later still decides between two runs that start together."""
    out = Path(path)
    if out.suffix not in (".h5", ".hdf5"):
        raise ConfigError(f"Expected the output to end in .h5, but got {str(out)!r}.")
    if not out.parent.is_dir():
        raise ConfigError(f"output folder does not exist: {out.parent}")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write to the output folder {out.parent} (permission denied)")
    if out.exists() and not out.is_file():
        raise ConfigError(f"{out} is not a regular file; remove it or choose another output")
    pid = None if _handed(lock_path(out)) is not None else lock_holder(out)  # ours: handed over
    if pid is not None:
        who = f"another process (pid {pid})" if pid else "another process"
        raise LandscapeError(
            f"{out} is being computed by {who}; wait for it or choose another output"
        )
    return out
