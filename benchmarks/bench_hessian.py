"""Hessian eigenvalue maps: products and seconds per grid point, warm starts against the reference.

One command; the default case is the digits CNN (``recipe:digits_cnn``, trained once and
cached) on the digits train split (1,437 images, one batch), an 11x11 grid over [-1, 1]^2
along two seeded filter-normalised random directions (biases and BN zeroed), tol 1e-3:

    python benchmarks/bench_hessian.py                         # the full case
    python benchmarks/bench_hessian.py --grid 5 --samples 256  # smaller, for a slow CPU
    python benchmarks/bench_hessian.py --device cuda --json out.json
    python benchmarks/bench_hessian.py --tiny                  # a smoke run for the tests

On a CPU shared with other work pass ``--threads 1``: with two threads on two busy cores a
product of the digits CNN took 0.9 s, with one 0.03 s (128 samples).

Methods, each over every grid point, the Hessian of the mean loss over the 2+-dim tensors:
(a) ``extreme_eigenvalues(method='warm')`` in snake order, each point started from the
previous point's eigenvectors; (b) ``method='cold'``, the reference's algorithm at every
point (ARPACK for the dominant eigenvalue, then on ``H - 0.51 lmax I``, random starts);
(c) PyHessian's power iteration for the top eigenvalue at the same tol (``pip install
pyhessian``), on the whole split as one batch, HVPs counted by wrapping its product.
Reported: HVP products in total and per point, seconds per point, and the largest
differences of the eigenvalues from (b): for lmax relative to |lmax|, for lmin relative to
the spectral radius max(|lmax|, |lmin|) (the scale of the tolerance) and to |lmin|.

Measured (2026-11-26), the full case on one H200 (torch 2.11, checkpoint trained there):
(a) 1,635 products (13.5 a point, 0.20 s), (b) 6,212 (51.3 a point, 0.87 s): ratio 0.26;
(a) vs (b): lmax 1.9e-5 of |lmax|, lmin 5.3e-4 of the radius (1.1e-2 of |lmin|), the largest
where (a) found the lower lmin; (c) 1,018 products (8.4 a point) for lmax alone, 9.5e-3 off,
since it stops on a small change between iterations, not on a residual.

``--cost charlm,digits_resnet20``: one HVP's time over one gradient's (``MeanLossHVP.gradient``,
the same batches and functional calls), per HVP mode, medians of ``--reps`` in one process.
Measured (2026-12-06) on a shared 2-core CPU busy with other work (load 6-7), one thread,
64 samples, torch 2.14: the char transformer (135,232 weights, the charlm recipe): fwd and
rev fail (fused attention), fwd-math 5.42, rev-math 4.25, auto chose rev-math (4.50);
digits ResNet-20 (67,848 weights, random init): fwd 5.35 (the old default), fwd-math 5.50,
rev 2.71, rev-math 2.41, auto chose rev (2.58). Ratios, not seconds: the machine was busy.

``--speed charlm,digits_resnet20,digits_resnet56`` (``run_speed``): those ratios with the
reverse modes' products on the point's kept gradient graph too, then seconds per grid point
before (``MeanLossHVP(reuse=False)``) and after, paired in one process, with the load average;
``--quick`` (64 samples, one point) took 55 s on the busy 2-core CPU. Measured (2026-12-06,
load 5.5-11.6, 256 samples): digits ResNet-20 rev 2.04 -> 1.47 gradients a product, 17.0 ->
10.1 s a point; digits ResNet-56 (built inline) rev 2.74 -> 1.65, 46.8 -> 31.4 s; the char
transformer (128 samples) rev-math 4.94 -> 3.61, 58.0 -> 34.3 s (docs/benchmarks.md).
``--before cold`` pairs the reference's solver instead; each point's line says after how many
products each end passed and what share of the time was inside products (the profile of
docs/benchmarks.md, "Where a grid point's time goes").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data import digits_splits
from engine.directions import DirectionSet, Perturbation, random_direction
from engine.errors import LandscapeError
from engine.hessian import HVP_MODES, MeanLossHVP, extreme_eigenvalues, snake_order
from engine.models import build_model, load_checkpoint

METHODS = {"a": "warm, snake order", "b": "cold (reference)", "c": "PyHessian power it."}


def setup(args: argparse.Namespace):
    """Model (checkpoint loaded if any), split, perturbation and grid coordinates."""
    if args.tiny:
        model = build_model("digits_mlp", kwargs={"hidden": 16}, seed=0)
    else:
        model = build_model("digits_cnn", seed=0)
    ckpt = "random init"
    if not args.tiny and not args.no_checkpoint:
        from engine.recipes import recipe_checkpoint

        path = recipe_checkpoint("recipe:digits_cnn")
        load_checkpoint(model, path)
        ckpt = f"recipe:digits_cnn ({path.name})"
    split = digits_splits()["train"]
    n = 32 if args.tiny else args.samples or len(split)
    split = type(split)(split.x[:n], split.y[:n])
    device = torch.device(args.device)
    model = model.to(device).eval()
    split = split.to(device)
    g = torch.Generator().manual_seed(args.seed)
    x = random_direction(model, "weights", "filter", "biasbn", g)
    y = random_direction(model, "weights", "filter", "biasbn", g)
    pert = Perturbation(model, DirectionSet(x, y, "weights"))
    coords = np.linspace(-args.range, args.range, args.grid)
    return model, split, pert, coords, ckpt


def run_ours(args, model, split, pert, coords, method: str) -> list[dict]:
    hvp = MeanLossHVP(model, split, args.batch or len(split), mode=args.mode)
    nx = len(coords)
    out, prev = [], None
    for k in snake_order(nx, nx):
        i, j = divmod(k, nx)
        pert.set(coords[j], coords[i])
        t = time.perf_counter()
        ex = extreme_eigenvalues(hvp, args.tol, start=prev, seed=k, method=method)
        sec = time.perf_counter() - t
        prev = ex if method == "warm" else None
        out.append({"k": k, "lmax": ex.lmax, "lmin": ex.lmin, "products": ex.products, "s": sec})
    pert.reset()
    return out


def run_pyhessian(args, model, split, pert, coords) -> list[dict]:
    import importlib

    ph = importlib.import_module("pyhessian.hessian")  # the package re-exports a class by that name

    count = [0]
    product = ph.hessian_vector_product

    def counted(*a, **k):
        count[0] += 1
        return product(*a, **k)

    ph.hessian_vector_product = counted
    # The same Hessian as ours: PyHessian takes every parameter that requires grad.
    frozen = [p for p in model.parameters() if p.dim() <= 1]
    for p in frozen:
        p.requires_grad_(False)
    out = []
    nx = len(coords)
    try:
        for k in snake_order(nx, nx):
            i, j = divmod(k, nx)
            pert.set(coords[j], coords[i])
            torch.manual_seed(k)
            count[0] = 0
            t = time.perf_counter()
            h = ph.hessian(model, F.cross_entropy, data=(split.x, split.y), cuda=split.x.is_cuda)
            vals, _ = h.eigenvalues(maxIter=args.power_iters, tol=args.tol, top_n=1)
            sec = time.perf_counter() - t
            model.zero_grad(set_to_none=True)  # PyHessian leaves a graph in .grad
            out.append({"k": k, "lmax": float(vals[0]), "products": count[0], "s": sec})
    finally:
        for p in frozen:
            p.requires_grad_(True)
        ph.hessian_vector_product = product
        pert.reset()
    return out


def rel(a: list[dict], b: list[dict]) -> dict[str, float]:
    """Largest differences of a's eigenvalues from b's (points matched by index)."""
    bk = {r["k"]: r for r in b}
    d = {"lmax": 0.0, "lmin_radius": 0.0, "lmin_own": 0.0}
    for r in a:
        s = bk[r["k"]]
        d["lmax"] = max(d["lmax"], abs(r["lmax"] - s["lmax"]) / abs(s["lmax"]))
        if "lmin" in r:
            radius = max(abs(s["lmax"]), abs(s["lmin"]))
            d["lmin_radius"] = max(d["lmin_radius"], abs(r["lmin"] - s["lmin"]) / radius)
            d["lmin_own"] = max(d["lmin_own"], abs(r["lmin"] - s["lmin"]) / abs(s["lmin"]))
    return d


def cost_case(name: str, samples: int, checkpoint: bool = True):
    """(model, split, batch size, loss) of a cost case: the char transformer of the charlm
    sample (its recipe checkpoint, or random init), a digits ResNet at random init. Digits
    ResNet-56 is not in the zoo: it is built here, the digits ResNets' builder at depth 56
    (``CifarResNet(56, 8, in_channels=1, pool=2)``, 8x8 inputs)."""
    from engine.build import load_model
    from engine.config import load_config
    from engine.data import load_splits
    from engine.models.resnet import CifarResNet

    repo = Path(__file__).resolve().parents[1]
    if name == "charlm":
        sets = [f"data.subset={samples}"] + ([] if checkpoint else ['model.checkpoint=""'])
        cfg = load_config(repo / "sample_configs" / "charlm_2d.toml", sets)
    else:
        arch = "digits_resnet20" if name == "digits_resnet56" else name
        cfg = load_config(None, [f"model.arch={arch}", "data.dataset=digits",
                                 'data.splits=["train"]', f"data.subset={samples}"])  # fmt: skip
    model = load_model(cfg).eval()
    if name == "digits_resnet56":
        torch.manual_seed(cfg.model.seed)
        model = CifarResNet(56, 8, True, 10, in_channels=1, pool=2).eval()
    return model, load_splits(cfg.data, ["train"])["train"], cfg.data.fixed_batch, cfg.data.loss


def run_cost(args) -> None:
    """Seconds of one HVP over one gradient of the same mean loss, in this process, per mode:
    the gradient by ``MeanLossHVP.gradient`` (the same batches and functional calls)."""
    for name in args.cost.split(","):
        model, split, batch, loss = cost_case(name, args.samples or 64)
        probe = MeanLossHVP(model, split, batch, loss)
        v = np.random.default_rng(0).standard_normal(probe.n)
        probe.gradient()  # warm-up
        reps = args.reps
        tg = statistics.median(_timed(probe.gradient) for _ in range(reps))
        line = f"{name}: {probe.n:,} Hessian weights, {len(split)} samples, gradient {tg:.3f} s"
        for mode in ("auto", *HVP_MODES):
            hvp = MeanLossHVP(model, split, batch, loss, mode=mode)
            try:
                hvp(v)  # warm-up, and auto's choice
            except (RuntimeError, NotImplementedError):
                line += f"; {mode}: fails"
                continue
            th = statistics.median(_timed(lambda h=hvp, v=v: h(v)) for _ in range(reps))
            chosen = f" (chose {hvp.mode})" if mode == "auto" else ""
            line += f"; {mode}{chosen}: HVP/gradient {th / tg:.2f}"
        print(line, flush=True)


def run_speed(args) -> None:
    """Per case, in one process: HVP/gradient time ratios per mode (rev modes with and without
    the kept graph), then seconds per grid point BEFORE and AFTER, paired point by point in
    alternating order, on a line of points ``--step`` apart along one random filter-normalised
    direction, each warm-started from the previous point, at ``--tol``. AFTER is the default
    (``extreme_eigenvalues(method='warm')`` on ``MeanLossHVP()``); BEFORE is ``--before``:
    ``rebuild`` (``MeanLossHVP(reuse=False)``: every product rebuilds the gradient's graph) or
    ``cold`` (the reference's solver, two ARPACK runs from random starts, on the kept graph).
    Per point: wall and process (CPU) seconds, products, the products after which lambda_max
    and lambda_min each first passed the test (ARPACK: each run's), and the share of the wall
    time spent inside the products (the rest is the solver's overhead)."""
    samples = args.samples or (64 if args.quick else 0)
    points = args.points or (1 if args.quick else 3)
    reps = 1 if args.quick else args.reps
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{_load()} (1, 5, 15 min) at the start; before = {args.before}, tol {args.tol:g}, "
          f"points {args.step:g} apart", flush=True)  # fmt: skip
    for name in args.speed.split(","):
        model, split, batch, loss = cost_case(name, samples or 10**9, checkpoint=False)
        before = MeanLossHVP(model, split, batch, loss, reuse=args.before != "rebuild")
        after = MeanLossHVP(model, split, batch, loss)
        v = np.random.default_rng(0).standard_normal(after.n)
        before(v), after(v)  # warm-up, and auto's choice of mode
        tg = statistics.median(_timed(after.gradient) for _ in range(reps))
        ratios = []
        for mode in HVP_MODES if not args.no_ratios else ():
            for reuse in (False, True) if mode.startswith("rev") else (False,):
                h = MeanLossHVP(model, split, batch, loss, mode=mode, reuse=reuse)
                label = f"{mode}{' kept' if reuse else ''}"
                try:
                    h(v)  # warm-up; with reuse, builds the graph: the rest are products
                except (RuntimeError, NotImplementedError, LandscapeError):
                    ratios.append(f"{label} fails")
                    continue
                th = statistics.median(_timed(lambda h=h, v=v: h(v)) for _ in range(reps))
                ratios.append(f"{label} {th / tg:.2f}")
        print(f"{name}: {after.n:,} Hessian weights, {len(split)} samples, batch {batch}, "
              f"gradient {tg:.3f} s; HVP/gradient: {', '.join(ratios) or 'not measured'}; "
              f"auto chose {before.mode} before, {after.mode} after", flush=True)  # fmt: skip
        g = torch.Generator().manual_seed(args.seed)
        d = random_direction(model, "weights", "filter", "biasbn", g)
        pert = Perturbation(model, DirectionSet(d, None, "weights"))
        rows, prev = [], {"before": None, "after": None}
        method = {"before": "cold" if args.before == "cold" else "warm", "after": "warm"}
        for k in range(points):
            a = k * args.step
            pert.set(float(a))
            row = {}
            for which in ("before", "after") if k % 2 == 0 else ("after", "before"):
                h = before if which == "before" else after
                t, c, inside = time.perf_counter(), time.process_time(), h.seconds
                ex = extreme_eigenvalues(h, args.tol, start=prev[which], seed=k,
                                         method=method[which])  # fmt: skip
                wall = time.perf_counter() - t
                row[which] = {"s": wall, "cpu": time.process_time() - c, "ex": ex,
                              "inside": (h.seconds - inside) / wall}  # fmt: skip
                prev[which] = ex
            rows.append(row)
            b, f = row["before"], row["after"]
            print(f"  point {k} (a = {a:.2f}): before {_point(b)}; after {_point(f)}; "
                  f"after/before {f['s'] / b['s']:.2f}; lambda_max {f['ex'].lmax:.5g} "
                  f"({b['ex'].lmax:.5g}), lambda_min {f['ex'].lmin:.5g} "
                  f"({b['ex'].lmin:.5g})", flush=True)  # fmt: skip
        pert.reset()
        # The first point starts cold on both sides; the warm points are the grid's usual case.
        warm = rows[1:] or rows
        med = {w: statistics.median(r[w]["s"] for r in warm) for w in ("before", "after")}
        cpu = {w: statistics.median(r[w]["cpu"] for r in warm) for w in ("before", "after")}
        prods = {w: statistics.median(r[w]["ex"].products for r in warm) for w in med}
        ratio = statistics.median(r["after"]["s"] / r["before"]["s"] for r in warm)
        print(f"{name}: seconds per grid point, median of {len(warm)} warm-started point(s): "
              f"before {med['before']:.2f} (CPU {cpu['before']:.2f}, {prods['before']:g} "
              f"products), after {med['after']:.2f} (CPU {cpu['after']:.2f}, "
              f"{prods['after']:g} products); after/before {ratio:.2f} (median of the pairs); "
              f"load average {_load()}", flush=True)  # fmt: skip


def _point(r: dict) -> str:
    ex = r["ex"]
    return (
        f"{r['s']:.2f} s (CPU {r['cpu']:.2f}), {ex.products} products (lmax passed at "
        f"{ex.passed_max}, lmin at {ex.passed_min}), {100 * r['inside']:.0f}% in products"
    )


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--grid", type=int, default=11, help="points per axis (N x N grid)")
    p.add_argument("--range", type=float, default=1.0, help="grid over [-R, R] on both axes")
    p.add_argument("--samples", type=int, default=0, help="first M train samples (0: all)")
    p.add_argument("--batch", type=int, default=0, help="HVP batch size (0: the whole split)")
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--mode", default="auto", choices=["auto", *HVP_MODES])
    p.add_argument(
        "--cost", default="", help="HVP/gradient time ratios only, e.g. charlm,digits_resnet20"
    )
    p.add_argument("--reps", type=int, default=5, help="timed repetitions (--cost, --speed)")
    p.add_argument(
        "--speed",
        default="",
        help="HVP/gradient ratios and seconds per grid point before/after, paired, e.g. "
        "charlm,digits_resnet20,digits_resnet56 (random init)",
    )
    p.add_argument("--points", type=int, default=0, help="grid points per case (--speed)")
    p.add_argument("--step", type=float, default=0.2, help="--speed: distance between points")
    p.add_argument(
        "--before",
        default="rebuild",
        choices=["rebuild", "cold"],
        help="--speed: the side paired with the default solver: rebuild (no kept graph) or "
        "cold (the reference's two ARPACK runs)",
    )
    p.add_argument("--no-ratios", action="store_true", help="--speed: skip the HVP/gradient ratios")
    p.add_argument("--quick", action="store_true", help="--speed in about a minute")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--methods", default="abc", help="subset of 'abc' to run")
    p.add_argument("--seed", type=int, default=0, help="seed of the two directions")
    p.add_argument("--power-iters", type=int, default=100, help="PyHessian's maxIter")
    p.add_argument("--no-checkpoint", action="store_true", help="random init, no training")
    p.add_argument("--json", help="write every point's results here")
    p.add_argument(
        "--tiny", action="store_true", help="smoke run: digits MLP (16, 8), 32 samples, 2x2 grid"
    )
    args = p.parse_args()
    if args.tiny:  # every method end to end in seconds; its figures mean nothing
        args.grid = 2
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    if args.cost:
        run_cost(args)
        return
    if args.speed:
        run_speed(args)
        return
    model, split, pert, coords, ckpt = setup(args)
    n_hess = sum(p.numel() for p in model.parameters() if p.dim() > 1)
    print(
        f"{'digits_mlp' if args.tiny else 'digits_cnn'} ({ckpt}), {len(split)} train samples, "
        f"batch {args.batch or len(split)}, "
        f"{args.grid}x{args.grid} grid over [-{args.range:g}, {args.range:g}]^2, tol {args.tol:g}, "
        f"Hessian over {n_hess} weights; {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    results: dict[str, list[dict]] = {}
    for m in args.methods:
        t = time.perf_counter()
        try:
            if m == "c":
                results[m] = run_pyhessian(args, model, split, pert, coords)
            else:
                results[m] = run_ours(
                    args, model, split, pert, coords, "warm" if m == "a" else "cold"
                )
        except ImportError as e:
            print(f"({m}) {METHODS[m]}: not run ({e}; pip install pyhessian)")
            continue
        print(f"({m}) {METHODS[m]}: done in {time.perf_counter() - t:.1f} s", flush=True)
        if args.json:  # after each method, so a run cut short keeps what it finished
            Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}))
    print(
        f"{'method':<26}{'products':>9}{'per point':>10}{'median':>8}{'max':>6}"
        f"{'s/point':>9}{'s/product':>10}"
    )
    for m, rs in results.items():
        prods = [r["products"] for r in rs]
        secs = [r["s"] for r in rs]
        print(
            f"({m}) {METHODS[m]:<22}{sum(prods):>9}{sum(prods) / len(rs):>10.1f}"
            f"{statistics.median(prods):>8.0f}{max(prods):>6}{sum(secs) / len(rs):>9.3f}"
            f"{sum(secs) / max(1, sum(prods)):>10.4f}"
        )
    if "a" in results and "b" in results:
        pa = sum(r["products"] for r in results["a"])
        pb = sum(r["products"] for r in results["b"])
        d = rel(results["a"], results["b"])
        print(f"products (a) / (b): {pa / pb:.3f}   (target: at most 0.5)")
        print(
            f"max |(a) - (b)|: lmax {d['lmax']:.2e} of |lmax|; lmin {d['lmin_radius']:.2e} of "
            f"max(|lmax|, |lmin|), {d['lmin_own']:.2e} of |lmin|"
        )
    if "c" in results and "b" in results:
        d = rel(results["c"], results["b"])
        print(f"max |(c) - (b)|: lmax {d['lmax']:.2e} of |lmax|")


if __name__ == "__main__":
    main()
