"""The frameworks the experiments train in, and the runner module of each.

A runner (:mod:`.detectron2_runner`, :mod:`.mmdet_runner`) trains and predicts one :class:`~.run.RunSpec`:
``train_and_predict(spec, progress=...)`` and ``predict(spec, json_file, images, ...)``. It is imported only when
its framework is used, so that a machine with one framework installed runs that framework's experiments.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["FRAMEWORKS", "get_runner"]

FRAMEWORKS = ("detectron2", "mmdet")


def get_runner(framework: str) -> ModuleType:
    """The runner module of ``framework`` (one of :data:`FRAMEWORKS`), imported on first use."""
    if framework == "detectron2":
        from . import detectron2_runner

        return detectron2_runner
    if framework == "mmdet":
        from . import mmdet_runner

        return mmdet_runner
    raise ValueError(f"framework={framework!r}; expected one of {FRAMEWORKS}")
