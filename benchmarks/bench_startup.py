"""Time whole commands from process start to exit (issue 17: commands that answer at once).

Targets: ``--help`` under 0.5 s, ``info F`` and ``plot F`` under 1 s, the app's first paint
under 1.5 s. Makes a small 2D surface file in a temporary folder (``SurfaceWriter``, 21x21,
every point finished), then runs each command as a fresh process (``python -m tui_landscape
...``, this checkout first on the path) several times and prints the median and the minimum.
``tui ...: first paint`` runs ``tui-landscape tui`` headless with an auto-pilot that ends the
process (``os._exit``, so work left in the background waits for nobody) once the first screen
has been drawn: on the folder (the browser), on a config (the setup screen) and on a surface
file (the plot view). One warm-up run first fills the page cache:

    python benchmarks/bench_startup.py              # 7 runs of each
    python benchmarks/bench_startup.py --repeat 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_browser import make_surface  # noqa: E402  (a sibling script, found by the path above)

# `tui-landscape tui ARGS`, headless, ended by the auto-pilot once the screen named by the first
# argument is on top and has been drawn (its compose, mount and first refresh done).
FIRST_PAINT = """
import os, sys
from textual.app import App

wanted, args = sys.argv[1], sys.argv[2:]
run = App.run

async def painted(pilot):
    while type(pilot.app.screen).__name__ != wanted:
        await pilot.pause(0.005)
    pilot.app.screen.call_after_refresh(os._exit, 0)  # once the screen has been drawn

App.run = lambda self, **kw: run(self, headless=True, size=(100, 40), auto_pilot=painted)
sys.argv = ["tui-landscape", "tui", *args]
from tui_landscape.cli import main
main()
raise SystemExit("the app ended before its first paint")
"""


def time_process(argv: list[str], repeat: int, env: dict[str, str]) -> list[float]:
    times = []
    for i in range(repeat + 1):
        t = time.perf_counter()
        subprocess.run(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, check=True)
        if i:  # the first run only warms the page cache
            times.append(time.perf_counter() - t)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--points", type=int, default=21, help="points per axis")
    args = p.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100", "LINES": "40"}
    # Bytecode is cached, as it is for an installed package (pip compiles it): without the
    # cache every run compiles the project's modules again (about 0.12 s on the CLI path).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cli = [sys.executable, "-m", "tui_landscape"]
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "s.h5"
        cfg = str(REPO / "sample_configs" / "digits_2d.toml")
        make_surface(f, args.points)
        cases = {
            "--help": [*cli, "--help"],
            "info F": [*cli, "info", str(f)],
            "plot F": [*cli, "plot", str(f)],
            "import tui_landscape.app": [sys.executable, "-c", "import tui_landscape.app"],
            "tui FOLDER: first paint": [sys.executable, "-c", FIRST_PAINT, "BrowserScreen", tmp],
            "tui CONFIG: first paint": [sys.executable, "-c", FIRST_PAINT, "SetupScreen", cfg],
            "tui FILE: first paint": [sys.executable, "-c", FIRST_PAINT, "PlotScreen", str(f)],
            "python (nothing)": [sys.executable, "-c", "pass"],
        }
        print(f"{'command':<26} {'median s':>9} {'min s':>7}   ({args.repeat} runs each)")
        for name, argv in cases.items():
            times = time_process(argv, args.repeat, env)
            print(f"{name:<26} {statistics.median(times):>9.3f} {min(times):>7.3f}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load}; {REPO}")


if __name__ == "__main__":
    main()
