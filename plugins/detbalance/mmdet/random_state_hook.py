"""``DBRandomStateHook``: checkpoints carry the RNG state, so a resumed run continues bit-exactly.

MMDetection samples proposals (``RandomSampler``) from the global torch RNG and its data pipeline draws from
numpy's; mmengine's resume re-seeds but does not restore those streams, so a resumed run draws other proposals
(and flips) than an uninterrupted one and the stateful losses (EQLv2 gradient statistics, Seesaw class counts)
drift apart. This hook saves the torch, numpy and python RNG states in every checkpoint and restores them on
resume, at the point where the uninterrupted run was when it saved:

- epoch-based loops: all three, before the first resumed epoch (the data loader iterator, created afterwards,
  draws its seed from torch as it did in the uninterrupted run);
- iteration-based loops: torch only, right before the first resumed iteration. mmengine fast-forwards the data
  loader over the iterations already trained, which replays the data pipeline's numpy/python draws from the
  seeded state: restoring those would rewind them.

``tools/train.py`` adds it to ``custom_hooks``; in your own config::

    custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
    custom_hooks = [dict(type='DBRandomStateHook')]
"""

from __future__ import annotations

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from detbalance.random_state import capture_rng_state, restore_rng_state

__all__ = ["DBRandomStateHook", "CHECKPOINT_KEY"]

#: key of the RNG state in an mmengine checkpoint.
CHECKPOINT_KEY = "detbalance_rng_state"


@HOOKS.register_module()
class DBRandomStateHook(Hook):
    """Save the global RNG states with each checkpoint; restore them when training resumes."""

    priority = "VERY_LOW"

    def __init__(self):
        self._pending: dict | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = capture_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Only a resume continues the stream (load_from starts a new run).
        if getattr(runner, "_resume", False):
            self._pending = checkpoint.get(CHECKPOINT_KEY)

    def before_train_epoch(self, runner) -> None:
        if self._pending is not None and not isinstance(runner.train_loop, IterBasedTrainLoop):
            state, self._pending = self._pending, None
            restore_rng_state(state)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is not None:
            state, self._pending = self._pending, None
            restore_rng_state(state, ("torch",))
