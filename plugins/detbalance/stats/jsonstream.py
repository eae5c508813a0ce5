"""Streaming reader for a JSON object whose large members are arrays (COCO/LVIS annotation files).

Only the standard library: the file is read in chunks and each array element is decoded by ``json``'s C scanner,
so memory stays bounded by the largest single element instead of the whole document (LVIS v1 train, ~1.3 M boxes
with polygons, is about 1 GB of text and ~10 GB once fully loaded by ``json.load``).

Errors raise ``ValueError`` with the file, line, column and character offset of the problem, as ``json.load``
would report them for the whole file.
"""

from __future__ import annotations

import json
import json.scanner
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["iter_object"]

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER_TAIL = re.compile(r"[0-9eE.+\-]*")  # text after a decoded value that could still extend a number
_CHUNK = 1 << 22  # characters per read


class _Stream:
    def __init__(self, f, path: str, on_read: Callable[[int], None] | None):
        self.f, self.path, self.on_read = f, path, on_read
        self.buf, self.pos, self.eof = "", 0, False
        self.offset = 0  # characters dropped before buf
        self.lines = 0  # newlines dropped before buf
        self.last_newline = -1  # absolute offset of the last dropped newline
        self.scan = json.scanner.make_scanner(json.JSONDecoder())

    def fill(self) -> None:
        """Drop consumed text and append at least one chunk (more when the pending text is already large)."""
        if self.eof:
            return
        dropped = self.buf[: self.pos]
        n = dropped.count("\n")
        if n:
            self.lines += n
            self.last_newline = self.offset + dropped.rfind("\n")
        self.offset += self.pos
        data = self.f.read(max(_CHUNK, len(self.buf) - self.pos))
        if self.on_read is not None and data:
            self.on_read(len(data.encode("utf-8")) if not data.isascii() else len(data))
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        self.eof = not data

    def error(self, msg: str, pos: int) -> ValueError:
        absolute = self.offset + pos
        line = self.lines + self.buf.count("\n", 0, pos) + 1
        nl = self.buf.rfind("\n", 0, pos)
        col = pos - nl if nl >= 0 else absolute - self.last_newline
        return ValueError(f"{self.path}: malformed JSON: {msg}: line {line} column {col} (char {absolute})")

    def peek(self) -> str:
        """Skip whitespace and return the next character ('' at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos : self.pos + 1]
            self.fill()

    def expect(self, chars: str, what: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise self.error(f"Expecting {what}", self.pos)
        self.pos += 1
        return c

    def value(self) -> Any:
        self.peek()  # the scanner does not skip leading whitespace
        while True:
            try:
                obj, end = self.scan(self.buf, self.pos)
            except StopIteration as e:
                if not self.eof:
                    self.fill()
                    continue
                raise self.error("Expecting value", e.value) from None
            except json.JSONDecodeError as e:
                if not self.eof:
                    self.fill()
                    continue
                raise self.error(e.msg, e.pos) from None
            if not self.eof and _NUMBER_TAIL.fullmatch(self.buf, end):  # a number may continue in the next chunk
                self.fill()
                continue
            self.pos = end
            return obj

    def elements(self) -> Iterator[Any]:
        self.expect("[", "'['")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self.expect(",]", "',' delimiter") == "]":
                return


def iter_object(
    path: str | os.PathLike, stream_keys: tuple[str, ...], on_read: Callable[[int], None] | None = None
) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, value)`` for each member of the top-level JSON object in ``path``.

    For keys in ``stream_keys`` whose value is an array, ``value`` is an iterator over its elements, which must be
    consumed before the next member is requested (it is drained automatically otherwise). Other values are
    decoded whole. ``on_read(n)`` is called with the number of bytes read, for progress bars.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.json"
        >>> _ = p.write_text('{"info": {"v": 1}, "images": [{"id": 1}, {"id": 2}]}')
        >>> [(k, list(v) if k == "images" else v) for k, v in iter_object(p, ("images",))]
        [('info', {'v': 1}), ('images', [{'id': 1}, {'id': 2}])]
    """
    with open(path, encoding="utf-8") as f:
        s = _Stream(f, str(path), on_read)
        s.expect("{", "'{' (a JSON object)")
        if s.peek() == "}":
            s.pos += 1
        else:
            while True:
                if s.peek() != '"':
                    raise s.error("Expecting property name enclosed in double quotes", s.pos)
                key = s.value()
                s.expect(":", "':' delimiter")
                if key in stream_keys and s.peek() == "[":
                    items = s.elements()
                    yield key, items
                    for _ in items:  # drain what the caller left
                        pass
                else:
                    yield key, s.value()
                if s.expect(",}", "',' delimiter") == "}":
                    break
        if s.peek() != "":
            raise s.error("Extra data", s.pos)
