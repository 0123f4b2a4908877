"""Seconds per grid point at the batch size ``data.batch_size = "auto"`` chooses, against the
best-batch floor, paired in one process as ``bench_surface.py`` pairs ours with its floor:

    python benchmarks/bench_batch.py --case mlp      # digits MLP, embedded data
    python benchmarks/bench_batch.py --case cnn      # digits CNN
    python benchmarks/bench_batch.py --case charlm   # the byte transformer, causal_lm user loss
    python benchmarks/bench_batch.py --case resnet56 --device cuda   # 10,000 CIFAR-shaped

Ours is ``Landscape.evaluate_many`` (the work of one point of ``tui-landscape compute``: the
model moved, every split's loss and metrics summed), once with ``data.batch_size = "auto"``
(its probe timed as the run would, for ``--run-points`` points) and once at the old fixed
1024. The floor is the plain forward pass (the loss function itself for charlm) over the same
data at its best batch size: every candidate size (powers of two up to the data's length, and
the length) timed first, the fastest per point kept. Then per point ours-auto, ours-1024,
ours at the floor's best size (what ours costs beyond the forward pass: the loss and metrics,
the weights moved), the floor, and for a classifier a plain evaluation loop at the floor's
size (the forward pass, ``F.cross_entropy`` and an argmax per batch, read once a point: the
loss and accuracy math that the floor leaves out) run back to back, alternating which goes
first, and each ratio is the median over the pairs: drift of a shared machine hits all alike. Ours
evaluates its points as the command line does, ``compute.points_per_batch`` (K) at a time,
so a pair is a group of points (the largest K of the three), each side's seconds per point
over that group. ``--cli`` adds the command line's own marginal cost per point
(``cli_per_point``: the whole run, the file's journal and the progress bar included) against
the floor's sweep at its best size.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_surface import grid_points, sync

CASES = {
    # 96 digits points: 12 pairs where ours takes 8 points a call
    "mlp": {"arch": "digits_mlp", "dataset": "digits", "points": 96},
    "cnn": {"arch": "digits_cnn", "dataset": "digits", "points": 96},
    "charlm": {"arch": "char_transformer", "dataset": "charlm", "n": 256, "points": 9},
    "resnet56": {"arch": "resnet56", "dataset": "fake", "n": 10000, "points": 9},
}


def splits_of(case: str, tiny: bool):
    from engine.config import load_config
    from engine.data import digits_splits, load_splits
    from engine.splits import Split

    spec = CASES[case]
    if spec["dataset"] == "digits":
        splits = digits_splits()
        return {k: Split(s.x[:16], s.y[:16]) for k, s in splits.items()} if tiny else splits
    n = 16 if tiny else spec["n"]
    if spec["dataset"] == "charlm":
        sets = ["data.dataset=charlm", f"data.subset={n}", "data.loss=causal_lm"]
        return load_splits(load_config(None, sets).data)
    return {"train": Split(*fake_cifar(n).tensors)}


def fake_cifar(n: int = CASES["resnet56"]["n"]):
    """``n`` CIFAR-shaped images, normalised, and labels (also the command line's data set,
    ``data.dataset = "benchmarks/bench_batch.py:fake_cifar"``)."""
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    x = (torch.randint(0, 256, (n, 3, 32, 32), generator=g).float() / 255 - 0.5) / 0.25
    return TensorDataset(x, torch.randint(0, 10, (n,), generator=g))


def landscape(case: str, splits, device, batch: str, run_points: int):
    from engine.config import load_config
    from engine.directions import DirectionSet, random_direction
    from engine.landscape import Landscape
    from engine.models import build_model

    model = build_model(CASES[case]["arch"], seed=0).eval()
    g = torch.Generator().manual_seed(0)
    dx = random_direction(model, "weights", "filter", "biasbn", g)
    dy = random_direction(model, "weights", "filter", "biasbn", g)
    sets = [f"data.batch_size={batch}", "data.splits=" + str(sorted(splits))]
    sets += ["data.loss=causal_lm"] if case == "charlm" else []
    cfg = load_config(None, sets)
    land = Landscape(model, splits, DirectionSet(dx, dy, "weights"), cfg, device)
    if batch != "auto":
        # The splits were loaded once, at the default size: a given batching keeps its own
        # batches, so re-slice them to this size, as loading them at it would have.
        land.use_batch_size(int(batch))
    t = time.perf_counter()
    land.check(run_points)
    return land, time.perf_counter() - t


def cli_per_point(case: str, device, grids: tuple[int, int] = (6, 16), reps: int = 3) -> float:
    """The command line's marginal seconds per point: ``engine.run.prepare(...)`` then
    ``run_with_progress`` (what ``tui-landscape compute`` runs, in this process, its output
    swallowed) on grids of ``grids[0]**2`` and ``grids[1]**2`` points, in turns, the fastest
    of each kept; the difference of the two over the difference in points, so the start (the
    model, data, directions, checks) cancels. A first run fills the batch-size cache."""
    import contextlib
    import io
    import tempfile

    from engine.config import load_config
    from engine.run import prepare
    from tui_landscape.cli.common import run_with_progress

    spec = CASES[case]
    sets = [f"model.arch={spec['arch']}", "model.checkpoint=", f"compute.device={device}"]
    sets += ["directions.kind=random", "directions.norm=filter", "directions.ignore=biasbn"]
    if spec["dataset"] == "charlm":
        sets += ["data.dataset=charlm", f"data.subset={spec['n']}", "data.loss=causal_lm"]
    elif spec["dataset"] == "fake":
        sets += [f"data.dataset={Path(__file__).resolve()}:fake_cifar", "data.splits=['train']"]
    else:
        sets += [f"data.dataset={spec['dataset']}"]
    best = {g: math.inf for g in grids}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        for r in range(reps + 1):
            for g in grids if r % 2 else grids[::-1]:
                cfg = load_config(None, [*sets, f"grid.x=-1:1:{g}", f"grid.y=-1:1:{g}"])
                t = NOW[0]()
                run_with_progress(prepare(cfg, Path(tmp) / f"g{g}-{r}.h5"))
                if r:  # the first round fills the cache
                    best[g] = min(best[g], NOW[0]() - t)
    (a, b) = grids
    return (best[b] - best[a]) / (b * b - a * a)


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
NOW = [time.perf_counter]  # --clock: cpu (this process's CPU seconds) on a loaded machine


def floor_at(land, device):
    """A function of (a, b, size): the plain pass over the same data at batch ``size``."""
    from engine.autobatch import rebatch
    from engine.evaluate import autocast

    if land.fused:
        x = land.all.x

        def calls(size: int) -> None:
            for i in range(0, len(x), size):
                land.model(x[i : i + size])
    else:
        given = {k: tuple(s) for k, s in land.splits.items()}
        sized: dict[int, list] = {}

        def calls(size: int) -> None:
            if size not in sized:
                sized[size] = [rebatch(b, size) or b for b in given.values()]
            for batches in sized[size]:
                for batch in batches:
                    land.loss.fn(land.model, batch)

    if land.fused:
        y = land.all.y

        def loop(size: int) -> None:
            # What a user's plain evaluation loop does beyond the forward pass: the loss and
            # the accuracy of every batch, summed on the device and read once.
            loss = correct = 0
            for i in range(0, len(x), size):
                out = land.model(x[i : i + size])
                loss = loss + F.cross_entropy(out, y[i : i + size], reduction="sum")
                correct = correct + (out.argmax(1) == y[i : i + size]).sum()
            float(loss), int(correct)
    else:
        loop = calls  # a user loss's floor is the loss function itself already

    @torch.inference_mode()
    def floor(a: float, b: float, size: int, plain: bool = False) -> float:
        land.perturbation.set(a, b)  # the same weights as ours; setting them is not timed
        sync(device)
        t = NOW[0]()
        with autocast(device.type, land.precision):
            (loop if plain else calls)(size)
        sync(device)
        return NOW[0]() - t

    return floor


def timed(land, device, group) -> float:
    """Seconds per point of ``land`` over ``group``, K points a call as the command line."""
    k = land.points_per_batch
    sync(device)
    t = NOW[0]()
    for i in range(0, len(group), k):
        land.evaluate_many(group[i : i + k])
    sync(device)
    return (NOW[0]() - t) / len(group)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--case", choices=sorted(CASES), default="mlp")
    p.add_argument("--device", default="cpu")
    p.add_argument("--points", type=int, help="grid points timed (default: 96 digits, 9 others)")
    p.add_argument("--run-points", type=int, default=441, help="the run the probe is sized for")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--tiny", action="store_true", help="smoke run: 16 samples a split")
    p.add_argument(
        "--cli",
        action="store_true",
        help="also the command line's marginal cost per point (prepare and run on two grids)",
    )
    p.add_argument(
        "--clock",
        choices=sorted(CLOCK),
        default="wall",
        help="wall, or cpu: this process's CPU time (with --threads 1, on a machine shared by "
        "other work; the probe itself always reads the wall clock)",
    )
    args = p.parse_args()
    NOW[0] = CLOCK[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    points = grid_points(args.points or CASES[args.case]["points"])
    splits = splits_of(args.case, args.tiny)
    auto, probe_s = landscape(args.case, splits, device, "auto", args.run_points)
    fixed, _ = landscape(args.case, splits, device, "1024", args.run_points)
    floor = floor_at(fixed, device)
    from engine.autobatch import candidates

    n = len(auto.all) if auto.fused else max(len(s) for s in splits.values())
    sweep = {}
    for size in candidates(n):
        floor(0.0, 0.0, size)  # warm-up at this shape
        sweep[size] = min(floor(0.0, 0.0, size) for _ in range(5))
    best = min(sweep, key=sweep.get)
    at_best, _ = landscape(args.case, splits, device, str(best), args.run_points)
    g = max(land.points_per_batch for land in (auto, fixed, at_best))
    groups = [points[i : i + g] for i in range(0, len(points), g)]
    for land in (auto, fixed, at_best):
        timed(land, device, groups[0])  # warm-up

    def floor_per_point(group, plain: bool = False) -> float:
        return sum(floor(*pt, best, plain) for pt in group) / len(group)

    rows = {"auto": [], "1024": [], "best": [], "floor": [], "loop": []}
    for i, group in enumerate(groups):
        order = [("auto", auto), ("1024", fixed), ("best", at_best), ("floor", None),
                 ("loop", None)]  # fmt: skip
        for name, land in order if i % 2 == 0 else order[::-1]:
            rows[name].append(
                floor_per_point(group, name == "loop")
                if land is None
                else timed(land, device, group)
            )
    med = {k: statistics.median(v) for k, v in rows.items()}
    ratio = {
        k: statistics.median(o / f for o, f in zip(rows[k], rows["floor"], strict=True))
        for k in ("auto", "1024", "best", "loop")
    }
    load = os.getloadavg()
    print(
        f"case {args.case} on {device}, torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads, {args.clock} clock, {len(points)} points in {len(groups)} pairs, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"auto: {auto.batch_choice.detail()} (check with probe {probe_s:.2f} s)")
    kk = {name: land.points_per_batch for name, land in (("auto", auto), ("1024", fixed),
                                                          ("best", at_best))}  # fmt: skip
    print("points per batch (K, 'auto'): " + ", ".join(f"{k}: {v}" for k, v in kk.items()))
    print(
        "floor sweep, ms per point: " + ", ".join(f"{b}: {t * 1e3:.2f}" for b, t in sweep.items())
    )
    print(f"best-batch floor at {best}: {med['floor'] * 1e3:.2f} ms per point")
    print(f"ours, auto ({auto.batch_size}): {med['auto'] * 1e3:.2f} ms per point, "
          f"{ratio['auto']:.2f}x the floor (median of per-point ratios)")  # fmt: skip
    print(f"ours, fixed 1024: {med['1024'] * 1e3:.2f} ms per point, "
          f"{ratio['1024']:.2f}x the floor")  # fmt: skip
    print(f"ours at the floor's best size {best}: {med['best'] * 1e3:.2f} ms per point, "
          f"{ratio['best']:.2f}x the floor (ours' own work beyond the forward pass)")  # fmt: skip
    if fixed.fused:
        vs_loop = statistics.median(
            a / lp for a, lp in zip(rows["auto"], rows["loop"], strict=True)
        )
        print(f"a plain loop at {best} (forward, cross-entropy and argmax per batch): "
              f"{med['loop'] * 1e3:.2f} ms per point, {ratio['loop']:.2f}x the floor; "
              f"ours, auto: {vs_loop:.2f}x the plain loop")  # fmt: skip
    if args.cli and not args.tiny:
        cli = cli_per_point(args.case, args.device)
        print(f"the command line, marginal over grids of 36 and 256 points (fastest of 3): "
              f"{cli * 1e3:.2f} ms per point, {cli / sweep[best]:.2f}x the floor's sweep at "
              f"{best} ({sweep[best] * 1e3:.2f} ms, fastest of 5)")  # fmt: skip
    assert np.isfinite(med["auto"])


if __name__ == "__main__":
    main()
