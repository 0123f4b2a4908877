"""``data.batch_size = "auto"``: the evaluation batch size chosen by measurement.

Before the grid starts, ``probe`` times candidate sizes (powers of two up to the data's
length, then the length) at the centre on the real evaluation path, and takes the fastest per
sample. It climbs from 1, so that an out-of-memory error (``torch.OutOfMemoryError``, CUDA's)
ends the climb: the memory is freed and the sizes below, which fitted, remain. It stops once
three sizes in a row (from 64 on) were slower than the best by 10%, or before it would pass
its budget: about 2% of the estimated run or 2 seconds, whichever is larger; then the best
few (and any size within 2x of the fastest) are timed again on whole passes, in turns, and
the fastest whole pass decides. A run of a few points does not probe.

``compute.points_per_batch = "auto"`` (how many grid points are evaluated together) is
``engine.points_per_batch``.

The choice is cached per model, input shape, device, precision and loss in the cache folder
(``engine.recipes.cache_dir``), so the next run starts at once; a damaged or foreign entry
is ignored. Workers whose devices are alike find one entry: the first to take the entry's
lock probes, the others wait for it and read what it wrote.

The size changes no grid point and no point's identity: losses are float32 per sample and
summed in float64, so two sizes differ only by the float32 rounding of the forward pass
itself (kernels pick other blockings for other shapes): a few units in the 7th digit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from engine.batching import rebatch
from engine.config import DEFAULT_BATCH
from engine.errors import describe
from engine.jsonfile import read_json

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BATCH",
    "FEW_POINTS",
    "BatchChoice",
    "cache_key",
    "cached_choice",
    "candidates",
    "choose_batch",
    "probe",
    "probe_budget",
    "probe_lock",
    "store_choice",
]

FEW_POINTS = 8  # a run of at most this many points does not probe
BUDGET_SHARE, BUDGET_FLOOR_S = 0.02, 2.0  # the probe's bound: 2% of the run or 2 s
_WORSE_IN_A_ROW = 3  # sizes slower than the best, one after another, that end the climb
_REPS, _MAX_REPS, _MIN_TIMED_S = 3, 20, 0.02  # timings of one size: at least 3, or 20 ms
_SLOWER, _CLIMB_TO, _ROUNDS = 1.1, 64, 2  # what counts as slower; the least size climbed to
_TIE = 1.05  # sizes this close to the fastest count as fast: the largest of them is taken
_PASS_ROUNDS = 5  # whole passes timed per finalist size (the first also warms its last batch)
_NEAR, _MAX_FINALISTS = 2.0, 6  # whole passes also for sizes within 2x of the fastest, 6 at most
_CACHE_VERSION = 2  # 2: chosen on whole passes


@dataclass(frozen=True)
class BatchChoice:
    """The evaluation batch size, how it was found, and the probe's figures (size, seconds
    per sample) where it ran."""

    size: int
    how: str  # "given" (an integer), "probe", "cache", "default" (no probe), "pool"
    figures: tuple[tuple[int, float], ...] = ()
    seconds: float = 0.0  # the probe's own time
    stopped: str = ""  # why the climb ended: "slower", "budget", "out of memory", "all sizes"
    passes: tuple[tuple[int, float], ...] = ()  # (size, seconds per sample) of whole passes

    def line(self) -> str:
        """One line for people: the size and what the probe saw."""
        if self.how == "given":
            return f"batch size {self.size}"
        if self.how == "cache":
            return f"batch size {self.size} (auto, cached)"
        if self.how == "default":
            return f"batch size {self.size} (auto, not probed: {self.stopped})"
        if self.how == "pool":
            return "batch size auto (each worker probes, or reads the cache)"
        # The three fastest of what decided (whole passes where they ran), fastest first:
        # every size's figures made a line that wrapped four times (``detail``, with -v).
        top = sorted(self.passes or self.figures, key=lambda f: f[1])[:3]
        us = ", ".join(f"{b}: {t * 1e6:.3g}" for b, t in top)
        why = f", stopped: {self.stopped}" if self.stopped in ("budget", "out of memory") else ""
        return (
            f"batch size {self.size} (auto, {len(self.figures)} sizes probed in "
            f"{self.seconds:.2f} s{why}; us/sample {us})"
        )

    def detail(self) -> str:
        """Every figure of the probe: each size's few batches, then the whole passes."""
        us = ", ".join(f"{b}: {t * 1e6:.3g}" for b, t in self.figures)
        whole = ", ".join(f"{b}: {t * 1e6:.3g}" for b, t in self.passes)
        return (
            f"batch size {self.size} ({self.how}: fastest per sample of {len(self.figures)} "
            f"sizes in {self.seconds:.2f} s, {self.stopped}; us/sample {us}"
            + (f"; whole passes {whole})" if whole else ")")
        )

    def provenance(self) -> str:
        """The text stored with the surface file."""
        if self.how == "given":
            return str(self.size)
        if self.how == "pool":
            return "auto (per worker)"
        return f"{self.size} (auto, {self.how})"


