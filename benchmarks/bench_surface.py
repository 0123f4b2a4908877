"""Seconds per grid point: ours against the floor, the reference's algorithm and loss-landscapes.

One command per case; each method runs in its own process (clean peak memory), all on the same
model, data, batch size and grid points, in the same run:

    python benchmarks/bench_surface.py --case digits               # digits CNN, embedded data
    python benchmarks/bench_surface.py --case resnet20             # ResNet-20, 2,000 CIFAR-shaped
    python benchmarks/bench_surface.py --case resnet56 --device cuda   # 10,000 images, on a GPU
    python benchmarks/bench_surface.py --case resnet20 --tiny      # seconds; run by the tests

Methods, where (a) and (b) run interleaved point by point in one process so that drift in
the machine's speed hits both alike (their peak memory is then shared): (a) ours
(``engine.run.Landscape``: tensors moved in place, data on the device once, loss and
accuracy of every split in one pass); (b) the floor, one plain ``model(x)`` pass over the
same data in eval and inference mode at the same batch size; (c) the reference's algorithm
written naively here: per point the weights are set from CPU copies of the directions and a
DataLoader runs a per-sample ToTensor/Normalize transform over uint8 images, with a ``.item()``
per batch; (d) ``loss_landscapes.random_plane`` (``pip install loss-landscapes``), which
evaluates loss only, on the same data given as one batch.
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

CASES = {
    "digits": {"arch": "digits_cnn", "n": None, "batch": 1024},
    "resnet20": {"arch": "resnet20", "n": 2000, "batch": 500},
    "resnet56": {"arch": "resnet56", "n": 10000, "batch": 1000},
}
METHODS = {"a": "ours", "b": "floor", "c": "reference algorithm", "d": "loss-landscapes"}


def setup(case: str, tiny: bool):
    """Model, splits (normalised float tensors) and the same data as uint8 images."""
    from engine.data import Split, digits_splits
    from engine.models import build_model

    spec = CASES[case]
    model = build_model(spec["arch"], seed=0).eval()
    if spec["n"] is None:
        splits = digits_splits()
        images = {
            k: (s.x * 0.3763 + 0.3052).mul(255).clamp(0, 255).byte() for k, s in splits.items()
        }
    else:
        n = 64 if tiny else spec["n"]
        g = torch.Generator().manual_seed(0)
        images = {"train": torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)}
        labels = torch.randint(0, 10, (n,), generator=g)
        splits = {"train": Split((images["train"].float() / 255 - 0.5) / 0.25, labels)}
    labels = {k: s.y for k, s in splits.items()}
    return model, splits, images, labels, (32 if tiny else spec["batch"])


def grid_points(k: int) -> list[tuple[float, float]]:
    side = max(2, int(np.ceil(np.sqrt(k))))
    pts = [(a, b) for b in np.linspace(-1, 1, side) for a in np.linspace(-1, 1, side)]
    return pts[:k]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_points(fn, points, device) -> list[float]:
    fn(*points[0])  # warm-up: allocator, kernels, caches
    sync(device)
    out = []
    for a, b in points:
        t = time.perf_counter()
        fn(a, b)
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def method_ours_and_floor(model, splits, images, labels, bs, device, points, overrides):
    """(a) and (b) interleaved point by point in one process, so drift hits both alike."""
    from engine.config import load_config
    from engine.directions import DirectionSet, random_direction
    from engine.evaluate import autocast
    from engine.run import Landscape

    g = torch.Generator().manual_seed(0)
    dx = random_direction(model, "weights", "filter", "biasbn", g)
    dy = random_direction(model, "weights", "filter", "biasbn", g)
    cfg = load_config(None, [f"data.batch_size={bs}", *overrides])
    land = Landscape(model, splits, DirectionSet(dx, dy, "weights"), cfg, device)
    land.check()  # layout fallback, compile, and the timing of points_per_batch = 'auto'
    k = land.points_per_batch
    print(
        f"ours: precision {cfg.compute.precision}, channels_last {land.channels_last}, "
        f"points_per_batch {k}, compiled {land.forward is not land.model}",
        file=sys.stderr,
    )
    data = [land.all.x]  # the same forward calls as ours: splits joined, same layout

    @torch.inference_mode()
    def floor(a, b):
        land.perturbation.set(a, b)  # the same weights as ours; setting them is not timed
        sync(device)
        t = time.perf_counter()
        for x in data:
            for i in range(0, len(x), bs):
                with autocast(device.type, land.precision):
                    land.model(x[i : i + bs])
        sync(device)
        return time.perf_counter() - t

    # Ours takes the points K at a time (K = points_per_batch); its time per point is the
    # time of each group divided by K, so that both columns are seconds per grid point.
    groups = [points[i : i + k] for i in range(0, len(points), k)]
    land.evaluate_many(groups[0])  # warm-up of both paths
    floor(*points[0])
    ours, floors = [], []
    for group in groups:
        sync(device)
        t = time.perf_counter()
        land.evaluate_many(group)
        sync(device)
        ours += [(time.perf_counter() - t) / len(group)] * len(group)
        floors += [floor(a, b) for a, b in group]
    return ours, floors


def method_reference(model, splits, images, labels, bs, device, points, overrides):
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

    return time_points(one, points, device)


def method_loss_landscapes(model, splits, images, labels, bs, device, points, overrides):
    import loss_landscapes
    import loss_landscapes.metrics

    x = torch.cat([s.x for s in splits.values()]).to(device)
    y = torch.cat([s.y for s in splits.values()]).to(device)
    metric = loss_landscapes.metrics.Loss(torch.nn.CrossEntropyLoss(), x, y)
    model = model.to(device)
    steps = max(3, int(np.sqrt(len(points))))
    times = []
    with torch.no_grad():
        metric(model)  # warm-up
        # One plane is one timing; three planes give a median, as (a) and (b) have one.
        for _ in range(3):
            sync(device)
            t = time.perf_counter()
            # Its 'filter' normalisation divides by zero on BN models (loss-landscapes 3.0.6);
            # 'model' normalisation costs the same per point.
            loss_landscapes.random_plane(
                model, metric, distance=1, steps=steps, normalization="model"
            )
            sync(device)
            times.append((time.perf_counter() - t) / steps**2)
    return times


RUNNERS = {
    "ab": method_ours_and_floor,
    "c": method_reference,
    "d": method_loss_landscapes,
}


def child(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, splits, images, labels, bs = setup(args.case, args.tiny)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = RUNNERS[args.method](
        model, splits, images, labels, bs, device, grid_points(args.points), args.set
    )
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    n_images = sum(len(s) for s in splits.values())
    series = times if isinstance(times, tuple) else (times,)
    secs = [statistics.median(t) for t in series]
    print(json.dumps({"sec": secs, "images": n_images, "peak_mb": peak, "batch": bs}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--case", choices=sorted(CASES), default="digits")
    p.add_argument("--device", default="cpu")
    p.add_argument("--points", type=int, default=9, help="grid points timed per method")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--methods", default="abcd", help="subset of 'abcd' to run")
    p.add_argument("--tiny", action="store_true", help="64 images, batch 32 (for the tests)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for ours and the floor, e.g. compute.precision=bf16",
    )
    p.add_argument("--method", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.method:
        return child(args)
    results = {}
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
    if "a" in results:
        a = results["a"]["sec"]
        for m, text in (
            ("b", "ours / floor"),
            ("c", "reference / ours"),
            ("d", "loss-landscapes / ours"),
        ):
            if m in results:
                ratio = a / results[m]["sec"] if m == "b" else results[m]["sec"] / a
                print(f"{text:<24}{ratio:>10.2f}x")


if __name__ == "__main__":
    main()
