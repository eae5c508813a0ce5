"""Loss state keeps its precision when the model is cast: Seesaw counts stay int64 and EQLv2 gradient sums stay
float32 (or wider) through ``.half()`` / ``.to(torch.bfloat16)``, in the loss alone and inside whole detectors,
and training, checkpointing and resuming after the cast give the state of a model that was never cast."""

from __future__ import annotations

import io

import pytest
import rel_helpers as H
import torch

import detbalance.detectron2  # noqa: F401  (detectron2 v0.6 shims, before any detectron2 import)
from detbalance.losses import EQLv2Loss, SeesawLoss

K = 5
CASTS = {
    "half": lambda m: m.half(),
    "bfloat16": lambda m: m.to(torch.bfloat16),
    "float16 via to()": lambda m: m.to(dtype=torch.float16),
}


def _steps(eqlv2: EQLv2Loss, seesaw: SeesawLoss, seeds) -> None:
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(40, K + 2, generator=g)
        labels = torch.randint(0, K + 1, (40,), generator=g)
        eqlv2(logits[:, : eqlv2.num_logits].clone().requires_grad_(True), labels).backward()
        seesaw(logits.clone().requires_grad_(True), labels)


def _state(*modules) -> dict:
    return {f"{type(m).__name__}.{k}": v.clone() for m in modules for k, v in m.state_dict().items()}


@pytest.mark.parametrize("cast", list(CASTS))
def test_cast_keeps_state_dtype_and_values(cast):
    eqlv2, seesaw = EQLv2Loss(K), SeesawLoss(K)
    _steps(eqlv2, seesaw, range(3))
    # values float16/bfloat16 cannot hold: a count above 2**11 / 2**8 and sums with many significant digits
    seesaw.cum_samples[0] = 2**40 + 1
    eqlv2.pos_grad[1] += 12345.678
    before = _state(eqlv2, seesaw)
    CASTS[cast](eqlv2)
    CASTS[cast](seesaw)
    after = _state(eqlv2, seesaw)
    for name, value in before.items():
        assert after[name].dtype == value.dtype and torch.equal(after[name], value), name
    assert eqlv2.pos_grad.dtype == torch.float32 and seesaw.cum_samples.dtype == torch.int64


def test_widening_is_allowed_and_narrowing_to_float32_too():
    eqlv2 = EQLv2Loss(K).double()
    assert eqlv2.pos_neg.dtype == torch.float64
    eqlv2.float()
    assert eqlv2.pos_neg.dtype == torch.float32
    eqlv2.half()
    assert eqlv2.pos_neg.dtype == torch.float32


def test_training_checkpoint_and_resume_after_cast_equal_the_uncast_run():
    plain = (EQLv2Loss(K), SeesawLoss(K))
    _steps(*plain, range(4))

    cast = (EQLv2Loss(K).half(), SeesawLoss(K).to(torch.bfloat16))
    _steps(*cast, range(2))
    buffer = io.BytesIO()
    torch.save([m.state_dict() for m in cast], buffer)
    buffer.seek(0)
    resumed = (EQLv2Loss(K).half(), SeesawLoss(K).to(torch.bfloat16))  # fresh, cast before loading
    for module, state in zip(resumed, torch.load(buffer)):
        module.load_state_dict(state)
    _steps(*resumed, range(2, 4))

    want, got = _state(*plain), _state(*resumed)
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype and torch.equal(got[name], value), name


@pytest.mark.parametrize("loss", H.STATEFUL)
def test_detectors_cast_keep_loss_state_dtypes(loss):
    d2 = H.d2_build(H.d2_cfg(loss)).to(torch.bfloat16)
    mm = H.mmdet_build(H.mmdet_model_cfg(loss)).half()
    for model in (d2, mm):
        state = H.loss_buffers(model)
        assert state
        for name, value in state.items():
            want = torch.int64 if name.endswith("cum_samples") else torch.float32
            assert value.dtype == want, f"{type(model).__name__} {name}: {value.dtype}"
        # the rest of the model was cast
        assert next(p for p in model.parameters()).dtype in (torch.bfloat16, torch.float16)


@pytest.mark.parametrize("loss_cls", [EQLv2Loss, SeesawLoss])
def test_checkpoint_state_that_does_not_fit_is_refused(loss_cls):
    from mmengine.runner.checkpoint import load_state_dict as mmengine_load

    name = loss_cls.state_buffers[0]
    other_k = loss_cls(K + 3).state_dict()
    with pytest.raises(
        ValueError,
        match=rf"checkpoint entry {name} has shape \({K + 3},\), expected \({K},\) "
        rf"\({loss_cls.__name__} with num_classes={K}\)",
    ):
        loss_cls(K).load_state_dict(other_k)
    with pytest.raises(ValueError, match=rf"checkpoint entry core.{name} has shape"):  # MMEngine's own loader
        mmengine_load(torch.nn.ModuleDict({"core": loss_cls(K)}), {f"core.{k}": v for k, v in other_k.items()})
    corrupt = loss_cls(K).state_dict()
    corrupt[name][2] = -3
    with pytest.raises(ValueError, match=rf"entry {name} holds -3(\.0)? at index 2, expected finite values >= 0"):
        loss_cls(K).load_state_dict(corrupt)
    missing = loss_cls(K)
    result = missing.load_state_dict({}, strict=False)  # a plain head's checkpoint: reported, not refused
    assert name in result.missing_keys
