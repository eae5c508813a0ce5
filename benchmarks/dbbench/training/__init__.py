"""One training run in Detectron2 or MMDetection, whatever drives it: the layer below the method table.

:class:`~.run.RunSpec` says what a run trains (data, loss setting, model, schedule, sampler, classifier, ...) and
where its files go; the runner of its framework (:func:`~.runners.get_runner`: :mod:`.detectron2_runner`,
:mod:`.mmdet_runner`) trains it and predicts the test split. :mod:`.losses` holds the loss settings the method rows
name, :mod:`.models` the detectors, :mod:`.schedule` the schedule. A framework is imported only when a run of it
starts, so that a machine with one framework installed runs that framework's runs.
"""

from .losses import BASELINE, LOSS_SETTINGS, LossSetting
from .run import RunSpec
from .runners import FRAMEWORKS, get_runner
from .schedule import Schedule

__all__ = ["BASELINE", "LOSS_SETTINGS", "LossSetting", "RunSpec", "FRAMEWORKS", "get_runner", "Schedule"]
