"""What a dense head (RetinaNet, FCOS, ATSS) refuses, in both frameworks: a loss that cannot serve it or was built
for another number of classes (when the model is built), and per-box annotation weights (in a training batch).

Dense heads train every anchor of a box alike, so they cannot apply a weight per box; a batch whose boxes carry
weights other than 1 raises instead of being trained as if every weight were 1. The box heads apply them.

Example:
    >>> import torch
    >>> refuse_box_weights([None, torch.ones(2)], "RetinaHead", "gt_instances.weights", ["StandardRoIHead"])
    >>> refuse_box_weights([torch.tensor([1.0, 0.0])], "RetinaHead", "gt_instances.weights", ["StandardRoIHead"])
    Traceback (most recent call last):
    ...
    ValueError: the dense head RetinaHead got per-box weights (gt_instances.weights) other than 1, expected none: ...
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import Tensor, nn

from .heads import check_dense_head_loss

__all__ = ["check_dense_head", "refuse_box_weights"]


def check_dense_head(loss: nn.Module, head: str, num_classes: int, num_classes_key: str) -> None:
    """Raise ``ValueError`` unless ``loss`` trains K sigmoid logits per anchor
    (:func:`~detbalance.losses.check_dense_head_loss`, naming the loss and ``head``) for the head's
    ``num_classes``; a class-count mismatch names both numbers and the setting ``num_classes_key``."""
    check_dense_head_loss(loss, head)
    if loss.num_classes != num_classes:
        raise ValueError(
            f"loss {type(loss).__name__} of {head} was built for num_classes={loss.num_classes}, expected "
            f"{num_classes} ({num_classes_key})"
        )


def refuse_box_weights(per_image: Iterable[Tensor | None], head: str, field: str, box_heads: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the dense ``head`` when an image's per-box weights (``field``; None: the image
    has none) hold a value other than 1; ``box_heads`` are the framework's heads that apply them."""
    for weights in per_image:
        if weights is not None and bool((weights != 1).any()):
            raise ValueError(
                f"the dense head {head} got per-box weights ({field}) other than 1, expected none: dense heads train "
                f"every anchor of a box alike and do not apply per-box weights; only the box heads "
                f"({', '.join(box_heads)}) do. Give every box weight 1, or train one of those"
            )
