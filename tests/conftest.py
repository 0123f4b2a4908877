"""Shared fixtures: a per-session checkpoint cache and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Trained recipe checkpoints are cached once per test session, never in the user's home.
_CACHE = (
    Path(os.environ.get("PYTEST_TUI_CACHE", "")) if os.environ.get("PYTEST_TUI_CACHE") else None
)


@pytest.fixture(autouse=True, scope="session")
def _recipe_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = _CACHE or tmp_path_factory.mktemp("recipes")
    os.environ["TUI_LANDSCAPE_CACHE"] = str(cache)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return cache


@pytest.fixture
def chdir_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


REPO = Path(__file__).resolve().parents[1]