def candidates(n: int) -> list[int]:
    """Powers of two below ``n``, then ``n`` itself (one batch of everything)."""
    sizes = [1 << k for k in range(max(1, n).bit_length()) if 1 << k < n]
    return [*sizes, max(1, n)]


def probe_budget(points: int, sec_per_point: float) -> float:
    """The most seconds a probe may take for ``points`` points of ``sec_per_point`` each."""
    return max(BUDGET_FLOOR_S, BUDGET_SHARE * points * sec_per_point)


def probe(
    run: Callable[[int], int],
    n: int,
    points: int,
    *,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    whole: Callable[[int], int] | None = None,
) -> BatchChoice:
    """Time ``run(b)`` (one pass of the real evaluation at batch size ``b`` over a few batches,
    synchronised; it returns the samples it saw) for the candidate sizes of ``n`` samples a
    point, and choose the fastest per sample. ``points`` sizes the budget (``probe_budget``)
    unless ``budget_s`` is given.

    The climb is followed, budget allowing, by rounds over the best size, its neighbours and
    the runner-up: one timing taken while another process ran must not decide. With
    ``whole(b)`` (a point's whole pass at size ``b``), those rounds time whole passes, and
    the fastest whole pass decides: a pass's calls and its partial last batch, which a few
    batches do not show (the digits CNN: 256 and 512 timed alike on two batches, a point
    was 1.16x slower at 256)."""
    t0 = clock()
    per: dict[int, float] = {}  # size -> fastest seconds per sample seen
    cost: dict[int, float] = {}  # size -> seconds its last measurement took
    stopped, worse = "all sizes", 0
    failed: dict[int, Exception] = {}  # sizes whose pass raised (not for memory): excluded

    def fits(b: int, guess: float | None = None) -> bool:
        """Whether measuring ``b`` (its cost ``guess``, else guessed from the last size's)
        keeps the bound."""
        if not per:
            return True
        best_t = min(per.values())
        budget = budget_s if budget_s is not None else probe_budget(points, best_t * n)
        last = next(reversed(cost))
        if guess is None:
            guess = cost.get(b, cost[last] * min(n, 2 * b) / min(n, 2 * last))
        return clock() - t0 + guess <= budget

    def measure(b: int, warm: bool) -> None:
        nonlocal t0
        start = clock()
        if warm:
            run(b)  # first-call allocations, kernels chosen for the new shape
            if not per:  # the process's first pass (thread pools, lazy init) is the run's cost
                t0 += clock() - start
                start = clock()
        # The fastest of a few timings: another process's work only ever adds time.
        timed, reps = 0.0, 0
        while reps < _REPS or (timed < _MIN_TIMED_S and reps < _MAX_REPS):
            t = clock()
            seen = run(b)
            dt = clock() - t
            per[b] = min(per.get(b, math.inf), dt / max(1, seen))
            timed, reps = timed + dt, reps + 1
        cost[b] = clock() - start

    for b in candidates(n):
        if not fits(b):
            stopped = "budget"
            break
        try:
            measure(b, warm=True)
        except torch.OutOfMemoryError:
            free_memory()
            stopped = "out of memory"
            if not per:  # the smallest size does not fit: nothing will
                raise
            break
        except Exception as e:  # a size the model cannot take (a squeeze at batch 1): not one
            failed.setdefault(b, e)
            continue
        # Slower only by a margin, and never below CLIMB_TO: under another process's load a
        # small size's timing can read several times too slow, and stopping there is costly.
        worse = worse + 1 if per[b] > _SLOWER * min(per.values()) else 0
        if worse >= _WORSE_IN_A_ROW and b >= _CLIMB_TO:
            stopped = "slower"
            break

    def finalists(within: float = 0.0) -> list[int]:
        """The best three and the best's neighbours; and every size within ``within`` times
        the fastest, fastest first (a few batches misjudged the digits CNN's 1024 by 1.7x)."""
        sizes = sorted(per, key=per.get)
        order = list(per)
        k = order.index(sizes[0])
        near = [b for b in sizes if per[b] <= within * per[sizes[0]]][:_MAX_FINALISTS]
        return list(dict.fromkeys([*sizes[:3], *order[max(0, k - 1) : k + 2], *near]))

    passes: dict[int, float] = {}  # size -> fastest seconds per sample of a whole pass
    if whole is not None and per:
        sizes = finalists(_NEAR)
        for _ in range(_PASS_ROUNDS):  # in turns, so that a burst of load hits different sizes
            for b in list(sizes):
                if not fits(b, passes.get(b, per[b]) * n * 1.2):
                    continue
                t = clock()
                try:
                    seen = whole(b)
                except torch.OutOfMemoryError:  # a pass's own shapes (its last batch)
                    free_memory()
                    sizes.remove(b)
                    passes.pop(b, None)
                    continue
                except Exception as e:  # its partial last batch (of 1, say) raised
                    sizes.remove(b)
                    passes.pop(b, None)
                    per.pop(b, None)
                    failed.setdefault(b, e)
                    continue
                passes[b] = min(passes.get(b, math.inf), (clock() - t) / max(1, seen))
    for b, e in failed.items():
        log.info("batch size %d not usable: %s", b, describe(e))
    if not per:  # the run's own points will say why, in their one line
        why = f"every size failed, {describe(next(iter(failed.values())))}"
        return BatchChoice(min(DEFAULT_BATCH, n), "default", stopped=why)
    if passes:
        best = min(passes, key=passes.get)
    else:
        for _ in range(_ROUNDS):
            for b in finalists():
                if fits(b):
                    measure(b, warm=False)
        # Of sizes within 5% of the fastest, the largest: a pass makes fewer calls at it,
        # which the probe's few batches do not see.
        fastest = min(per.values())
        best = max(b for b, t in per.items() if t <= _TIE * fastest)
    figures = tuple(per.items())
    return BatchChoice(best, "probe", figures, clock() - t0, stopped, tuple(passes.items()))


