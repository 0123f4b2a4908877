"""Shared fixtures and helpers.

Fixture policy (keep the whole suite within 10 minutes on two cores, and its timings honest):

- Trained recipe checkpoints are trained once per session, in the session fixtures below
  (``digits_cnn_recipe``, ``digits_mlp_recipe``, ``bn_recipes``), never inside a test body.
  A test or module that uses a ``recipe:`` checkpoint, directly or through a sample config,
  asks for its fixture; the training then shows in ``--durations`` as that fixture's set-up,
  the same whichever test runs first, and subprocesses find the checkpoint already there.
- Where the cache goes: ``$PYTEST_TUI_CACHE`` when set (to keep checkpoints between local
  runs), else a fresh folder under pytest's temporary directory, so every CI run trains from
  scratch as a new user would. Either way it is exported as ``$TUI_LANDSCAPE_CACHE`` for this
  process and every child (CLI runs, pool workers, torchrun ranks); a ``$TUI_LANDSCAPE_CACHE``
  set outside (``.ci/run`` sets one) is replaced, and the user's ``~/.cache`` is never touched.
- Other expensive set-ups (a computed surface, a trained model) are module- or session-scoped
  fixtures whose results tests read and never change (a test that must change one copies it).
- Every wait has a deadline (``wait_until`` here, ``tests.test_tui.wait_for`` in the app):
  wait for a condition (a file, a point done, an event), never for a fixed time.
- Benchmarks run through ``run_script`` on their ``--tiny`` smoke size: they are checked to
  run end to end and print their figures, not timed.
"""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

_CACHE = (
    Path(os.environ.get("PYTEST_TUI_CACHE", "")) if os.environ.get("PYTEST_TUI_CACHE") else None
)


_RUNNING: list[str] = []  # the test whose body runs now, if any
_TRAINED_IN_TESTS: list[str] = []  # "test: recipe" for every recipe trained in a test body


@pytest.fixture(autouse=True, scope="session")
def _recipe_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import engine.recipes

    cache = _CACHE or tmp_path_factory.mktemp("recipes")
    os.environ["TUI_LANDSCAPE_CACHE"] = str(cache)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    train = engine.recipes.train_recipe

    def noted(r, *a, **k):  # test bodies that train into the session's cache (in this process)
        if _RUNNING and os.environ.get("TUI_LANDSCAPE_CACHE") == str(cache):
            _TRAINED_IN_TESTS.append(f"{_RUNNING[-1]}: {r.arch} ({r.doc})")
        return train(r, *a, **k)

    engine.recipes.train_recipe = noted
    yield cache
    engine.recipes.train_recipe = train


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    _RUNNING.append(item.nodeid)
    try:
        return (yield)
    finally:
        _RUNNING.pop()


def pytest_terminal_summary(terminalreporter) -> None:
    if _TRAINED_IN_TESTS:  # a test's duration then depends on the order the tests run in
        terminalreporter.section("recipes trained inside test bodies (ask for their fixture)")
        for line in _TRAINED_IN_TESTS:
            terminalreporter.write_line(line)


def _trained(name: str) -> Path:  # in a fixture's set-up, not a test body
    from engine.recipes import recipe_checkpoint

    return recipe_checkpoint(f"recipe:{name}")


@pytest.fixture(scope="session")
def digits_cnn_recipe(_recipe_cache: Path) -> Path:
    """``recipe:digits_cnn``, the demo's and most sample configs' checkpoint."""
    return _trained("digits_cnn")


@pytest.fixture(scope="session")
def digits_mlp_recipe(_recipe_cache: Path) -> Path:
    """``recipe:digits_mlp``, the model without batch norm."""
    return _trained("digits_mlp")


@pytest.fixture(scope="session")
def bn_recipes(_recipe_cache: Path) -> tuple[Path, Path]:
    """The small- and large-batch minimizers of ``digits_interpolation.toml``."""
    return _trained("digits_cnn_small_batch"), _trained("digits_cnn_large_batch")


@pytest.fixture
def chdir_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` of a child that a test will Ctrl-C: SIGINT back to its default. A test
    runner started in the background (``cmd &`` in a script) ignores SIGINT, its children
    inherit that, and Python keeps an inherited SIG_IGN: the child would never see Ctrl-C."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    proc: subprocess.Popen | None = None,
    poll: float = 0.01,
) -> None:
    """Return once ``condition()`` is true; fail after ``timeout`` seconds, or at once if
    ``proc`` has ended first, saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process ended (code {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(poll)


def run_script(path: Path, *args: str) -> str:
    """Run a script as ``python path args`` does, in this process (no second start-up of
    torch), and return what it printed; torch's thread count and sys.path are put back."""
    argv, sys_path, threads = sys.argv, list(sys.path), torch.get_num_threads()
    out = io.StringIO()
    sys.argv = [str(path), *args]
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv, sys.path[:] = argv, sys_path
        torch.set_num_threads(threads)
    return out.getvalue()
