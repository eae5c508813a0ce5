"""The stateful losses sum their statistics over ranks: two gloo processes on two parts of each batch end with
the state of one process that saw the whole batches, also when one rank's part is empty (it still joins the
sum), and no test can hang: ranks run in processes joined with a deadline, collectives time out in seconds."""

from __future__ import annotations

import time

import pytest
import torch
import torch.distributed as dist

from detbalance.losses import EQLv2Loss, SeesawLoss
from dist_helpers import init_gloo, run_ranks

K = 4
WORLD_SIZE = 2
STEPS = 3
ROWS = 12


def _batches():
    generator = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        logits = torch.randn(ROWS, K + 2, generator=generator, dtype=torch.float64)
        labels = torch.randint(0, K + 1, (ROWS,), generator=generator)
        labels[5] = -1
        weights = torch.rand(ROWS, generator=generator, dtype=torch.float64) + 0.5
        weights[[0, 7]] = 0.0  # boxes removed from the loss: they move no statistic
        yield logits, labels, weights


def _split(rank: int, world_size: int, split: str) -> slice:
    if split == "halves":
        return slice(rank * ROWS // world_size, (rank + 1) * ROWS // world_size)
    return slice(0, ROWS) if rank == 0 else slice(0, 0)  # "empty": the last rank gets no proposal at all


def _train(rank: int, world_size: int, split: str) -> tuple[EQLv2Loss, SeesawLoss]:
    eqlv2, seesaw = EQLv2Loss(K).double(), SeesawLoss(K)
    for logits, labels, weights in _batches():
        rows = _split(rank, world_size, split)
        eqlv2_logits = logits[rows, : eqlv2.num_logits].clone().requires_grad_(True)
        eqlv2(eqlv2_logits, labels[rows], sample_weight=weights[rows]).backward()
        seesaw(logits[rows].clone().requires_grad_(True), labels[rows], sample_weight=weights[rows]).backward()
    return eqlv2, seesaw


def _worker(rank: int, init_file: str, out_dir: str, split: str) -> None:
    init_gloo(rank, WORLD_SIZE, init_file)
    eqlv2, seesaw = _train(rank, WORLD_SIZE, split)
    torch.save({**eqlv2.state_dict(), **seesaw.state_dict()}, f"{out_dir}/rank{rank}.pt")


@pytest.mark.parametrize("split", ["halves", "empty"])
def test_statistics_are_summed_over_ranks(tmp_path, split):
    run_ranks(_worker, (str(tmp_path / "init"), str(tmp_path), split), WORLD_SIZE, timeout_s=60)
    eqlv2, seesaw = _train(0, 1, "halves")
    expected = {**eqlv2.state_dict(), **seesaw.state_dict()}
    assert expected["cum_samples"].sum() > 0 and (expected["pos_grad"] > 0).any()
    for rank in range(WORLD_SIZE):
        state = torch.load(tmp_path / f"rank{rank}.pt")
        assert set(state) == set(expected)
        for name, value in expected.items():
            torch.testing.assert_close(state[name], value, rtol=1e-9, atol=1e-12, msg=f"rank {rank}: {name}")


def test_seesaw_counts_skip_weight_zero_boxes():
    seesaw = SeesawLoss(3)
    labels = torch.tensor([0, 0, 1, 2, 3, -1, 2])
    weights = torch.tensor([1.0, 0.0, 2.0, 0.0, 1.0, 1.0, 0.5])
    seesaw(torch.randn(7, 5), labels, sample_weight=weights)
    assert seesaw.cum_samples.tolist() == [1, 1, 1]  # class 0 once (one of its boxes weighs 0), class 2 once
    seesaw.eval()
    seesaw(torch.randn(7, 5), labels, sample_weight=weights)
    assert seesaw.cum_samples.tolist() == [1, 1, 1]  # evaluation counts nothing


def _missing_peer(rank: int, init_file: str) -> None:
    from datetime import timedelta

    init_gloo(rank, WORLD_SIZE, init_file, timeout=timedelta(seconds=2))
    if rank == 0:  # rank 1 never joins this sum
        dist.all_reduce(torch.ones(3))


def _stuck(rank: int) -> None:
    if rank == 1:
        time.sleep(600)


def test_a_missing_collective_fails_in_seconds(tmp_path):
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"ranks failed \(rank, exit code\): \[\(0, 1\)\]"):
        run_ranks(_missing_peer, (str(tmp_path / "init"),), WORLD_SIZE, timeout_s=30)
    with pytest.raises(AssertionError, match=r"ranks \[1\] still running after 2 s"):
        run_ranks(_stuck, (), WORLD_SIZE, timeout_s=2)
    assert time.monotonic() - start < 25
