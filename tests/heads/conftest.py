"""Fixtures of the head tests (helpers live in heads_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from heads_helpers import write_weights_file


@pytest.fixture(scope="session")
def heads_weights_file(tmp_path_factory) -> Path:
    """A weights file for the tiny configs' 8 classes (1/sqrt(frequency) weights)."""
    return write_weights_file(tmp_path_factory.mktemp("heads_weights") / "weights.json")
