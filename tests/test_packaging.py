"""The package's promises: its licence, its extras and the lint CI runs."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_licence_pyproject_names_is_there():
    assert _pyproject()["project"]["license"]["text"] == "MIT"
    assert (REPO / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_benchmark_only_packages_are_in_the_bench_extra_not_the_test_extra():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert any(r.startswith("loss-landscapes") for r in extras["bench"])
    assert not any(r.startswith("loss-landscapes") for r in extras["test"])


def test_ci_lints_with_the_ruff_that_pre_commit_runs():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    hooks = (REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    pinned = re.search(r'"ruff==([\d.]+)"', ci)
    rev = re.search(r"ruff-pre-commit\s+rev: v([\d.]+)", hooks)
    assert pinned and rev and pinned.group(1) == rev.group(1)
    assert "ruff check ." in ci and "ruff format --check ." in ci
