"""The stateful losses sum their statistics over ranks: two gloo processes on two halves of each batch end with
the state of one process that saw the whole batches."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from detbalance.losses import EQLv2Loss, SeesawLoss

K = 4
WORLD_SIZE = 2
STEPS = 3


def _batches():
    generator = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        logits = torch.randn(12, K + 2, generator=generator, dtype=torch.float64)
        labels = torch.randint(0, K + 1, (12,), generator=generator)
        labels[5] = -1
        yield logits, labels


def _train(eqlv2: EQLv2Loss, seesaw: SeesawLoss, rank: int, world_size: int) -> None:
    for logits, labels in _batches():
        rows = slice(rank * len(labels) // world_size, (rank + 1) * len(labels) // world_size)
        eqlv2(logits[rows, :K].clone().requires_grad_(True), labels[rows]).backward()
        seesaw(logits[rows].clone().requires_grad_(True), labels[rows]).backward()


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        eqlv2, seesaw = EQLv2Loss(K).double(), SeesawLoss(K)
        _train(eqlv2, seesaw, rank, WORLD_SIZE)
        torch.save({**eqlv2.state_dict(), **seesaw.state_dict()}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_statistics_are_summed_over_ranks(tmp_path):
    # fork: the children reuse the imported torch (spawning fresh interpreters costs seconds per process)
    mp.start_processes(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True,
                       start_method="fork")
    eqlv2, seesaw = EQLv2Loss(K).double(), SeesawLoss(K)
    _train(eqlv2, seesaw, rank=0, world_size=1)
    expected = {**eqlv2.state_dict(), **seesaw.state_dict()}
    assert expected["cum_samples"].sum() > 0 and (expected["pos_grad"] > 0).any()
    for rank in range(WORLD_SIZE):
        state = torch.load(tmp_path / f"rank{rank}.pt")
        assert set(state) == set(expected)
        for name, value in expected.items():
            torch.testing.assert_close(state[name], value, rtol=1e-9, atol=1e-12, msg=f"rank {rank}: {name}")
