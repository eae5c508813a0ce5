"""The global RNG states (torch, numpy, python) as a checkpointable dict of tensors and numbers.

Both frameworks draw proposals from the global torch RNG and augmentations from numpy's; a resumed run continues
exactly like an uninterrupted one only if those streams are restored too. Everything is stored as tensors and
numbers so that checkpoints still load with ``torch.load(weights_only=True)``. Used by ``tools/train_net.py``
(Detectron2 checkpointer) and ``detbalance.mmdet.DBRandomStateHook``.

Example::

    state = capture_rng_state()
    a = torch.rand(3)
    restore_rng_state(state)
    assert torch.equal(a, torch.rand(3))
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["RNG_STREAMS", "capture_rng_state", "restore_rng_state"]

RNG_STREAMS = ("torch", "numpy", "python")


def capture_rng_state() -> dict:
    """The current global RNG states of torch (CPU), numpy and python's ``random``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
        "numpy_pos": int(pos),
        "numpy_has_gauss": int(has_gauss),
        "numpy_cached": float(cached),
        "python_version": int(version),
        "python_internal": torch.tensor(internal, dtype=torch.int64),
        "python_gauss": gauss_next,
    }


def restore_rng_state(state: dict, streams=RNG_STREAMS) -> None:
    """Restore the ``streams`` (a subset of :data:`RNG_STREAMS`) of a :func:`capture_rng_state` dict."""
    unknown = [s for s in streams if s not in RNG_STREAMS]
    if unknown:
        raise ValueError(f"unknown RNG stream {unknown[0]!r}; expected a subset of {RNG_STREAMS}")
    if "torch" in streams:
        torch.set_rng_state(state["torch"])
    if "numpy" in streams:
        np.random.set_state(
            (
                "MT19937",
                state["numpy_keys"].numpy().astype(np.uint32),
                state["numpy_pos"],
                state["numpy_has_gauss"],
                state["numpy_cached"],
            )
        )
    if "python" in streams:
        random.setstate((state["python_version"], tuple(state["python_internal"].tolist()), state["python_gauss"]))
