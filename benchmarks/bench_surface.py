"""Seconds per grid point: ours against the floor, the reference's algorithm and loss-landscapes.

One command per case, all methods on the same model, data, batch size and grid points, in
the same run:

    python benchmarks/bench_surface.py --case digits               # digits CNN, embedded data
    python benchmarks/bench_surface.py --case resnet20             # ResNet-20, 2,000 CIFAR-shaped
    python benchmarks/bench_surface.py --case resnet56 --device cuda   # 10,000 images, on a GPU
    python benchmarks/bench_surface.py --case resnet20 --tiny      # a smoke run for the tests
    python benchmarks/bench_surface.py --case charlm --methods ab  # a user loss on dict batches

Methods: (a) ours (``engine.landscape.Landscape``: tensors moved in place, data on the device once,
loss and accuracy of every split in one pass); (b) the floor, one plain ``model(x)`` pass over
the same data in eval and inference mode at the same batch size; (c) the reference's algorithm
written naively here: per point the weights are set from CPU copies of the directions and a
DataLoader runs a per-sample ToTensor/Normalize transform over uint8 images, with a ``.item()``
per batch; (d) ``loss_landscapes.random_plane`` (``pip install loss-landscapes``), which
evaluates loss only, on the same data given as one batch.

(a)+(b), (c) and (d) each run in a process of their own (their peak memory is measured
before anything else is built there). The ratios are paired: in each of those processes ours
runs beside the baseline on its own model, point by point (K points at a time where ours
batches K; a plane at a time for (d)), alternating which goes first, and a ratio is the median
over the pairs. Timings of separate processes on a shared
virtual machine drifted by 1.5x within minutes; pairs taken a few milliseconds apart do not.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# points: the default number of grid points timed; more where a point takes milliseconds,
# so that the median over pairs is steady.
CASES = {
    "digits": {"arch": "digits_cnn", "n": None, "batch": 1024, "points": 49},
    "resnet20": {"arch": "resnet20", "n": 2000, "batch": 500, "points": 9},
    "resnet56": {"arch": "resnet56", "n": 10000, "batch": 1000, "points": 9},
    # A user loss on dict batches: the byte-level transformer of charlm_2d.toml with the
    # causal_lm loss; its floor is the loss function itself over the same batches.
    "charlm": {"arch": "char_transformer", "n": 256, "batch": 128, "points": 9},
}
# --tiny: a smoke run (every method end to end in seconds, its figures meaningless): a few
# images in two batches per split, planes of 2x2 points, two pairs of planes for (d).
TINY_IMAGES, TINY_BATCH = 16, 8
LOSS = {"charlm": "causal_lm"}  # cases whose loss is a function called per batch
METHODS = {"a": "ours", "b": "floor", "c": "reference algorithm", "d": "loss-landscapes"}


def setup(case: str, tiny: bool):
    """Model, splits (normalised float tensors) and the same data as uint8 images."""
    from engine.data import digits_splits
    from engine.models import build_model
    from engine.splits import Split

    spec = CASES[case]
    model = build_model(spec["arch"], seed=0).eval()
    bs = TINY_BATCH if tiny else spec["batch"]
    if case in LOSS:
        from engine.config import load_config
        from engine.data import load_splits

        n = TINY_IMAGES if tiny else spec["n"]
        sets = [f"data.dataset={case}", f"data.subset={n}", f"data.batch_size={bs}"]
        cfg = load_config(None, [*sets, f"data.loss={LOSS[case]}"])
        return model, load_splits(cfg.data), None, None, bs
    if spec["n"] is None:
        splits = digits_splits()
        if tiny:
            splits = {k: Split(s.x[:TINY_IMAGES], s.y[:TINY_IMAGES]) for k, s in splits.items()}
        images = {
            k: (s.x * 0.3763 + 0.3052).mul(255).clamp(0, 255).byte() for k, s in splits.items()
        }
    else:
        n = TINY_IMAGES if tiny else spec["n"]
        g = torch.Generator().manual_seed(0)
        images = {"train": torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)}
        labels = torch.randint(0, 10, (n,), generator=g)
        splits = {"train": Split((images["train"].float() / 255 - 0.5) / 0.25, labels)}
    labels = {k: s.y for k, s in splits.items()}
    return model, splits, images, labels, bs


def grid_points(k: int) -> list[tuple[float, float]]:
    side = max(2, int(np.ceil(np.sqrt(k))))
    pts = [(a, b) for b in np.linspace(-1, 1, side) for a in np.linspace(-1, 1, side)]
    return pts[:k]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_ours(model, splits, bs, device, overrides, case=""):
    """Our ``Landscape`` on ``model`` with the benchmark's directions (drawn from seed 0)."""
    from engine.config import load_config
    from engine.directions import DirectionSet, random_direction
    from engine.landscape import Landscape

    g = torch.Generator().manual_seed(0)
    dx = random_direction(model, "weights", "filter", "biasbn", g)
    dy = random_direction(model, "weights", "filter", "biasbn", g)
    loss = [f"data.loss={LOSS[case]}"] if case in LOSS else []
    cfg = load_config(None, [f"data.batch_size={bs}", *loss, *overrides])
    land = Landscape(model, splits, DirectionSet(dx, dy, "weights"), cfg, device)
    land.check()  # layout fallback, compile, and the timing of points_per_batch = 'auto'
    return land


