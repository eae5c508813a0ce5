"""Distributed tests that cannot hang: ranks run in forked processes joined with a deadline.

``run_ranks(worker, args, nprocs, timeout_s)`` forks ``nprocs`` processes running ``worker(rank, *args)``, waits
for all of them at most ``timeout_s`` seconds, kills the ones still running and fails the test, naming them; a
rank that raises fails the test with its traceback. Workers create their gloo process group with
``timeout=COLLECTIVE_TIMEOUT`` (or shorter), so a collective that one rank never joins also ends with an error
inside the ranks (gloo's own default would wait 30 minutes).
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist

#: Collective timeout of the test process groups: a missing peer fails a collective after this long.
COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=60)


def init_gloo(rank: int, world_size: int, init_file: str, timeout: datetime.timedelta = COLLECTIVE_TIMEOUT) -> None:
    """The default gloo process group, rendezvous through ``init_file``, collectives bounded by ``timeout``."""
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size, timeout=timeout
    )


def _rank_main(worker: Callable, rank: int, args: tuple, error_file: str) -> None:
    torch.set_num_threads(1)
    try:
        worker(rank, *args)
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
        Path(error_file).write_text(traceback.format_exc())
        os._exit(1)  # leave at once: no atexit handler of the forked test process may run here
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    os._exit(0)


def run_ranks(worker: Callable, args: tuple, nprocs: int = 2, timeout_s: float = 120.0) -> None:
    """Run ``worker(rank, *args)`` on ``nprocs`` forked processes; raise ``AssertionError`` when a rank fails or
    when they have not all finished after ``timeout_s`` seconds (the stragglers are killed first)."""
    context = multiprocessing.get_context("fork")  # the children reuse the imported torch and frameworks
    with tempfile.TemporaryDirectory() as tmp:
        errors = [os.path.join(tmp, f"rank{rank}.err") for rank in range(nprocs)]
        procs = [
            context.Process(target=_rank_main, args=(worker, rank, args, errors[rank]), daemon=True)
            for rank in range(nprocs)
        ]
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + timeout_s
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        stuck = [rank for rank, proc in enumerate(procs) if proc.is_alive()]
        for rank in stuck:
            procs[rank].kill()
            procs[rank].join(5)
        reports = [Path(e).read_text() for e in errors if os.path.exists(e)]
    if stuck:
        raise AssertionError(
            f"ranks {stuck} still running after {timeout_s:g} s (a collective waits for a rank "
            f"that never joins it); killed.\n" + "\n".join(reports)
        )
    failed = [(rank, proc.exitcode) for rank, proc in enumerate(procs) if proc.exitcode != 0]
    if failed:
        raise AssertionError(f"ranks failed (rank, exit code): {failed}\n" + "\n".join(reports))
