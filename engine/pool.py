"""Evaluating grid points: in this process, or on a pool of spawned worker processes.

Both executors take flat indices and yield one ``Outcome`` per index, in the order points
finish. The parent process is the only one that touches the output file; workers load the
model, the data and the directions once and evaluate the chunks they are sent.

Faults: a point whose evaluation raises is tried ``retries`` more times, then reported as
failed with its error (a NaN or inf loss is a result, not a failure). A worker that dies
(killed, out of memory, segfault) has its in-flight points re-queued, each such loss counting
as a try, and is restarted, at most ``restarts`` times over the pool's life. A
``DataSetError`` (the data set's own fault, the same at every point) stops the run at once.

Chunks are sized by guided self-scheduling: about half of a worker's fair share of what is
left, capped at two seconds of its measured speed, so all workers finish together and a dead
worker loses little.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from engine.errors import DataSetError, LandscapeError, describe

__all__ = ["Outcome", "Pool", "WorkerSpec", "evaluate_local"]

CHUNK_SECONDS = 2.0  # the most work a chunk holds, so a lost worker loses little


@dataclass(frozen=True)
class Outcome:
    """One point's end: its values, or the error of its last try (then ``values`` is None).

    ``exc`` is that error itself where the point ran in this process (None from a worker), so
    a caller can chain it (``raise ... from exc``) and keep the user's file and line."""

    index: int
    values: dict[str, float] | None
    error: str | None = None
    exc: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to rebuild the parent's evaluation: all plain, picklable data."""

    config_toml: str
    dir_file: str
    dir_type: str
    device: str
    threads: int
    quiet: bool = False  # send the worker's stdout and stderr to /dev/null (under a TUI)
    points: int | None = None  # about how many points it evaluates (sizes a batch-size probe)


Evaluator = Callable[[list[tuple[float, float]]], list[dict[str, float]]]


def _evaluate_chunk(
    evaluate_many: Evaluator, step: int, points: list[tuple[int, float, float]]
) -> Iterator[tuple[list[int], list[dict[str, float]] | Exception]]:
    """(indices, values) per group of ``step`` points; (index, the error) for one that fails."""
    for start in range(0, len(points), step):
        group = points[start : start + step]
        try:
            yield [k for k, _, _ in group], evaluate_many([(a, b) for _, a, b in group])
            continue
        except DataSetError:
            raise  # the data set's fault, the same at every point: the run stops
        except Exception as e:
            if len(group) == 1:
                yield [group[0][0]], e
                continue
        for k, a, b in group:  # a batched group failed: find the point(s) that fail alone
            try:
                yield [k], evaluate_many([(a, b)])
            except DataSetError:
                raise
            except Exception as e:
                yield [k], e


def evaluate_local(
    evaluate_many: Evaluator,
    point: Callable[[int], tuple[float, float]],
    todo: list[int],
    step: int,
    retries: int,
) -> Iterator[Outcome]:
    """Evaluate ``todo`` in this process, ``step`` points per pass, retrying failures."""
    for start in range(0, len(todo), step):
        chunk = [(k, *point(k)) for k in todo[start : start + step]]
        for ks, res in _evaluate_chunk(evaluate_many, step, chunk):
            if not isinstance(res, Exception):
                yield from (Outcome(k, v) for k, v in zip(ks, res, strict=True))
                continue
            k, exc = ks[0], res
            for _ in range(retries):
                try:
                    (values,) = evaluate_many([point(k)])
                except DataSetError:
                    raise
                except Exception as e:
                    exc = e
                    continue
                yield Outcome(k, values)
                break
            else:
                yield Outcome(k, None, describe(exc), exc)


PARENT_POLL_SECONDS = 0.5  # how soon a worker whose parent died notices and exits


def _exit_with_parent(parent: int) -> None:
    """End this worker as soon as its parent is gone (killed with SIGKILL, say): the pipe
    only tells a worker that is between chunks, and a chunk may take seconds."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(0)  # nothing to clean up: the parent alone writes files


def _worker(conn: Connection, spec: WorkerSpec, parent: int | None = None) -> None:
    """A worker process: build the evaluation once, then evaluate the chunks it is sent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    if parent is not None:
        import threading

        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    if spec.quiet:  # a warning printed on the terminal would tear a running TUI's screen
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    import torch

    torch.set_num_threads(spec.threads)
    try:
        from engine.landscape import landscape_from_files

        land = landscape_from_files(
            spec.config_toml, spec.dir_file, spec.dir_type, spec.device, spec.points
        )
    except Exception as e:
        conn.send(("fatal", describe(e)))
        return
    try:
        conn.send(("ready", None))
        while (points := conn.recv()) is not None:
            for ks, res in _evaluate_chunk(land.evaluate_many, land.points_per_batch, points):
                if isinstance(res, Exception):
                    conn.send(("error", ks, describe(res)))
                else:
                    conn.send(("result", ks, res))
            conn.send(("idle", None))
    except DataSetError as e:  # the same at every point: the parent stops the run
        conn.send(("stop", str(e)))
    except (EOFError, OSError):  # the parent is gone (BrokenPipe, reset): end quietly
        os._exit(0)


@dataclass(eq=False)
class _Worker:
    slot: int
    spec: WorkerSpec
    proc: Any = None
    conn: Connection | None = None
    ready: bool = False
    busy: bool = False
    inflight: set[int] = field(default_factory=set)
    sent_at: float = 0.0
    sent: int = 0
    sec_per_point: float | None = None


