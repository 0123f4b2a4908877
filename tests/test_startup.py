"""Commands that only read files answer at once: they never import torch (issue 17).

Importing torch costs seconds; ``--help``, ``info``, ``plot`` and ``compare`` have no use for
it. Each command runs in a fresh interpreter, which then reports whether torch was loaded.
The timings themselves are ``benchmarks/bench_startup.py``'s, not a test's.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from engine.formats import Provenance, SurfaceWriter
from engine.grid import Grid
from tests.conftest import REPO

CHECK = """
import sys
from typer.testing import CliRunner
from tui_landscape.cli import app
r = CliRunner().invoke(app, sys.argv[1:])
assert r.exit_code == 0, (r.exit_code, r.output, r.exception)
print(sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY.split(','))))
"""


def heavy_modules(*args: str, heavy: str = "torch") -> str:
    """The packages of ``heavy`` (comma-separated) that ``tui-landscape ARGS`` imported."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {heavy!r}" + CHECK, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def surface(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("startup") / "s.h5"
    g = Grid.parse("-1:1:5", "-1:1:5")
    X, Y = np.meshgrid(g.x.coordinates(), g.y.coordinates())
    with SurfaceWriter.create(path, g, ["train_loss"], Provenance(), "d.h5") as w:
        for k, v in enumerate((X**2 + 2 * Y**2).ravel()):
            w.record(k, {"train_loss": float(v)})
    return str(path)


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("info", "{f}"),
        ("plot", "{f}"),
        ("compare", "{f}", "{f}"),
        ("ps", "{d}"),
        ("plot", "{f}", "--watch"),
    ],
    ids=["help", "info", "plot", "compare", "ps", "plot-watch"],
)
def test_reading_commands_do_not_import_torch(args, surface):
    d = os.path.dirname(surface)
    assert heavy_modules(*(a.format(f=surface, d=d) for a in args)) == "[]"


def test_the_check_sees_torch_when_a_command_loads_it():
    """The same check reports torch where a command does import it: it can fail."""
    assert heavy_modules("models") != "[]"


def test_help_imports_no_numpy_h5py_or_plotext():
    """`--help` imports every command's module: those import numpy, h5py and plotext where the
    command runs, which took `--help` from 0.7 s to under 0.5 s (benchmarks/bench_startup.py)."""
    heavy = "torch,numpy,h5py,plotext,textual"
    assert heavy_modules("--help", heavy=heavy) == "[]"
    assert heavy_modules("compute", "--help", heavy=heavy) == "[]"
    assert heavy_modules("info", "--help", heavy=heavy) == "[]"


def test_the_app_imports_no_torch_before_its_first_paint():
    """The setup screen's engine imports (models, data sets: torch) wait for its workers; the
    app took ~3.9 s to first paint when its module imported them (issue 17)."""
    code = (
        "import sys, tui_landscape.app, tui_landscape.screens.setup; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env=env, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"
