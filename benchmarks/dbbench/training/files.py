"""Atomic file writes for the experiments' outputs (a file that exists is complete), through detbalance's writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

from detbalance.weights.file import write_text_atomic

__all__ = ["write_json", "write_text"]


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`~detbalance.weights.file.write_text_atomic`), creating its
    folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


def write_json(path: str | os.PathLike, data, *, indent: int | None = None) -> Path:
    """Write ``data`` as json to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=indent))