HEAD_SAMPLES = 4096  # the most samples of a given batching (streamed ones too) probed


def choose_batch(land: Any, points: int | None) -> BatchChoice:
    """For ``engine.landscape.Landscape`` ``land`` (checked, at the centre): the cached size
    for its model, data, device, precision and loss, else the probe's (then cached); the
    fixed size, unprobed, for a run of at most ``FEW_POINTS`` points."""
    run, whole, n, shape = _runner(land)
    if run is None:  # a batching that cannot be re-sliced: sizes would all time the same
        return BatchChoice(land.batch_size, "default", stopped="batches that do not re-slice")
    key = cache_key(
        model=model_signature(land.model),
        input=shape,
        samples=n,
        device=device_signature(land.device),
        dtype=f"{next(land.model.parameters()).dtype}, autocast {land.precision}",
        loss=land.loss.name,
        fused=land.fused,
        channels_last=land.channels_last,
        compiled=land.forward is not land.model,
    )
    hit = cached_choice(key, n)
    if hit is not None:
        return hit
    if points is not None and points <= FEW_POINTS:
        return BatchChoice(min(land.batch_size, n), "default", stopped=f"{points} points")
    with probe_lock(key):
        hit = cached_choice(key, n)  # an alike worker probed while this one waited
        if hit is not None:
            return hit
        # One CPU thread: this process's CPU time, which other processes' load does not
        # inflate (on a shared 2-core machine wall-clock timings of a size varied 3x).
        one = land.device.type == "cpu" and torch.get_num_threads() == 1
        clock = time.process_time if one else time.perf_counter
        choice = probe(run, n, points if points is not None else 0, clock=clock, whole=whole)
        top = max((b for b, _ in choice.figures), default=0)
        if choice.stopped == "budget" and top < min(_CLIMB_TO, n):
            # Cut before it could see where sizes stop paying (a slow model, a loaded machine):
            # not a tiny size on that evidence, but the fixed one.
            choice = replace(choice, size=min(DEFAULT_BATCH, n), how="default",
                             stopped=f"the probe's budget ended at size {top}")  # fmt: skip
        # Kept whatever it found: the next run (a resume, the command line after the app)
        # evaluates at the same size, so their numbers agree to the last bit.
        store_choice(key, choice)
    log.debug("%s", choice.detail() if choice.figures else choice.line())
    return choice