def time_ours(land, group, device) -> float:
    """Seconds per point of ours over one group of K points (K = points_per_batch)."""
    sync(device)
    t = time.perf_counter()
    land.evaluate_many(group)
    sync(device)
    return (time.perf_counter() - t) / len(group)


def groups_of(land, points) -> list[list[tuple[float, float]]]:
    """The points K at a time, as ours evaluates them (K = points_per_batch)."""
    k = land.points_per_batch
    return [points[i : i + k] for i in range(0, len(points), k)]


def paired(base, ours, groups) -> tuple[list[float], list[float]]:
    """Per group, the baseline and ours in turn, alternating which goes first: the seconds
    per point of each, timed back to back so that the machine's drift hits both alike."""
    base_t, ours_t = [], []
    for i, group in enumerate(groups):
        if i % 2 == 0:
            ours_t.append(ours(group))
        base_t.append(base(group))
        if i % 2 == 1:
            ours_t.append(ours(group))
    return base_t, ours_t


def peak_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def method_ours_and_floor(model, splits, images, labels, bs, device, points, overrides, fresh):
    """(a) and (b) interleaved in one process, so that drift hits both alike."""
    from engine.evaluate import autocast

    land = make_ours(model, splits, bs, device, overrides, RUN["case"])
    k = land.points_per_batch
    print(
        f"ours: precision {land.precision or 'fp32'}, channels_last {land.channels_last}, "
        f"points_per_batch {k}, compiled {land.forward is not land.model}",
        file=sys.stderr,
    )
    if land.fused:
        data = [land.all.x]  # the same forward calls as ours: splits joined, same layout

        def calls():
            for x in data:
                for i in range(0, len(x), bs):
                    land.model(x[i : i + bs])
    else:  # the user's own loss function over the same batches, nothing summed

        def calls():
            for split in land.splits.values():
                for batch in split:
                    land.loss.fn(land.model, batch)

    @torch.inference_mode()
    def floor(a, b):
        land.perturbation.set(a, b)  # the same weights as ours; setting them is not timed
        sync(device)
        t = time.perf_counter()
        with autocast(device.type, land.precision):
            calls()
        sync(device)
        return time.perf_counter() - t

    # The floor runs each point of a group of K, ours the group in one call.
    groups = groups_of(land, points)
    land.evaluate_many(groups[0])  # warm-up of both paths
    floor(*points[0])
    floors, ours = paired(
        lambda g: statistics.mean(floor(a, b) for a, b in g),
        lambda g: time_ours(land, g, device),
        groups,
    )
    ratios = [o / f for o, f in zip(ours, floors, strict=True)]
    return {"sec": [ours, floors], "ratio": {"b": ratios}, "peak_mb": peak_mb(device)}


