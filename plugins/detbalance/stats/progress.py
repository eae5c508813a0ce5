"""Progress bars (tqdm, on stderr) for readers of large inputs."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

__all__ = ["LARGE_FILE_BYTES", "LARGE_ITEM_COUNT", "byte_progress", "item_progress"]

#: Inputs above these sizes are "large": the command-line tool shows a progress bar for them.
LARGE_FILE_BYTES = 20 * 2**20
LARGE_ITEM_COUNT = 2000

T = TypeVar("T")


@contextlib.contextmanager
def byte_progress(path: str | os.PathLike, *, enabled: bool, desc: str) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback ``on_read(nbytes)`` advancing a bar over the size of ``path`` (``None`` when disabled)."""
    if not enabled:
        yield None
        return
    with tqdm(total=os.path.getsize(path), unit="B", unit_scale=True, desc=desc, leave=False) as bar:
        yield bar.update


def item_progress(items: Iterable[T], *, total: int, enabled: bool, desc: str) -> Iterable[T]:
    """``items`` wrapped in a progress bar when ``enabled``."""
    return tqdm(items, total=total, desc=desc, leave=False) if enabled else items
