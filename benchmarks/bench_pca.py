"""PCA directions of a trajectory: the streaming Gram route against the dense n x P matrix.

One command; it writes ``--n`` checkpoints of an MLP with about ``--params`` parameters (a
noisy path with three scales of motion) to a temporary folder it removes afterwards, then runs
each method in its own process so that peak memory (``ru_maxrss``) is its own:

    python benchmarks/bench_pca.py                           # n=100, ~10M parameters, CPU
    python benchmarks/bench_pca.py --n 100 --params 2000000  # smaller model
    python benchmarks/bench_pca.py --memory 512              # Gram route with a 512 MiB budget
    python benchmarks/bench_pca.py --threads 1               # one thread (a busy machine)
    python benchmarks/bench_pca.py --tiny                    # n=12, ~20k parameters: seconds

Methods: (a) ours, ``engine.trajectory.pca_directions`` (float64 Gram matrix of the rows,
checkpoints streamed from disk in blocks that fit ``memory_bytes``, a second pass for the
components); (b) dense, the reference's route: every row ``checkpoint - final`` (biases
zeroed) stacked into one float32 n x P matrix, centred, then ``numpy.linalg.svd``. Both
report explained variance ratios and projections, which are compared at the end. Dense is
skipped when its estimated peak would not fit in the available memory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_model(params: int) -> nn.Sequential:
    """Four square linear layers of about ``params`` parameters in all (biases included)."""
    width = max(4, int(math.sqrt(params / 4)))
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(4)])


def write_checkpoints(folder: Path, model: nn.Module, n: int) -> list[Path]:
    g = torch.Generator().manual_seed(0)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    steer = [{k: torch.randn(v.shape, generator=g) for k, v in base.items()} for _ in range(3)]
    paths = []
    for i in range(n):
        a = torch.randn(3, generator=g) * torch.tensor([3.0, 1.0, 0.3])
        sd = {}
        for k, v in base.items():
            w = torch.randn(v.shape, generator=g).mul_(0.01)
            for j in range(3):
                w.add_(steer[j][k], alpha=float(a[j]))
            sd[k] = w.add_(v)
        p = folder / f"model_{i}.t7"
        torch.save({"state_dict": sd, "acc": 0.0, "epoch": i}, p)
        paths.append(p)
    return paths


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def method_gram(model: nn.Module, paths: list[Path], memory: int) -> dict:
    from engine.trajectory import pca_directions

    r = pca_directions(model, paths, memory_bytes=memory)
    return {
        "evr": r.explained_variance_ratio.tolist(),
        "coords": r.coords_cos.tolist(),
        "reads": r.reads,
        "blocks": r.blocks,
    }


def method_dense(model: nn.Module, paths: list[Path], memory: int) -> dict:
    from engine.models import read_state_dict

    names = [n for n, p in model.named_parameters() if p.dim() > 1]  # biasbn zeroed: left out
    final = read_state_dict(paths[-1])
    size = sum(final[k].numel() for k in names)
    m = np.empty((len(paths), size), dtype=np.float32)  # the reference's float32 matrix
    for i, p in enumerate(paths):
        sd = read_state_dict(p)
        m[i] = torch.cat([(sd[k] - final[k]).reshape(-1) for k in names]).numpy()
    centred = m - m.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    del centred
    evr = s[:2] ** 2 / np.sum(s.astype(np.float64) ** 2)
    coords = (m @ vt[:2].T).astype(np.float64)
    return {"evr": evr.tolist(), "coords": coords.tolist(), "reads": len(paths), "blocks": 1}


def child(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    model = make_model(args.params)
    paths = sorted(Path(args.folder).glob("model_*.t7"), key=lambda p: int(p.stem.split("_")[1]))
    base = rss_mb()
    t0 = time.perf_counter()
    out = {"gram": method_gram, "dense": method_dense}[args.method](model, paths, args.memory)
    out.update(sec=time.perf_counter() - t0, peak_mb=rss_mb(), base_mb=base)
    print(json.dumps(out))


def available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=100, help="checkpoints")
    p.add_argument("--params", type=int, default=10_000_000, help="model parameters (about)")
    p.add_argument("--memory", type=int, default=2048, help="Gram route budget, MiB")
    p.add_argument("--methods", default="gram,dense", help="comma-separated subset")
    p.add_argument("--threads", type=int, default=0, help="torch and BLAS threads (0: default)")
    p.add_argument("--tiny", action="store_true", help="n=12, ~20k parameters (for the tests)")
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.tiny:
        args.n, args.params = 12, 20_000
    if args.method:
        args.memory *= 2**20
        return child(args)

    model = make_model(args.params)
    n_params = sum(p.numel() for p in model.parameters())
    size = sum(p.numel() for p in model.parameters() if p.dim() > 1)
    need = args.n * n_params * 4 * 1.05 + 2**26
    tmp_root = Path(tempfile.gettempdir())
    free = shutil.disk_usage(tmp_root).free
    if free < need + 2**30:
        gib = f"need {need / 2**30:.1f} GiB + 1 GiB spare, {free / 2**30:.1f} GiB free"
        sys.exit(f"not enough disk in {tmp_root}: {gib}")
    print(
        f"{args.n} checkpoints of {n_params:,} parameters ({n_params * 4 / 2**20:.0f} MiB each, "
        f"{need / 2**30:.2f} GiB on disk); torch {torch.__version__}, "
        f"{args.threads or torch.get_num_threads()} threads"
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_pca_", dir=tmp_root) as folder:
        t0 = time.perf_counter()
        write_checkpoints(Path(folder), model, args.n)
        print(f"checkpoints written in {time.perf_counter() - t0:.1f} s")
        for method in args.methods.split(","):
            if method == "dense":
                # float32 matrix, its centred copy, the SVD's copy and Vt: about 4 n x P copies.
                est = 4 * args.n * size * 4
                if est > 0.8 * available_bytes():
                    print(f"dense: skipped (needs about {est / 2**30:.1f} GiB)")
                    continue
            cmd = [sys.executable, __file__, "--method", method, "--folder", folder]
            cmd += ["--n", str(args.n), "--params", str(args.params), "--memory", str(args.memory)]
            cmd += ["--threads", str(args.threads)]
            env = dict(os.environ)
            if args.threads:  # numpy's BLAS reads these when it loads
                for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                    env[var] = str(args.threads)
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                last = (r.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{method}: failed ({last})")
                continue
            results[method] = json.loads(r.stdout.strip().splitlines()[-1])

    print(
        f"{'method':<8}{'seconds':>9}{'peak MiB':>10}{'base MiB':>10}{'reads':>7}{'blocks':>7}  EVR"
    )
    for name, r in results.items():
        evr = " ".join(f"{v:.4f}" for v in r["evr"])
        print(
            f"{name:<8}{r['sec']:>9.2f}{r['peak_mb']:>10.0f}{r['base_mb']:>10.0f}"
            f"{r['reads']:>7}{r['blocks']:>7}  {evr}"
        )
    if len(results) == 2:
        a, b = (np.asarray(results[k]["coords"]) for k in ("gram", "dense"))
        b = b * np.sign(np.sum(a * b, axis=0))  # the dense SVD has its own signs
        rel = np.abs(a - b).max() / np.abs(a).max()
        evr = np.abs(np.subtract(results["gram"]["evr"], results["dense"]["evr"])).max()
        print(f"gram vs dense: max |coords diff| / max |coords| = {rel:.1e}, EVR diff {evr:.1e}")


if __name__ == "__main__":
    main()