def method_reference(model, splits, images, labels, bs, device, points, overrides, fresh):
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    c = next(iter(images.values())).shape[1]
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5] * c, [0.25] * c)])

    class Images(Dataset):  # uint8 HWC arrays through per-sample transforms, as from PIL files
        def __init__(self, x, y):
            self.x, self.y = x.permute(0, 2, 3, 1).numpy(), y.tolist()

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return tf(self.x[i]), self.y[i]

    loaders = [DataLoader(Images(images[k], labels[k]), batch_size=bs) for k in images]
    model = model.to(device)
    params = list(model.parameters())
    weights = [p.data.clone() for p in params]
    g = torch.Generator().manual_seed(0)
    dx = [torch.randn(w.shape, generator=g) for w in weights]  # CPU copies, as read from h5
    dy = [torch.randn(w.shape, generator=g) for w in weights]

    def one(a, b):
        sync(device)
        t = time.perf_counter()
        for p, w, d0, d1 in zip(params, weights, dx, dy, strict=True):
            p.data = w + (d0 * a + d1 * b).to(device)
        with torch.no_grad():
            for loader in loaders:
                total, correct = 0.0, 0
                for x, y in loader:
                    x, y = x.to(device), y.to(device)
                    out = model(x)
                    total += F.cross_entropy(out, y).item() * len(y)
                    correct += out.argmax(1).eq(y).sum().item()
        sync(device)
        return time.perf_counter() - t

    one(*points[0])  # warm-up
    peak = peak_mb(device)  # the reference's own, before ours is built beside it
    land = make_ours(fresh(), splits, bs, device, overrides)  # its own model: this one moved
    groups = groups_of(land, points)
    time_ours(land, groups[0], device)  # warm-up
    ref, ours = paired(
        lambda g: statistics.mean(one(a, b) for a, b in g),
        lambda g: time_ours(land, g, device),
        groups,
    )
    ratios = [r / o for r, o in zip(ref, ours, strict=True)]
    return {"sec": [ref], "ratio": {"c": ratios}, "peak_mb": peak}


def method_loss_landscapes(model, splits, images, labels, bs, device, points, overrides, fresh):
    import loss_landscapes
    import loss_landscapes.metrics

    x = torch.cat([s.x for s in splits.values()]).to(device)
    y = torch.cat([s.y for s in splits.values()]).to(device)
    metric = loss_landscapes.metrics.Loss(torch.nn.CrossEntropyLoss(), x, y)
    model = model.to(device)
    steps = max(2 if RUN["tiny"] else 3, int(np.sqrt(len(points))))

    @torch.no_grad()
    def plane(_=None) -> float:
        sync(device)
        t = time.perf_counter()
        # Its 'filter' normalisation divides by zero on BN models (loss-landscapes 3.0.6);
        # 'model' normalisation costs the same per point.
        loss_landscapes.random_plane(model, metric, distance=1, steps=steps, normalization="model")
        sync(device)
        return (time.perf_counter() - t) / steps**2

    with torch.no_grad():
        metric(model)  # warm-up
    plane()
    peak = peak_mb(device)  # its own, before ours is built beside it
    land = make_ours(fresh(), splits, bs, device, overrides)  # random_plane moved this one
    same = groups_of(land, grid_points(steps**2))  # ours over as many points as a plane

    def ours_plane(_) -> float:
        return statistics.mean(time_ours(land, g, device) for g in same)

    ours_plane(None)  # warm-up
    # One plane is one timing; five planes, each paired with ours over as many points.
    ll, ours = paired(plane, ours_plane, [None] * (2 if RUN["tiny"] else 5))
    ratios = [x / o for x, o in zip(ll, ours, strict=True)]
    return {"sec": [ll], "ratio": {"d": ratios}, "peak_mb": peak}


