"""Which loss can train which kind of head: the one rule both framework adapters apply when they build a model.

* A **box head** (second stage of Faster/Mask/Cascade R-CNN) classifies sampled proposals; it takes every loss
  of :data:`~detbalance.losses.LOSSES`, whatever its layout (K + 1 softmax, K sigmoid, K + 2 Seesaw, K + 1 + G
  BAGS), because
  the adapters size its classifier with the loss's ``num_logits`` and score with its ``predict_scores``.
* A **dense head** (RetinaNet, FCOS, ATSS) scores every anchor with exactly K per-class sigmoid logits and
  no background column, and scores detections with that sigmoid. It takes the losses whose layout is that one:
  the K-column losses of :data:`~detbalance.losses.LOSSES` and the losses of
  :data:`~detbalance.losses.DENSE_LOSSES` (:func:`dense_head_losses`). A softmax loss (K + 1 columns) or Seesaw
  (K + 2) cannot serve it: :func:`check_dense_head_loss` raises, naming the loss and the head.
* The losses of :data:`~detbalance.losses.DENSE_LOSSES` are made for dense heads and normalise by the number of
  foreground anchors; box heads do not offer them (:func:`check_box_head_loss`).
"""

from __future__ import annotations

from torch import nn

from ._base import ClassificationLoss

__all__ = ["dense_head_losses", "check_dense_head_loss", "check_box_head_loss"]


def dense_head_losses() -> dict[str, type[ClassificationLoss]]:
    """Name -> class of every loss a dense head takes: K sigmoid logits per anchor."""
    from . import DENSE_LOSSES, LOSSES

    return {**{name: cls for name, cls in LOSSES.items() if cls.extra_columns == 0}, **DENSE_LOSSES}


def check_dense_head_loss(loss: nn.Module | type, head: str) -> None:
    """Raise ``ValueError`` naming the loss (a module or its class) and ``head`` unless it trains K sigmoid
    logits per anchor."""
    cls = loss if isinstance(loss, type) else type(loss)
    allowed = dense_head_losses()
    columns_differ = not isinstance(loss, type) and getattr(loss, "num_logits", None) != getattr(
        loss, "num_classes", None
    )
    if cls not in allowed.values() or columns_differ:
        raise ValueError(
            f"loss {cls.__name__} cannot serve the dense head {head}: a dense head outputs K sigmoid logits per "
            f"anchor ([R, K]), {cls.__name__} trains logits {getattr(cls, 'layout', '?')}; "
            f"expected one of {sorted(allowed)}"
        )


def check_box_head_loss(name: str, head: str, what: str = "the loss") -> None:
    """Raise ``ValueError`` naming loss ``name`` and ``head`` when the loss is made for dense heads only;
    ``what`` names the setting that chose it (e.g. ``"DETBALANCE.LOSS"``)."""
    from . import DENSE_LOSSES, LOSSES

    if name in DENSE_LOSSES:
        raise ValueError(
            f"{what} is {name!r}, which cannot serve the box head {head}: it is made for dense heads (RetinaNet, "
            f"FCOS, ATSS); expected one of {sorted(LOSSES)}"
        )
