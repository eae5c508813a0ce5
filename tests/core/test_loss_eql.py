"""equalization_loss against a hand-computed example and the eql.detectron2 formula (float64)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from detbalance.losses import EqualizationLoss, equalization_loss

LN3 = math.log(3.0)


def test_hand_computed_three_proposals():
    # K = 3 classes, lambda = 0.01, image fractions f = [0.5, 0.05, 0.001]: only class 2 is rare (f < lambda).
    # BCE(x, 1) = ln(1 + e^-x), BCE(x, 0) = ln(1 + e^x); so x = 0 gives ln 2 for both targets, x = ln 3 gives
    # ln(4/3) for target 1 and ln 4 for target 0, x = -ln 3 gives ln 4 for target 1 and ln(4/3) for target 0.
    # Weight w_j = 1 - E(r) * T(f_j) * (1 - y_j): 0 only for the rare class 2 on a foreground proposal of
    # another class.
    #
    # r0: label 0 (foreground), x = [ln 3, 0, ln 3]
    #     j=0 target 1, w=1 -> ln(4/3);  j=1 target 0, w=1 -> ln 2;  j=2 target 0, rare, w=0 -> 0
    #     l0 = ln(4/3) + ln 2 = ln(8/3)
    # r1: label 2 (the rare class itself), x = [0, -ln 3, ln 3]
    #     j=0 -> ln 2;  j=1 -> ln(4/3);  j=2 target 1, w = 1 - 1*1*0 = 1 -> ln(4/3)
    #     l1 = ln 2 + 2 ln(4/3) = ln(32/9)
    # r2: label 3 = background, E = 0 so every w = 1 (background still suppresses rare classes), x = [-ln 3, 0, ln 3]
    #     j=0 -> ln(4/3);  j=1 -> ln 2;  j=2 -> ln 4
    #     l2 = ln(4/3) + ln 2 + ln 4 = ln(32/3)
    # mean = (l0 + l1 + l2) / R = ln(8192/81) / 3
    #
    # Gradient of the mean: w_j (sigmoid(x_j) - y_j) / 3, with sigmoid(ln 3) = 3/4, sigmoid(0) = 1/2,
    # sigmoid(-ln 3) = 1/4:
    #     r0: [3/4 - 1, 1/2, 0 (w = 0)] / 3 = [-1/4, 1/2, 0] / 3
    #     r1: [1/2, 1/4, 3/4 - 1] / 3       = [1/2, 1/4, -1/4] / 3
    #     r2: [1/4, 1/2, 3/4] / 3
    logits = torch.tensor(
        [[LN3, 0.0, LN3], [0.0, -LN3, LN3], [-LN3, 0.0, LN3]], dtype=torch.float64, requires_grad=True
    )
    labels = torch.tensor([0, 2, 3])
    freq = [0.5, 0.05, 0.001]

    per_row = equalization_loss(logits, labels, freq, lambda_=0.01, reduction="none")
    expected_rows = [math.log(8 / 3), math.log(32 / 9), math.log(32 / 3)]
    torch.testing.assert_close(per_row, torch.tensor(expected_rows, dtype=torch.float64), rtol=1e-6, atol=1e-6)

    loss = equalization_loss(logits, labels, freq, lambda_=0.01)
    assert abs(loss.item() - math.log(8192 / 81) / 3) < 1e-6
    loss.backward()
    expected_grad = torch.tensor([[-0.25, 0.5, 0.0], [0.5, 0.25, -0.25], [0.25, 0.5, 0.75]], dtype=torch.float64) / 3
    torch.testing.assert_close(logits.grad, expected_grad, rtol=1e-6, atol=1e-6)


def _eql_reference(logits, labels, freq, lambda_):
    """Straight transcription of the eql.detectron2 formula (no ignored labels)."""
    rows, classes = logits.shape
    target = torch.zeros(rows, classes + 1, dtype=logits.dtype)
    target[torch.arange(rows), labels] = 1
    target = target[:, :classes]
    exclude = (labels != classes).to(logits.dtype).view(rows, 1).expand(rows, classes)
    threshold = (torch.tensor(freq, dtype=logits.dtype) < lambda_).to(logits.dtype).view(1, classes)
    weight = 1 - exclude * threshold * (1 - target)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return torch.sum(loss * weight) / rows


def test_matches_reference_formula_values_and_gradients():
    freq = [0.3, 0.009, 0.01, 0.2, 0.0001, 0.05]  # 0.01 == lambda is not rare (strict <)
    logits = torch.randn(20, 6, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 7, (20,))
    ours = equalization_loss(logits, labels, freq, lambda_=0.01)
    (grad_ours,) = torch.autograd.grad(ours, logits)
    ref = _eql_reference(logits, labels, freq, 0.01)
    (grad_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad_ours, grad_ref, rtol=1e-6, atol=1e-6)
    fg = labels < 6
    off_target = torch.ones(20, 6, dtype=torch.bool)
    off_target[fg.nonzero().flatten(), labels[fg]] = False
    assert grad_ours[fg][:, [1, 4]][off_target[fg][:, [1, 4]]].eq(0).all()  # rare negatives spared
    assert grad_ours[~fg][:, [1, 4]].ne(0).all()  # ... except on background proposals


def test_module_keeps_frequencies_as_configuration():
    module = EqualizationLoss(3, [0.5, 0.05, 0.001], lambda_=0.01)
    assert module.state_dict() == {} and module.num_logits == 3
    assert module.class_freq.dtype == torch.float32
    module = module.double()
    assert module.class_freq.dtype == torch.float64