RUNNERS = {
    "ab": method_ours_and_floor,
    "c": method_reference,
    "d": method_loss_landscapes,
}


RUN = {"case": "", "tiny": False}  # what this child runs


def child(args) -> None:
    RUN.update(case=args.case, tiny=args.tiny)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, splits, images, labels, bs = setup(args.case, args.tiny)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    from engine.models import build_model

    def fresh():  # the same model again (seed 0), for ours beside a baseline that moved its own
        return build_model(CASES[args.case]["arch"], seed=0).eval()

    res = RUNNERS[args.method](
        model, splits, images, labels, bs, device, grid_points(args.points), args.set, fresh
    )
    res["sec"] = [statistics.median(t) for t in res["sec"]]
    res["images"] = sum(len(s) for s in splits.values())
    print(json.dumps(res))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--case", choices=sorted(CASES), default="digits")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--points", type=int, help="grid points timed per method (default: 49 digits, 9 others)"
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--methods", default="abcd", help="subset of 'abcd' to run")
    p.add_argument(
        "--tiny",
        action="store_true",
        help=f"smoke run: {TINY_IMAGES} images a split, batch {TINY_BATCH}, 2x2 planes (tests)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for ours and the floor, e.g. compute.precision=bf16",
    )
    p.add_argument("--method", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.points = args.points or CASES[args.case]["points"]
    if args.method:
        return child(args)
    results, ratios = {}, {}
    groups = ["ab" if "a" in args.methods or "b" in args.methods else ""]
    groups += [m for m in args.methods if m in "cd"]
    for m in filter(None, groups):
        cmd = [
            sys.executable,
            __file__,
            "--method",
            m,
            "--case",
            args.case,
            "--device",
            args.device,
            "--points",
            str(args.points),
            "--threads",
            str(args.threads),
        ]
        cmd += ["--tiny"] if args.tiny else []
        cmd += [f"--set={o}" for o in args.set]
        r = subprocess.run(cmd, capture_output=True, text=True)
        for line in r.stderr.splitlines():
            if line.startswith("ours:"):
                print(line)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            print(f"({m}) {METHODS.get(m, 'ours and floor')}: not run ({last})")
            continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        for name, sec in zip(m, res["sec"], strict=True):
            results[name] = {**res, "sec": sec}
        ratios.update(res["ratio"])
    print(
        f"case {args.case} on {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads() if not args.threads else args.threads} threads, "
        f"median of {args.points} points" + "".join(f", {o}" for o in args.set)
    )
    print(f"{'method':<24}{'s/point':>10}{'points/s':>10}{'images/s':>12}{'peak MB':>10}")
    for m, r in results.items():
        print(
            f"({m}) {METHODS[m]:<20}{r['sec']:>10.4f}{1 / r['sec']:>10.2f}"
            f"{r['images'] / r['sec']:>12.0f}{r['peak_mb']:>10.0f}"
        )
    # Each ratio is the median over pairs timed back to back in one process (ours against
    # the floor per point; against (c) per point; against (d) per plane of as many points),
    # so that the machine's drift between processes and minutes cancels.
    if ratios:
        print("ratios: medians over pairs timed back to back in one process (the rows above")
        print("        come from separate processes, minutes apart)")
    for m, text in (
        ("b", "ours / floor"),
        ("c", "reference / ours"),
        ("d", "loss-landscapes / ours"),
    ):
        if m in ratios:
            q = ratios[m]
            lo, hi = np.percentile(q, [25, 75]) if len(q) > 1 else (q[0], q[0])
            print(
                f"{text:<24}{statistics.median(q):>10.2f}x"
                f"   (median of {len(q)} pairs, quartiles {lo:.2f}-{hi:.2f})"
            )


if __name__ == "__main__":
    main()
