"""Progress bars on stderr that stay readable in a log.

On a terminal they are tqdm bars. When stderr is not a terminal (CI logs, ``| tee``, ``nohup``) a tqdm bar would
write a carriage-return refresh many times a second, which a log keeps as one endless line; there the progress is
instead one plain line per :data:`LOG_STEP_PERCENT` percent (``desc: 25% (300/1200) loss=0.812``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

__all__ = [
    "LARGE_FILE_BYTES",
    "LARGE_ITEM_COUNT",
    "LOG_STEP_PERCENT",
    "LogProgress",
    "progress_bar",
    "byte_progress",
    "item_progress",
    "show_progress",
    "PROGRESS_MODES",
]

#: Inputs above these sizes are "large": the command-line tool shows a progress bar for them.
LARGE_FILE_BYTES = 20 * 2**20
LARGE_ITEM_COUNT = 2000
#: When the tools show a progress bar (:func:`show_progress`).
PROGRESS_MODES = ("auto", "always", "never")
#: without a terminal, one progress line per this many percent.
LOG_STEP_PERCENT = 10

T = TypeVar("T")


class LogProgress:
    """The part of tqdm's interface the tools use, printing one line per :data:`LOG_STEP_PERCENT` percent."""

    def __init__(
        self,
        iterable=None,
        *,
        total: int | None = None,
        desc: str = "",
        stream=None,
        step_percent: int = LOG_STEP_PERCENT,
    ):
        if not 0 < step_percent <= 100:
            raise ValueError(f"step_percent={step_percent}; expected 0 < step_percent <= 100")
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.stream, self.step = desc, stream, step_percent
        self.n, self._next_percent, self._postfix = 0, step_percent, ""

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def set_postfix(self, **values) -> None:
        self._postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.total:
            return
        percent = 100 * self.n // self.total
        if percent >= self._next_percent:
            self._write(f"{self.desc}: {percent}% ({self.n}/{self.total})")
            self._next_percent = (percent // self.step + 1) * self.step

    def close(self) -> None:
        if self.total and self._next_percent <= 100:  # finished early (or no line yet): say where it stopped
            self._write(f"{self.desc}: {100 * self.n // self.total}% ({self.n}/{self.total})")
            self._next_percent = 101

    def _write(self, line: str) -> None:
        stream = self.stream or sys.stderr
        print(line + (f" {self._postfix}" if self._postfix else ""), file=stream, flush=True)


def progress_bar(
    iterable=None,
    *,
    total: int | None = None,
    desc: str = "",
    enabled: bool = True,
    unit: str = "it",
    unit_scale: bool = False,
    stream=None,
):
    """A tqdm bar on a terminal, :class:`LogProgress` lines otherwise, or a silent tqdm when not ``enabled``."""
    stream = stream or sys.stderr
    if enabled and not (hasattr(stream, "isatty") and stream.isatty()):
        return LogProgress(iterable, total=total, desc=desc, stream=stream)
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=not enabled,
        leave=False,
        dynamic_ncols=True,
        unit=unit,
        unit_scale=unit_scale,
        file=stream,
    )


@contextlib.contextmanager
def byte_progress(path: str | os.PathLike, *, enabled: bool, desc: str) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback ``on_read(nbytes)`` advancing a bar over the size of ``path`` (``None`` when disabled)."""
    if not enabled:
        yield None
        return
    bar = progress_bar(total=os.path.getsize(path), unit="B", unit_scale=True, desc=desc)
    try:
        yield bar.update
    finally:
        bar.close()


def show_progress(mode: str, large: bool) -> bool:
    """Whether to show a bar: ``mode`` is ``'always'``, ``'never'`` or ``'auto'`` (only for ``large`` inputs)."""
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress={mode!r}; expected one of {list(PROGRESS_MODES)}")
    return mode == "always" or (mode == "auto" and large)


def item_progress(items: Iterable[T], *, total: int, enabled: bool, desc: str) -> Iterable[T]:
    """``items`` wrapped in a progress bar when ``enabled``."""
    return progress_bar(items, total=total, desc=desc) if enabled else items