Runner = Callable[[int], int]


def _runner(land: Any) -> tuple[Runner | None, Runner | None, int, list]:
    """``probe``'s ``run`` and ``whole`` on ``land``'s real evaluation path, the samples of
    one pass over its largest split (all splits, joined, when fused; of a given batching,
    its first ``HEAD_SAMPLES``), and the input's shape for the key."""
    from engine.evaluate import loss_sums, per_sample, read_sums, segment_stats, stats_of

    if land.fused:
        x, y = land.all.x, land.all.y

        at = [0]  # where the next timing starts: each reads other samples, as a pass does,
        # not the same ones again from a warm cache (that favoured small sizes on CPU)

        def run_fused(b: int) -> int:
            m = min(len(y), 2 * b)
            i = at[0] if at[0] + m <= len(y) else 0
            at[0] = i + m
            xs, ys = x[i : i + m], y[i : i + m]
            stats_of(*per_sample(land.forward, xs, ys, b, land.loss.builtin, land.precision))
            return m

        def whole_fused(b: int) -> int:  # a point's pass, as Landscape._pass makes it
            per = per_sample(land.forward, x, y, b, land.loss.builtin, land.precision)
            segment_stats(*per, land.counts)
            return len(y)

        return run_fused, whole_fused, len(y), [*x.shape[1:], str(x.dtype)]
    name = max(land.splits, key=lambda k: len(land.splits[k]))
    split = land.splits[name]
    if getattr(split, "loader", None) is not None and split.loader_at is None:
        return None, None, len(split), []  # a DataLoader given as it is: its own batching
    head: list[Any] = []
    seen = 0
    # (input, label) tensors are sliced as the loss function will get them; Batches iterate.
    it = iter(
        split if hasattr(split, "batches") else [(split.x[:HEAD_SAMPLES], split.y[:HEAD_SAMPLES])]
    )
    try:
        for batch in it:  # a streamed split's first batches, held for the probe only
            head.append(batch)
            seen += _count(batch)
            if seen >= HEAD_SAMPLES:
                break
    finally:
        getattr(it, "close", lambda: None)()
    sized: dict[int, tuple[Any, ...]] = {}

    def loss_pass(b: int, batches: int | None) -> int:
        if b not in sized:
            sized[b] = rebatch(tuple(head), b) or tuple(head)
        land._guard.before()
        try:
            sums, samples = loss_sums(
                land.loss, land.forward, sized[b][:batches], land.device_type, land.precision
            )
            read_sums(sums, land.loss.name)
        finally:
            land._undo_loss_changes()
        return samples

    if not head or rebatch(tuple(head[:2]), 1) is None:
        return None, None, len(split), []
    shape = [[*t.shape[1:], str(t.dtype)] for t in _tensors(head[0])]
    return lambda b: loss_pass(b, 2), lambda b: loss_pass(b, None), min(len(split), seen), shape


def _tensors(batch: Any) -> list[torch.Tensor]:
    from torch.utils._pytree import tree_flatten

    return [v for v in tree_flatten(batch)[0] if isinstance(v, torch.Tensor)]


def _count(batch: Any) -> int:
    return max((len(t) for t in _tensors(batch) if t.dim()), default=1)


def free_memory() -> None:
    """Give cached CUDA blocks back after an out-of-memory error (a no-op elsewhere)."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- the cache ---------------------------------------------------------------------------


def device_signature(device: torch.device) -> str:
    """What makes two devices alike for a batch size: the GPU's name, or the CPU's threads."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu:{torch.get_num_threads()} threads"
    return device.type


def model_signature(model: torch.nn.Module) -> str:
    """The model's class and its tensors' names, shapes and dtypes (not their values)."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, t in model.state_dict().items():
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
    return h.hexdigest()[:16]


def cache_key(**parts: Any) -> dict[str, Any]:
    """The entry's key: the given parts (model, input shape, device, dtype, loss, ...) and
    the torch version, as plain JSON values."""
    return json.loads(json.dumps({**parts, "torch": torch.__version__}, sort_keys=True))


def _entry_path(key: dict[str, Any]) -> Path | None:
    """The entry's file; None where there is no cache folder (no home: each run probes)."""
    from engine.errors import ConfigError
    from engine.recipes import cache_dir  # the cache folder's one rule; heavy imports there

    try:
        folder = cache_dir()
    except ConfigError as e:  # a traceback in every run with 'auto', before
        _report_once(f"batch sizes are not cached: {e}")
        return None
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return folder / "batch-size" / f"{digest}.json"


