"""The losses a demo can compare: short names, the detbalance loss behind each, and its demo hyper-parameters.

``ce`` is each framework's own softmax cross-entropy box head, untouched: the baseline every delta is taken
against. Every other entry replaces only the box classifier's loss by a detbalance loss (class statistics and
weights come from the weights file the demo computes for the train split).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DemoLoss", "DEMO_LOSSES", "BASELINE", "ORACLE", "parse_losses"]


@dataclass(frozen=True)
class DemoLoss:
    """One entry of the comparison.

    Attributes:
        key: short name used on the command line and in the table.
        label: readable name for tables and plots.
        loss: key of :data:`detbalance.losses.LOSSES`, or ``None`` for the framework's own cross-entropy.
        hyper: keyword hyper-parameters of that loss (its defaults where empty).
    """

    key: str
    label: str
    loss: str | None
    hyper: dict = field(default_factory=dict)

    def settings(self) -> dict:
        """Every hyper-parameter of the loss: its defaults (the core module's signature) updated by ``hyper``.

        Both runners set all of them, so that a framework's config file cannot make the frameworks train different
        losses under one name (the tiny MMDetection config once gave Federated ``num_sampled=4``, Detectron2 50).
        """
        if self.loss is None:
            return {}
        from detbalance.losses import LOSS_TABLE

        return {**LOSS_TABLE[self.loss].defaults(), **self.hyper}


#: the loss every demo compares against: the framework's own softmax cross-entropy
BASELINE = "ce"
#: name of the balanced-train ceiling in tables (cross-entropy trained on the class-balanced training set)
ORACLE = "oracle"

DEMO_LOSSES: dict[str, DemoLoss] = {
    d.key: d
    for d in (
        DemoLoss("ce", "softmax CE (framework default)", None),
        DemoLoss("wce", "weighted CE 1/sqrt(freq)", "WeightedCrossEntropyLoss"),
        DemoLoss("cbfocal", "class-balanced focal", "ClassBalancedFocalLoss"),
        # beta 0.9, the smallest of Cui et al.'s grid (0.9, 0.99, 0.999, 0.9999): with the default 0.99 a class of one
        # image among 128 long-tailed classes (1-300 instances) weighs 55x an average instance and Faster R-CNN
        # diverged in its first minute (Inf/NaN boxes); 0.9 caps that at 9.7x (7.9x trained on the 8-class set)
        DemoLoss("cbfocal-b0.9", "class-balanced focal (beta 0.9)", "ClassBalancedFocalLoss", {"beta": 0.9}),
        DemoLoss("eql", "equalization loss", "EqualizationLoss"),
        DemoLoss("eqlv2", "equalization loss v2", "EQLv2Loss"),
        # the classifier started at class probability 0.01 (bias -log 99, as the sigmoid focal loss starts it)
        # instead of the official bias 0, whose summed K-class sigmoid loss starts near K log 2
        DemoLoss("eqlv2-p0.01", "equalization loss v2, prior 0.01", "EQLv2Loss", {"prior_prob": 0.01}),
        DemoLoss("seesaw", "seesaw loss", "SeesawLoss"),
        DemoLoss("federated", "federated loss", "FederatedLoss"),
        DemoLoss("bags", "balanced group softmax", "BAGSLoss"),
    )
}


def parse_losses(text: str) -> list[DemoLoss]:
    """``"ce,wce,seesaw"`` -> entries, the baseline first (added when missing), duplicates removed."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in DEMO_LOSSES]
    if unknown:
        raise ValueError(f"unknown loss {unknown[0]!r}; expected a comma-separated list of {sorted(DEMO_LOSSES)}")
    ordered = [BASELINE] + [k for k in dict.fromkeys(keys) if k != BASELINE]
    return [DEMO_LOSSES[k] for k in ordered]
