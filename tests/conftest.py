"""Shared test fixtures: repository paths, the read-only reference data, deterministic torch settings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DETBALANCE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only reference data folder; tests needing it skip where it is absent (a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (set DETBALANCE_SHARED_DATA to its path)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def lvis_v1_stats(shared_data) -> Path:
    """The LVIS v1 per-category statistics file of the reference data (skips where it is absent)."""
    path = shared_data / "lvis_v1_train_stats.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
