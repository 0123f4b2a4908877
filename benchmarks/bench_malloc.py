"""Page faults and seconds per forward pass on a CPU with glibc's malloc as it comes and as
``engine.devices.keep_freed_cpu_memory`` sets it, in child processes taken in turns:

    python benchmarks/bench_malloc.py   # digits CNN (1,797 digits), ResNet-20 (1,024 images)

The default side runs with ``MALLOC_ARENA_MAX`` set to glibc's own default for 64-bit
(8 x cores), which changes nothing in glibc but tells ``keep_freed_cpu_memory`` that the
user has tuned malloc, so it leaves it alone. Each child times whole inference passes over
the data at each batch size (one warm pass, then the median of ``--reps``, CPU time) and
counts the minor page faults of the timed passes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(1)
from engine.devices import keep_freed_cpu_memory
from engine.models import build_model
arch, n, shape, sizes, reps = json.loads(sys.argv[1])
tuned = keep_freed_cpu_memory()
m = build_model(arch, seed=0).eval().to(memory_format=torch.channels_last)
x = torch.randn(n, *shape).to(memory_format=torch.channels_last)
out = {"tuned": tuned}
for b in sizes:
    def one():
        with torch.inference_mode():
            for i in range(0, n, b):
                m(x[i : i + b])
    one()
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ts = []
    for _ in range(reps):
        t = time.process_time()
        one()
        ts.append(time.process_time() - t)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / reps
    out[b] = (sorted(ts)[reps // 2], faults)
print(json.dumps(out))
"""

CASES = {
    "digits_cnn": ("digits_cnn", 1797, [1, 8, 8], [256, 512, 1024, 1797]),
    "resnet20": ("resnet20", 1024, [3, 32, 32], [128, 512, 1024]),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--case", choices=sorted(CASES), action="append")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2, help="child pairs per case, in turns")
    args = p.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo, "OMP_NUM_THREADS": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    default = {**env, "MALLOC_ARENA_MAX": str(8 * (os.cpu_count() or 1))}
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; 1 thread, CPU time")
    for case in args.case or list(CASES):
        arch, n, shape, sizes = CASES[case]
        spec = json.dumps([arch, n, shape, sizes, args.reps])
        runs: dict[str, list[dict]] = {"glibc default": [], "kept for reuse": []}
        for _ in range(args.rounds):
            for name, e in (("glibc default", default), ("kept for reuse", env)):
                got = subprocess.run([sys.executable, "-c", CHILD, spec], env=e, check=True,
                                     capture_output=True, text=True)  # fmt: skip
                runs[name].append(json.loads(got.stdout))
        print(f"\n{case}, {n} samples: seconds a pass (median of the rounds), page faults a pass")
        for b in sizes:
            row = []
            for name, rs in runs.items():
                s = statistics.median(r[str(b)][0] for r in rs)
                f = statistics.median(r[str(b)][1] for r in rs)
                row.append((s, f))
                assert all(r["tuned"] == (name == "kept for reuse") for r in rs)
            (s0, f0), (s1, f1) = row
            print(f"  batch {b:5d}: default {s0:.3f} s, {f0:9.0f} faults; "
                  f"kept {s1:.3f} s, {f1:7.0f} faults; {s0 / s1:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
