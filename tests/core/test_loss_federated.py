"""federated_loss against a straightforward reference with the same sampled classes, and the class sampling."""

from __future__ import annotations

import math

import torch

from detbalance.losses import FederatedLoss, federated_classes, federated_loss

K = 8
IMAGE_COUNTS = [400, 90, 30, 12, 5, 2, 1, 0]


def _reference_classes(labels, image_counts, num_sampled, freq_power, seed):
    """detectron2's get_fed_loss_classes, written out: present labels (background included) + weighted draws."""
    present = torch.unique(labels[labels >= 0])
    if len(present) >= num_sampled:
        return present
    prob = torch.ones(K + 1)
    prob[-1] = 0
    prob[:K] = torch.tensor(image_counts, dtype=torch.float32) ** freq_power
    prob[present] = 0
    draws = num_sampled - len(present)
    sampled = torch.multinomial(prob, draws, replacement=False, generator=torch.Generator().manual_seed(seed))
    return torch.cat([present, sampled])


def _reference_loss(logits, labels, classes):
    """Sum over kept proposals and chosen foreground classes of -log p(target), divided by kept proposals."""
    total, kept = 0.0, 0
    for row, label in enumerate(labels.tolist()):
        if label < 0:
            continue
        kept += 1
        for j in classes:
            if j == K:
                continue
            p = torch.sigmoid(logits[row, j])
            total = total - (torch.log(p) if label == j else torch.log1p(-p))
    return total / kept


def test_matches_reference_with_the_same_sampled_classes():
    logits = torch.randn(12, K, dtype=torch.float64) * 2
    labels = torch.tensor([0, 0, 2, K, K, K, -1, 2, 1, K, 0, -1])
    for num_sampled, seed in ((6, 0), (6, 1), (8, 2), (3, 3)):
        classes = federated_classes(
            labels, torch.tensor(IMAGE_COUNTS), num_sampled=num_sampled, generator=torch.Generator().manual_seed(seed)
        )
        expected_classes = _reference_classes(labels, IMAGE_COUNTS, num_sampled, 0.5, seed)
        assert classes.tolist() == expected_classes.tolist()
        x1 = logits.clone().requires_grad_(True)
        x2 = logits.clone().requires_grad_(True)
        ours = federated_loss(
            x1, labels, IMAGE_COUNTS, num_sampled=num_sampled, generator=torch.Generator().manual_seed(seed)
        )
        ref = _reference_loss(x2, labels, classes.tolist())
        ours.backward()
        ref.backward()
        torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-6, atol=1e-6)
        unused = sorted(set(range(K)) - set(classes.tolist()))
        assert x1.grad[:, unused].eq(0).all()


def test_sampled_set_keeps_present_classes_and_its_size():
    labels = torch.tensor([3, 3, 5, K, -1])
    for seed in range(20):
        classes = federated_classes(
            labels,
            torch.tensor(IMAGE_COUNTS),
            num_sampled=5,
            ignore_index=-1,
            generator=torch.Generator().manual_seed(seed),
        )
        assert {3, 5, K} <= set(classes.tolist()) and len(set(classes.tolist())) == 5
        assert 7 not in classes.tolist()  # zero image count: never drawn
    # more present classes than places: exactly the present ones; too few drawable classes: all of them
    many = federated_classes(torch.tensor([0, 1, 2, 3]), torch.tensor(IMAGE_COUNTS), num_sampled=2)
    assert many.tolist() == [0, 1, 2, 3]
    everything = federated_classes(torch.tensor([K]), torch.tensor(IMAGE_COUNTS), num_sampled=50)
    assert sorted(everything.tolist()) == [0, 1, 2, 3, 4, 5, 6, K]


def test_draw_frequencies_follow_image_count_power():
    counts = torch.tensor([1.0, 4.0, 16.0])  # ** 0.5 -> weights 1 : 2 : 4
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([3])  # background only: it takes one place, one class is drawn
    draws = torch.stack([federated_classes(labels, counts, num_sampled=2, generator=generator)[1] for _ in range(1400)])
    frequency = torch.bincount(draws, minlength=3).double() / len(draws)
    expected = torch.tensor([1 / 7, 2 / 7, 4 / 7], dtype=torch.float64)
    assert (frequency - expected).abs().max() < 4 * math.sqrt(0.25 / len(draws))
    uniform = torch.stack(
        [federated_classes(labels, counts, num_sampled=2, freq_power=0.0, generator=generator)[1] for _ in range(1400)]
    )
    assert (torch.bincount(uniform, minlength=3).double() / 1400 - 1 / 3).abs().max() < 0.06


def test_module_generator_is_seeded_and_advances():
    logits = torch.randn(6, K)
    labels = torch.tensor([0, K, K, 1, K, K])
    first = FederatedLoss(K, IMAGE_COUNTS, num_sampled=4, seed=5)
    second = FederatedLoss(K, IMAGE_COUNTS, num_sampled=4, seed=5)
    losses_first = [first(logits, labels) for _ in range(6)]
    losses_second = [second(logits, labels) for _ in range(6)]
    assert [v.item() for v in losses_first] == [v.item() for v in losses_second]
    assert len({round(v.item(), 6) for v in losses_first}) > 1  # different negatives on later steps
    torch.manual_seed(123)
    a = FederatedLoss(K, IMAGE_COUNTS)
    torch.manual_seed(123)
    b = FederatedLoss(K, IMAGE_COUNTS)
    assert a.seed == b.seed  # seed=None draws from the global generator
    assert FederatedLoss(K, IMAGE_COUNTS, seed=1).state_dict() == {}
    assert "num_sampled=50" in repr(a)
