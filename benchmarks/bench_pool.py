"""Wall time of one surface with 1 worker against N workers, and whether the surfaces agree.

Each configuration runs the real command (``python -m tui_landscape compute``) in a fresh
process on the same grid, so start-up (importing torch, spawning workers, loading the model and
data in each) is counted, as a user would see it:

    python benchmarks/bench_pool.py                          # CPU: 1 worker against 2
    python benchmarks/bench_pool.py --device cuda --devices cuda:0,cuda:0   # 2 workers, 1 GPU
    python benchmarks/bench_pool.py --device cuda --devices cuda:0,cuda:1   # 2 GPUs

The model is an untrained digits CNN (no recipe to train first), on the embedded digits data.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run(out: Path, device: str, extra: list[str], grid: int) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "tui_landscape", "compute", "sample_configs/digits_2d.toml"]
    sets = ["model.checkpoint=", f"grid.x=-1:1:{grid}", f"grid.y=-1:1:{grid}"]
    sets += [f"compute.device={device}", *extra]
    for s in sets:
        cmd += ["--set", s]
    t = time.perf_counter()
    r = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    m = re.search(r"Computed \d+ points in ([\d.]+) s", r.stdout)
    return wall, float(m.group(1)) if m else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--devices", default="", help="comma-separated devices of the N workers")
    p.add_argument("--workers", type=int, default=2, help="N (without --devices)")
    p.add_argument("--grid", type=int, default=31, help="points per axis")
    args = p.parse_args()
    from engine.formats import read_surface

    pool = (
        ["compute.devices=[" + ",".join(f'"{d}"' for d in args.devices.split(",")) + "]"]
        if args.devices
        else [f"compute.workers={args.workers}"]
    )
    n = len(args.devices.split(",")) if args.devices else args.workers
    with tempfile.TemporaryDirectory() as tmp:
        one = run(Path(tmp, "one.h5"), args.device, ["compute.workers=1"], args.grid)
        many = run(Path(tmp, "many.h5"), args.device, pool, args.grid)
        a, b = read_surface(Path(tmp, "one.h5")), read_surface(Path(tmp, "many.h5"))
        same = all(np.array_equal(a.values[k], b.values[k], equal_nan=True) for k in a.values)
        close = all(np.allclose(a.values[k], b.values[k], equal_nan=True) for k in a.values)
    print(f"{args.grid}x{args.grid} grid, digits CNN, device {args.device}")
    print(f"{'run':<28}{'wall s':>10}{'computing s':>14}")
    print(f"{'1 worker (in process)':<28}{one[0]:>10.2f}{one[1]:>14.2f}")
    print(f"{f'{n} workers ' + (args.devices or ''):<28}{many[0]:>10.2f}{many[1]:>14.2f}")
    print(f"wall ratio (1 worker / {n}): {one[0] / many[0]:.2f}x")
    print(f"surfaces identical: {same}" + ("" if same else f" (equal to float tolerance: {close})"))


if __name__ == "__main__":
    main()