class Pool:
    """Spawned workers, one per spec, that evaluate chunks of grid points.

    Create the pool before a Textual app runs (spawning needs real stdio file descriptors).
    ``run`` yields an ``Outcome`` per index as results arrive; the pool stops its workers
    when ``run`` ends, also on an exception or Ctrl-C in the parent.
    """

    def __init__(
        self,
        specs: list[WorkerSpec],
        point: Callable[[int], tuple[float, float]],
        retries: int = 2,
        restarts: int = 3,
        step: int = 1,
    ) -> None:
        self.point, self.retries, self.restarts_left, self.step = point, retries, restarts, step
        self._ctx = mp.get_context("spawn")  # fork would copy CUDA state and thread locks
        self.workers = [_Worker(i, s) for i, s in enumerate(specs)]
        self.restarted = 0

    def _start(self, w: _Worker) -> None:
        parent, child = self._ctx.Pipe()
        w.proc = self._ctx.Process(
            target=_worker, args=(child, w.spec, os.getpid()), name=f"tui-landscape-worker-{w.slot}"
        )
        env = {"OMP_NUM_THREADS": str(w.spec.threads), "MKL_NUM_THREADS": str(w.spec.threads)}
        old_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        with _sigint_ignored():  # inherited through exec: workers never see the user's Ctrl-C
            w.proc.start()
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        child.close()
        w.conn, w.ready, w.busy, w.inflight = parent, False, False, set()

    def _chunk_size(self, w: _Worker, remaining: int) -> int:
        if w.sec_per_point is None:
            return self.step  # a first, small chunk measures the worker's speed
        share = math.ceil(remaining / (2 * len(self.workers)))
        size = max(self.step, min(share, int(CHUNK_SECONDS / w.sec_per_point)))
        return math.ceil(size / self.step) * self.step

    def run(self, todo: list[int]) -> Iterator[Outcome]:
        queue, retry = deque(todo), deque()
        tries: Counter[int] = Counter()
        errors: dict[int, str] = {}
        for w in self.workers:
            self._start(w)
        try:
            while queue or retry or any(w.inflight for w in self.workers):
                self._dispatch(queue, retry)
                live = [w for w in self.workers if w.proc is not None]
                if not live:
                    raise LandscapeError(
                        "every worker died and the restart budget is spent; last error: "
                        + (next(reversed(errors.values()), "unknown"))
                    )
                owner = {w.conn: w for w in live} | {w.proc.sentinel: w for w in live}
                ready = {owner[h].slot: owner[h] for h in wait(list(owner), timeout=5.0)}
                for w in ready.values():  # once each, though both its handles may be ready
                    for msg in self._drain(w):
                        yield from self._handle(w, msg, retry, tries, errors)
                    if not w.proc.is_alive():
                        yield from self._lost(w, retry, tries, errors)
        finally:
            self.close()

    def _dispatch(self, queue: deque[int], retry: deque[int]) -> None:
        for w in self.workers:
            if w.proc is None or not w.ready or w.busy or not (queue or retry):
                continue
            if retry:
                chunk = [retry.popleft()]  # alone, so one bad point cannot fail a chunk
            else:
                n = self._chunk_size(w, len(queue))
                chunk = [queue.popleft() for _ in range(min(n, len(queue)))]
            w.inflight, w.busy = set(chunk), True
            w.sent_at, w.sent = time.monotonic(), len(chunk)
            # If it died, its sentinel reports it and the chunk is re-queued.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, EOFError):
                w.conn.send([(k, *self.point(k)) for k in chunk])

    def _drain(self, w: _Worker) -> Iterator[tuple]:
        try:
            while w.conn.poll():
                yield w.conn.recv()
        except (EOFError, ConnectionResetError, OSError):
            return

    def _handle(self, w: _Worker, msg: tuple, retry, tries, errors) -> Iterator[Outcome]:
        kind = msg[0]
        if kind == "ready":
            w.ready = True
        elif kind == "fatal":
            raise LandscapeError(f"worker {w.slot} ({w.spec.device}) could not start: {msg[1]}")
        elif kind == "stop":
            raise DataSetError(msg[1])
        elif kind == "idle":
            w.busy = False
            if w.sent:
                per = (time.monotonic() - w.sent_at) / w.sent
                w.sec_per_point = per if w.sec_per_point is None else 0.5 * (w.sec_per_point + per)
        elif kind == "result":
            for k, values in zip(msg[1], msg[2], strict=True):
                w.inflight.discard(k)
                yield Outcome(k, values)
        elif kind == "error":
            for k in msg[1]:
                w.inflight.discard(k)
                yield from self._failed_try(k, msg[2], retry, tries, errors)

    def _failed_try(self, k: int, error: str, retry, tries, errors) -> Iterator[Outcome]:
        tries[k] += 1
        errors[k] = error
        if tries[k] > self.retries:
            yield Outcome(k, None, error)
        else:
            retry.append(k)

    def _lost(self, w: _Worker, retry, tries, errors) -> Iterator[Outcome]:
        code = w.proc.exitcode
        w.proc.join(timeout=1)
        w.conn.close()
        lost, w.inflight = sorted(w.inflight), set()
        w.proc = None
        for k in lost:
            yield from self._failed_try(
                k, f"worker {w.slot} died (exit code {code})", retry, tries, errors
            )
        if not w.ready and self.restarts_left == 0:
            return
        if self.restarts_left > 0:
            self.restarts_left -= 1
            self.restarted += 1
            self._start(w)

    def close(self) -> None:
        """Stop every worker: ask, then terminate what does not stop within a few seconds."""
        for w in self.workers:
            if w.proc is not None and w.conn is not None:
                with contextlib.suppress(OSError, BrokenPipeError):
                    w.conn.send(None)
        deadline = time.monotonic() + 3.0
        for w in self.workers:
            if w.proc is None:
                continue
            w.proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.terminate()
                w.proc.join(timeout=2)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()
            w.proc = None


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (a TUI worker): nothing to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
