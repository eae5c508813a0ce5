"""Atomic file writes for the demo's outputs (a file that exists is complete)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["write_json", "write_text"]


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json(path: str | os.PathLike, data, *, indent: int | None = None) -> Path:
    """Write ``data`` as json to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=indent))
