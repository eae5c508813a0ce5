"""``make demo``: long-tailed detection benchmark of the detbalance losses in Detectron2 and MMDetection.

:func:`~.pipeline.run_demo` generates (or reads) the data, computes the weights file, trains the
cross-entropy baseline and the chosen losses on one schedule per framework, evaluates them per class and writes
a table, a plot and a json of every number. Framework runners are imported only when their framework is used.
"""

from .catalog import BASELINE, DEMO_LOSSES, ORACLE, DemoLoss, parse_losses
from .pipeline import DemoSettings, run_demo
from .runners import FRAMEWORKS
from .schedule import Schedule

__all__ = [
    "BASELINE",
    "DEMO_LOSSES",
    "DemoLoss",
    "parse_losses",
    "FRAMEWORKS",
    "ORACLE",
    "DemoSettings",
    "run_demo",
    "Schedule",
]
