"""Fixtures of the reliability tests (helpers live in rel_helpers.py)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: the detector steps here are small, and on a few CPU cores shared with other
    processes multi-threaded convolutions spend most of their time waiting at OpenMP barriers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
