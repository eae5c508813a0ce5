"""Filled shapes and colours of the synthetic detection set.

Every shape is drawn inside an axis-aligned square cell of side ``s`` pixels whose top-left corner is
``(x, y)``; the drawn pixels never leave the cell, so cells that do not overlap give objects that do not overlap.
Outlines are polygons in the unit square, scaled to the cell; round shapes use Pillow's ellipse primitives.

Example:
    >>> import numpy as np
    >>> from dbbench.data.shapes import SHAPES, shape_mask
    >>> mask = shape_mask("ring", x=10, y=20, size=24, image_size=64)
    >>> mask.shape, mask.dtype, bool(mask[20:44, 10:34].any()), bool(mask[:20].any())
    ((64, 64), dtype('bool'), True, False)
    >>> len(SHAPES)
    16
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["SHAPES", "COLOURS", "shape_mask"]


def _regular(n: int, inner: float | None = None, phase: float = -90.0) -> list[tuple[float, float]]:
    """Regular polygon (or star when ``inner`` is given) inscribed in the unit square's circle."""
    points = []
    steps = 2 * n if inner is not None else n
    for i in range(steps):
        radius = 0.5 if inner is None or i % 2 == 0 else inner
        angle = math.radians(phase + 360.0 * i / steps)
        points.append((0.5 + radius * math.cos(angle), 0.5 + radius * math.sin(angle)))
    return points


def _rotated(points: list[tuple[float, float]], degrees: float) -> list[tuple[float, float]]:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return [(0.5 + (x - 0.5) * c - (y - 0.5) * s, 0.5 + (x - 0.5) * s + (y - 0.5) * c) for x, y in points]


_PLUS = [
    (0.33, 0.0),
    (0.67, 0.0),
    (0.67, 0.33),
    (1.0, 0.33),
    (1.0, 0.67),
    (0.67, 0.67),
    (0.67, 1.0),
    (0.33, 1.0),
    (0.33, 0.67),
    (0.0, 0.67),
    (0.0, 0.33),
    (0.33, 0.33),
]
# The diagonal cross is the plus turned by 45 degrees and shrunk so that its arms stay inside the cell.
_X = _rotated([(0.5 + (x - 0.5) * 0.72, 0.5 + (y - 0.5) * 0.72) for x, y in _PLUS], 45.0)

# Polygons in unit-square coordinates; ``None`` marks shapes drawn with ellipse primitives.
_POLYGONS: dict[str, list[tuple[float, float]] | None] = {
    "circle": None,
    "square": [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)],
    "triangle": [(0.5, 0.0), (1.0, 1.0), (0.0, 1.0)],
    "cross": _PLUS,
    "ring": None,
    "hexagon": _regular(6, phase=0.0),
    "star": _regular(5, inner=0.2),
    "diamond": [(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)],
    "semicircle": None,
    "frame": None,
    "x_cross": _X,
    "pentagon": _regular(5),
    "arrow": [(0.0, 0.35), (0.55, 0.35), (0.55, 0.05), (1.0, 0.5), (0.55, 0.95), (0.55, 0.65), (0.0, 0.65)],
    "trapezoid": [(0.3, 0.1), (0.7, 0.1), (1.0, 0.9), (0.0, 0.9)],
    "l_shape": [(0.1, 0.0), (0.45, 0.0), (0.45, 0.65), (0.9, 0.65), (0.9, 1.0), (0.1, 1.0)],
    "t_shape": [(0.0, 0.0), (1.0, 0.0), (1.0, 0.33), (0.67, 0.33), (0.67, 1.0), (0.33, 1.0), (0.33, 0.33), (0.0, 0.33)],
}

#: Shape names in class order: class ``i`` of the synthetic set is ``SHAPES[i]``.
SHAPES: tuple[str, ...] = tuple(_POLYGONS)

#: Named RGB colours; the synthetic set gives class ``i`` colour ``i % ceil(K / 2)``.
COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (205, 45, 45)),
    ("green", (45, 170, 70)),
    ("blue", (50, 85, 215)),
    ("yellow", (225, 205, 40)),
    ("magenta", (205, 60, 200)),
    ("cyan", (40, 195, 205)),
    ("orange", (240, 135, 30)),
    ("purple", (115, 45, 165)),
)


def shape_mask(shape: str, x: int, y: int, size: int, image_size: int) -> np.ndarray:
    """Boolean mask ``[image_size, image_size]`` of ``shape`` filled inside the cell ``(x, y, size)``."""
    if shape not in _POLYGONS:
        raise ValueError(f"unknown shape {shape!r}; expected one of {list(SHAPES)}")
    if size < 4 or x < 0 or y < 0 or x + size > image_size or y + size > image_size:
        raise ValueError(
            f"cell (x={x}, y={y}, size={size}) must lie inside a {image_size}x{image_size} image with size >= 4"
        )
    canvas = Image.new("L", (image_size, image_size), 0)
    draw = ImageDraw.Draw(canvas)
    x1, y1 = x + size - 1, y + size - 1
    if shape == "circle":
        draw.ellipse((x, y, x1, y1), fill=1)
    elif shape == "ring":
        inset = max(2, round(size * 0.25))
        draw.ellipse((x, y, x1, y1), fill=1)
        draw.ellipse((x + inset, y + inset, x1 - inset, y1 - inset), fill=0)
    elif shape == "semicircle":
        draw.pieslice((x, y + size // 4, x1, y1 + size // 2), start=180, end=360, fill=1)
    elif shape == "frame":
        inset = max(2, round(size * 0.22))
        draw.rectangle((x, y, x1, y1), fill=1)
        draw.rectangle((x + inset, y + inset, x1 - inset, y1 - inset), fill=0)
    else:
        scale = size - 1
        draw.polygon([(x + px * scale, y + py * scale) for px, py in _POLYGONS[shape]], fill=1)
    return np.asarray(canvas, dtype=bool)
