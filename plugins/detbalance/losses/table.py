"""One table of the losses: each loss's class, the statistic it needs and its hyper-parameters.

The framework adapters are generated from this table, so that adding a loss is one entry here:

- Detectron2: ``cfg.DETBALANCE.<KEY>`` holds one config key per hyper-parameter (``lambda_`` -> ``LAMBDA``);
- MMDetection: ``DB<name>`` takes the core loss's own arguments, its statistics argument named ``stats_arg``;
- both build the statistics-free losses (``statistic == "trained"``) from ``num_classes`` alone.

A default value is written once, in the loss module's ``__init__`` signature; :meth:`LossSpec.defaults` reads it
from there (``inspect.signature``), so the config node and the registered classes cannot drift from the core.

==============================  =================  =====================  ==============================
loss                            statistic          statistics argument    hyper-parameters
==============================  =================  =====================  ==============================
``WeightedCrossEntropyLoss``    class weights      ``class_weight``       denominator
``ClassBalancedFocalLoss``      instance counts    ``samples_per_class``  beta, gamma, background_weight
``EqualizationLoss``            image frequencies  ``class_freq``         lambda_
``EQLv2Loss``                   trained            none                   mu, gamma, alpha, prior_prob
``SeesawLoss``                  trained            none                   p, q, eps
``FederatedLoss``               image counts       ``image_counts``       num_sampled, freq_power
``BAGSLoss``                    instance counts    ``samples_per_class``  bin_edges, others_sample_ratio
``FocalLoss`` (dense)           class weights      ``class_weight``       alpha, gamma
``EqualizedFocalLoss`` (dense)  trained            none                   gamma, scale, alpha
==============================  =================  =====================  ==============================

Example:
    >>> spec = LOSS_TABLE["EQLv2Loss"]
    >>> spec.defaults()
    {'mu': 0.8, 'gamma': 12.0, 'alpha': 4.0, 'prior_prob': None}
    >>> spec.config_keys()
    {'MU': 'mu', 'GAMMA': 'gamma', 'ALPHA': 'alpha', 'PRIOR_PROB': 'prior_prob'}
    >>> spec.needs_statistics, LOSS_TABLE["SeesawLoss"].stats_arg
    (False, None)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from ._base import ClassificationLoss
from .bags import BAGSLoss
from .cb_focal import ClassBalancedFocalLoss
from .efl import EqualizedFocalLoss
from .eql import EqualizationLoss
from .eqlv2 import EQLv2Loss
from .federated import FederatedLoss
from .focal import FocalLoss
from .seesaw import SeesawLoss
from .weighted_ce import WeightedCrossEntropyLoss

__all__ = ["LossSpec", "LOSS_TABLE", "STATISTICS", "LOSSES", "DENSE_LOSSES"]

#: What a loss needs from the data set: "trained" losses accumulate their statistics in buffers while training.
STATISTICS = ("class weights", "instance counts", "image frequencies", "image counts", "trained")


@dataclass(frozen=True)
class LossSpec:
    """One row of :data:`LOSS_TABLE`.

    Attributes:
        cls: the loss module (its ``__init__`` signature holds the defaults).
        key: short name of its settings: Detectron2's ``cfg.DETBALANCE.<KEY>`` sub-node.
        statistic: one of :data:`STATISTICS`.
        stats_arg: the argument taking the statistic in the framework configs (MMDetection's ``loss_cls``): the
            core ``__init__``'s for the box losses; ``None`` for trained statistics.
        hyper_parameters: keyword arguments a config sets per run (``prior_prob``, ``reduction``, ``seed`` and
            ``ignore_index`` are set elsewhere).
        dense: made for dense (one-stage) heads, not offered to box heads.
    """

    cls: type[ClassificationLoss]
    key: str
    statistic: str
    stats_arg: str | None
    hyper_parameters: tuple[str, ...]
    dense: bool = False

    def __post_init__(self):
        if self.statistic not in STATISTICS:
            raise ValueError(f"{self.name}: statistic={self.statistic!r}; expected one of {list(STATISTICS)}")
        if (self.statistic == "trained") != (self.stats_arg is None):
            raise ValueError(f"{self.name}: stats_arg={self.stats_arg!r}; expected None exactly for trained statistics")
        missing = [a for a in self.hyper_parameters if a not in self.parameters()]
        if missing:
            raise ValueError(f"{self.name}: {missing} are not arguments of {self.name}.__init__")

    @property
    def name(self) -> str:
        return self.cls.__name__

    @property
    def needs_statistics(self) -> bool:
        """Whether building the loss needs data-set statistics (a weights file or the training set)."""
        return self.statistic != "trained"

    def parameters(self) -> dict[str, inspect.Parameter]:
        """The arguments of the loss module's ``__init__`` after ``num_classes``."""
        params = list(inspect.signature(self.cls).parameters.values())
        return {p.name: p for p in params[1:]}

    def defaults(self) -> dict[str, Any]:
        """``{hyper-parameter: default}`` read from the loss module's signature."""
        params = self.parameters()
        return {name: params[name].default for name in self.hyper_parameters}

    def config_keys(self) -> dict[str, str]:
        """``{config key: hyper-parameter}``: the upper-case name without a trailing underscore."""
        return {name.rstrip("_").upper(): name for name in self.hyper_parameters}


LOSS_TABLE: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        LossSpec(WeightedCrossEntropyLoss, "WEIGHTED_CE", "class weights", "class_weight", ("denominator",)),
        LossSpec(
            ClassBalancedFocalLoss,
            "CLASS_BALANCED_FOCAL",
            "instance counts",
            "samples_per_class",
            ("beta", "gamma", "background_weight"),
        ),
        LossSpec(EqualizationLoss, "EQUALIZATION", "image frequencies", "class_freq", ("lambda_",)),
        LossSpec(EQLv2Loss, "EQLV2", "trained", None, ("mu", "gamma", "alpha", "prior_prob")),
        LossSpec(SeesawLoss, "SEESAW", "trained", None, ("p", "q", "eps")),
        LossSpec(FederatedLoss, "FEDERATED", "image counts", "image_counts", ("num_sampled", "freq_power")),
        LossSpec(BAGSLoss, "BAGS", "instance counts", "samples_per_class", ("bin_edges", "others_sample_ratio")),
        LossSpec(FocalLoss, "FOCAL", "class weights", "class_weight", ("alpha", "gamma"), dense=True),
        LossSpec(EqualizedFocalLoss, "EQUALIZED_FOCAL", "trained", None, ("gamma", "scale", "alpha"), dense=True),
    )
}

#: Box-head losses: name -> class.
LOSSES: dict[str, type[ClassificationLoss]] = {name: spec.cls for name, spec in LOSS_TABLE.items() if not spec.dense}
#: Losses made for dense heads (one-stage detectors); they are not offered to box (RoI) heads.
DENSE_LOSSES: dict[str, type[ClassificationLoss]] = {name: spec.cls for name, spec in LOSS_TABLE.items() if spec.dense}
