"""The loss settings a run can train with: short names, the detbalance loss behind each, and its hyper-parameters.

The layer below the method table (:data:`dbbench.benchmark.methods.METHODS`): a method row names one of these
(``Method.loss``) and adds the sampler, classifier, model and the rest; the demo and the benchmark choose rows, not
losses. ``ce`` is each framework's own softmax cross-entropy box head, untouched: the baseline every delta is taken
against. Every other entry replaces only the box classifier's loss by a detbalance loss (class statistics and
weights come from the weights file computed for the train split).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LossSetting", "LOSS_SETTINGS", "BASELINE"]


@dataclass(frozen=True)
class LossSetting:
    """One loss setting.

    Attributes:
        key: short name (``Method.loss`` of the method rows that train it).
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


#: the framework's own softmax cross-entropy: the loss, and the method row, every delta is taken against
BASELINE = "ce"

#: The box heads' loss settings by key (the dense heads': :data:`dbbench.training.models.HEAD_LOSSES`); each is
#: the ``loss`` of a row of the method table.
LOSS_SETTINGS: dict[str, LossSetting] = {
    d.key: d
    for d in (
        LossSetting("ce", "softmax CE (framework default)", None),
        LossSetting("wce", "weighted CE 1/sqrt(freq)", "WeightedCrossEntropyLoss"),
        # beta 0.9, the smallest of Cui et al.'s grid (0.9, 0.99, 0.999, 0.9999): with the default 0.99 a class of one
        # image among 128 long-tailed classes (1-300 instances) weighs 55x an average instance and Faster R-CNN
        # diverged in its first minute (Inf/NaN boxes); 0.9 caps that at 9.7x (7.9x trained on the 8-class set)
        LossSetting("cbfocal-b0.9", "class-balanced focal (beta 0.9)", "ClassBalancedFocalLoss", {"beta": 0.9}),
        LossSetting("eql", "equalization loss", "EqualizationLoss"),
        LossSetting("eqlv2", "equalization loss v2", "EQLv2Loss"),
        # the classifier started at class probability 0.01 (bias -log 99, as the sigmoid focal loss starts it)
        # instead of the official bias 0, whose summed K-class sigmoid loss starts near K log 2
        LossSetting("eqlv2-p0.01", "equalization loss v2, prior 0.01", "EQLv2Loss", {"prior_prob": 0.01}),
        LossSetting("seesaw", "seesaw loss", "SeesawLoss"),
        LossSetting("federated", "federated loss", "FederatedLoss"),
        LossSetting("bags", "balanced group softmax", "BAGSLoss"),
    )
}
