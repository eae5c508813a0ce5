"""Fixtures of the detectron2 adapter tests (helpers live in d2_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from d2_helpers import write_weights_file


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory) -> Path:
    """A valid weights file for the tiny config's 8 classes (1/sqrt(frequency) weights, background 1)."""
    return write_weights_file(tmp_path_factory.mktemp("weights") / "weights.json")
