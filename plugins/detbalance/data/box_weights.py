"""Per-box annotation weights: the one check both frameworks' loaders apply to an annotation's ``"weight"``.

An annotation (COCO json, a Detectron2 dataset dict) may carry ``"weight"``: a finite number >= 0, 1 where
absent, multiplying that box's classification loss (0 removes it). Numbers only: a string such as ``"0.5"``, a
bool, NaN, an infinity or a negative number raises ``ValueError`` naming the annotation and the value.

Example:
    >>> annotation_weight({"bbox": [0, 0, 4, 4]}, "id=1")
    1.0
    >>> annotation_weight({"weight": 2}, "id=1")
    2.0
    >>> annotation_weight({"weight": "0.5"}, "id=7")
    Traceback (most recent call last):
        ...
    ValueError: annotation id=7 has weight='0.5'; expected a finite number >= 0
"""

from __future__ import annotations

from collections.abc import Mapping

from .._checks import check_number

__all__ = ["WEIGHT_KEY", "annotation_weight"]

#: Key of the per-box weight in an annotation.
WEIGHT_KEY = "weight"


def annotation_weight(annotation: Mapping, where: str) -> float:
    """The annotation's ``"weight"`` as a float (1.0 where absent).

    Args:
        annotation: one annotation (a mapping).
        where: how the message names the annotation, e.g. ``"id=41"`` or ``"in image 'a.png'"``.

    Raises:
        ValueError: ``"annotation {where} has weight={value!r}; expected a finite number >= 0"``.
    """
    value = annotation.get(WEIGHT_KEY, 1.0)
    try:
        return check_number(WEIGHT_KEY, value, minimum=0)
    except ValueError:
        raise ValueError(f"annotation {where} has {WEIGHT_KEY}={value!r}; expected a finite number >= 0") from None
