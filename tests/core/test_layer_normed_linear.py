"""NormedLinear against a transcription of the formula of MMDetection's ``NormedLinear`` (mmdet/models/layers/
normed_predictor.py: weight rows and inputs divided by their L2 norm to the power ``power`` plus ``eps``, the input
scaled by the temperature, then ``F.linear`` with the bias): float64 values and gradients, gradcheck, the
initialisation and the errors."""

from __future__ import annotations

import pytest
import torch

from detbalance.layers import SEESAW_TEMPERATURE, NormedLinear


def reference(x, weight, bias, temperature, power, eps):
    w = weight / (torch.sqrt((weight * weight).sum(dim=1, keepdim=True)) ** power + eps)
    xn = x / (torch.sqrt((x * x).sum(dim=1, keepdim=True)) ** power + eps)
    return (temperature * xn) @ w.T + bias


@pytest.mark.parametrize("temperature, power", [(20.0, 1.0), (1.0, 1.0), (16.0, 2.0)])
def test_values_and_gradients_match_the_reference(temperature, power):
    torch.manual_seed(0)
    layer = NormedLinear(6, 5, temperature=temperature, power=power).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(7, 6, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    w_ref = layer.weight.detach().clone().requires_grad_(True)
    b_ref = layer.bias.detach().clone().requires_grad_(True)
    out = layer(x)
    ref = reference(x_ref, w_ref, b_ref, temperature, power, 1e-6)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(layer.weight.grad, w_ref.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(layer.bias.grad, b_ref.grad, rtol=1e-10, atol=1e-12)


def test_gradcheck():
    layer = NormedLinear(4, 3).double()
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: torch.nn.functional.linear(
            x / (x.norm(dim=1, keepdim=True) + 1e-6) * 20.0, w / (w.norm(dim=1, keepdim=True) + 1e-6), b
        ),
        (x, layer.weight, layer.bias),
    )
    assert torch.autograd.gradcheck(layer, (x,))


def test_logits_are_bounded_by_the_temperature_and_scale_free():
    layer = NormedLinear(8, 4, bias=False)
    x = torch.randn(10, 8)
    z = layer(x)
    assert z.abs().max() <= SEESAW_TEMPERATURE + 1e-4
    torch.testing.assert_close(layer(x * 37.0), z)  # cosine: the feature's scale does not matter


def test_initialisation_as_mmdetection():
    torch.manual_seed(0)
    layer = NormedLinear(256, 1000)
    assert torch.equal(layer.bias, torch.zeros(1000))
    assert layer.weight.std().item() == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize("name, value", [("temperature", 0.0), ("power", -1.0), ("eps", float("nan"))])
def test_bad_settings_are_named(name, value):
    with pytest.raises(ValueError, match=f"{name}="):
        NormedLinear(4, 3, **{name: value})
