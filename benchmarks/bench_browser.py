"""Time the file browser's listing of a folder of surface files (issue 16: under 1 s for 500).

Makes N realistic surface files in a temporary folder (51x51, 2D, four surfaces, every point
finished, the resolved config stored as TOML: one written by ``SurfaceWriter``, the rest
copies of it) and times ``list_folder``, the function the browser's worker runs, as the
median of several runs. For scale it also times the old way (``read_surface`` per file):

    python benchmarks/bench_browser.py              # 500 files, median of 5
    python benchmarks/bench_browser.py --files 2000 --repeat 9
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_surface(path: Path, points: int) -> None:
    """A finished points x points surface of ours with 4 surfaces and a stored config."""
    from engine.formats import SURFACE_NAMES, Provenance, SurfaceWriter
    from engine.grid import Grid

    g = Grid.parse(f"-1:1:{points}", f"-1:1:{points}")
    X, Y = np.meshgrid(g.x.coordinates(), g.y.coordinates())
    z = (X**2 + 2 * Y**2 + 0.05).ravel()
    provenance = Provenance(
        config=(REPO / "sample_configs" / "digits_2d.toml").read_text(), dir_type="weights"
    )
    dir_file = path.name.removesuffix(".h5") + ".directions.h5"
    with SurfaceWriter.create(path, g, list(SURFACE_NAMES), provenance, dir_file) as w:
        for k, v in enumerate(z):
            w.record(
                k, {"train_loss": v, "train_acc": 90 - v, "test_loss": v + 0.1, "test_acc": 89 - v}
            )


def make_folder(folder: Path, n: int, points: int) -> None:
    first = folder / "surface_0000.h5"
    make_surface(first, points)
    for i in range(1, n):
        shutil.copyfile(first, folder / f"surface_{i:04d}.h5")


def median_time(fn, repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--files", type=int, default=500)
    p.add_argument("--points", type=int, default=51, help="points per axis")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-old", action="store_true", help="skip timing read_surface per file")
    args = p.parse_args()
    from engine.formats import read_surface
    from tui_landscape.screens.listing import list_folder, surface_files

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_folder(folder, args.files, args.points)
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        rows = list_folder(folder)  # also warms the page cache, as a second listing finds it
        assert len(rows) == args.files and all(r.cells[3] == "100%" for r in rows), rows[:2]
        med, times = median_time(lambda: list_folder(folder), args.repeat)
        print(f"{args.files} files of {args.points}x{args.points} (2D, 4 surfaces), {size:.1f} MiB")
        spread = f"min {min(times):.3f}, max {max(times):.3f}"
        per_file = f"{1e3 * med / args.files:.2f} ms/file"
        print(f"list_folder: median {med:.3f} s over {args.repeat} runs ({spread}); {per_file}")
        if not args.no_old:
            files = surface_files(folder)
            old, _ = median_time(lambda: [read_surface(f) for f in files], args.repeat)
            print(f"read_surface per file (before):      median {old:.3f} s")
        load = os.getloadavg()
        print(f"machine: {os.cpu_count()} CPUs, load average " + " ".join(f"{x:.2f}" for x in load))


if __name__ == "__main__":
    main()