_MAX_ENTRY_BYTES = 1 << 16  # an entry is about 1 kB; a larger file is not one of ours
_reported: set[str] = set()  # what was reported (each once a process: workers ask twice)


def _report_once(message: str) -> None:
    if message not in _reported:
        _reported.add(message)
        log.info("%s", message)


def _figures(raw: Any) -> tuple[tuple[int, float], ...]:
    """An entry's ``figures`` as (size, seconds per sample) pairs; anything else raises."""
    pair = lambda f: isinstance(f, list) and len(f) == 2 and type(f[0]) is int  # noqa: E731
    if not isinstance(raw, list) or not all(pair(f) and type(f[1]) in (int, float) for f in raw):
        raise ValueError("its figures are not (size, seconds) pairs")
    return tuple((b, float(t)) for b, t in raw)


def cached_choice(key: dict[str, Any], n: int) -> BatchChoice | None:
    """The cached size for ``key``, or None when there is none, or it is damaged or not
    this key's (a hash collision, another version), or does not fit ``n`` samples. An ignored
    entry is reported once, at info level; the next probe replaces it."""
    path = _entry_path(key)
    if path is None:
        return None
    try:
        entry = read_json(path, _MAX_ENTRY_BYTES)
        if not isinstance(entry, dict):
            raise ValueError(f"not a JSON object but {type(entry).__name__}")
        if entry.get("version") != _CACHE_VERSION or entry.get("key") != key:
            raise ValueError("another version's or another key's")
        size = entry.get("size")
        if type(size) is not int or not 1 <= size <= max(1, n):
            raise ValueError(f"its size {str(size)[:20]} is not an integer in 1..{max(1, n)}")
        figures = _figures(entry.get("figures", []))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:  # read_json names each fault as one of these
        _report_once(f"ignoring the batch-size cache entry {path}: {e}")
        return None
    return BatchChoice(size, "cache", figures)


def store_choice(key: dict[str, Any], choice: BatchChoice) -> None:
    """Write ``choice`` for ``key`` (atomically; a cache that cannot be written is skipped)."""
    path = _entry_path(key)
    if path is None:
        return
    entry = {
        "version": _CACHE_VERSION,
        "key": key,
        "size": choice.size,
        "figures": [list(f) for f in choice.figures],
        "stopped": choice.stopped,
    }
    # A temporary file of its own (O_EXCL): one named by the process id was shared by two
    # threads (two runs in the app), or by two containers' processes of one id on one cache
    # volume, and one of them failed or replaced the entry with a mix of both.
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(".tmp", path.stem + ".", path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(entry, indent=1))
        os.chmod(tmp, 0o644)  # as the lock file: mkstemp's 0600 hid it from a shared cache
        os.replace(tmp, path)
    except OSError as e:
        log.info("could not write the batch-size cache %s: %s", path, e)
        with contextlib.suppress(OSError, TypeError):
            os.unlink(tmp)  # not left behind where the entry could not replace (a folder there)


LOCK_WAIT_S = 120.0  # the longest a worker waits for another's probe before probing itself


@contextlib.contextmanager
def probe_lock(key: dict[str, Any], wait_s: float = LOCK_WAIT_S) -> Iterator[bool]:
    """Hold the entry's lock file while probing (True), so that alike workers probe once;
    False where it cannot be had within ``wait_s`` or locks are unavailable (no fcntl)."""
    try:
        import fcntl
    except ImportError:  # Windows: each worker probes
        yield False
        return
    from engine.formats.constants import LOCK_SUFFIX

    entry = _entry_path(key)
    if entry is None:
        yield False
        return
    path = entry.with_suffix(LOCK_SUFFIX)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not through a link: one planted in a shared cache made this create its target.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError:
        yield False
        return
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.05)  # polling the lock of another process's probe
            except OSError as e:  # a file system without locks (NFS without its lock daemon)
                log.info("no lock on the batch-size cache %s (%s): probing unlocked", path, e)
                yield False
                return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
