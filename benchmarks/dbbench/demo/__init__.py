"""The 8-class demo (``tools/demo.py``): CE and rows of the method table, trained on one schedule per framework.

:func:`~.pipeline.run_demo` generates (or reads) the data, computes the weights file, trains the cross-entropy
baseline and the chosen rows of :data:`dbbench.benchmark.methods.METHODS` (those :mod:`.methods` accepts) through
the benchmark's job loop (:mod:`dbbench.benchmark.jobs`), evaluates them per class and writes a table, a plot and a
json of every number. Framework runners are imported only when their framework is used.
"""

from .methods import demo_methods, parse_methods
from .pipeline import DemoSettings, run_demo

__all__ = ["demo_methods", "parse_methods", "DemoSettings", "run_demo"]
