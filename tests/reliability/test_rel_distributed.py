"""Stateful losses (EQLv2 gradient statistics, Seesaw cumulative counts) trained in real detector steps on two
gloo ranks with half batches end with the state of one process that trained on the full batches.

Both detectors are set up so that each image's computation does not depend on the other images of its batch:
frozen / eval-mode batch norm, and a RoI sampler larger than the number of proposals (every proposal is kept,
so the random subsampling selects the same set whatever the RNG state). The optimizer has lr 0, so both runs see
the same weights at every step and the only cross-rank interaction left is the loss's own all-reduce.

A rank whose batch has no proposal at all still joins that all-reduce (``test_*_rank_without_proposals``): its
ROI head is called with empty proposals for an image without boxes, and both ranks end with the state of one
process that trained on the other rank's batch alone. No test can hang: the ranks run in forked processes that
are killed after ``RUN_TIMEOUT_S``, and every collective times out after ``dist_helpers.COLLECTIVE_TIMEOUT``.

Launchers on a CPU-only machine:

* detectron2 v0.6 ``detectron2.engine.launch``: its ``_distributed_worker`` starts with
  ``assert torch.cuda.is_available()``, hard-codes ``backend="NCCL"`` and calls ``torch.cuda.set_device``, so
  it cannot start CPU ranks (``test_detectron2_v06_launch_needs_cuda`` pins this). The detectron2 test therefore
  forks the ranks (``dist_helpers.run_ranks``) and sets up the process groups as ``launch`` does (default
  gloo group plus ``detectron2.utils.comm._LOCAL_PROCESS_GROUP``), then trains with detectron2's own
  ``SimpleTrainer`` around a ``create_ddp_model`` model.
* mmengine 0.10 ``mmengine.dist.init_dist('pytorch', backend='gloo')`` calls ``torch.cuda.set_device(LOCAL_RANK)``
  before ``init_process_group`` whatever the backend, which raises without a CUDA driver
  (``test_mmengine_init_dist_pytorch_needs_cuda`` pins this); ``Runner(launcher='pytorch')`` goes through the
  same call and also wraps the model with ``device_ids=[LOCAL_RANK]``, which DDP refuses for a CPU module. The
  mmengine test therefore sets the environment the ``pytorch`` launcher expects (RANK, LOCAL_RANK, WORLD_SIZE,
  MASTER_ADDR, MASTER_PORT), initialises the default group from it (``env://``) and trains with mmengine's own
  ``MMDistributedDataParallel.train_step`` and ``OptimWrapper``.
"""

from __future__ import annotations

import importlib
import inspect
import os

import pytest
import rel_helpers as H
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import detbalance.detectron2  # noqa: F401  (detectron2 v0.6 shims, before any detectron2 import)
from dist_helpers import COLLECTIVE_TIMEOUT, init_gloo, run_ranks

WORLD_SIZE = 2
STEPS = 2
IMAGES_PER_STEP = 2
RUN_TIMEOUT_S = 300  # the forked ranks are killed and the test fails after this long (2 shared CPU cores)
EQLV2_TOL = dict(rtol=1e-5, atol=1e-6)  # float32 sums of per-rank partial sums vs one sum over all rows


def _compare(got: dict, want: dict, what: str) -> None:
    assert set(got) == set(want), what
    for name, value in want.items():
        if value.dtype == torch.int64:  # Seesaw counts: exact
            assert torch.equal(got[name], value), f"{what}: {name} {got[name].tolist()} != {value.tolist()}"
        else:
            torch.testing.assert_close(got[name], value, **EQLV2_TOL, msg=f"{what}: {name}")


def _check_meaningful(state: dict) -> None:
    """The reference state moved away from its initial value (else equality would prove nothing)."""
    for name, value in state.items():
        if name.endswith("cum_samples"):
            assert int(value.sum()) > 0, name
        if name.endswith("pos_grad") or name.endswith("neg_grad"):
            assert float(value.sum()) > 0, name


# -------------------------------------------------------------------------------------------------- detectron2
def _d2_train(rank: int, world_size: int, loss: str) -> dict:
    from detectron2.engine import SimpleTrainer
    from detectron2.engine.defaults import create_ddp_model

    torch.manual_seed(0)
    model = H.d2_build(H.d2_cfg(loss, frozen_bn=True, roi_batch=512))
    batches = [H.d2_batch(IMAGES_PER_STEP, seed=step)[rank::world_size] for step in range(STEPS)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    # device_ids=None: a CPU module (create_ddp_model would otherwise pass [local_rank], a GPU index)
    trainer = SimpleTrainer(create_ddp_model(model, device_ids=None, broadcast_buffers=False), batches, optimizer)
    trainer.train(0, STEPS)
    return H.loss_buffers(model)


def _d2_worker(rank: int, init_file: str, out_dir: str) -> None:
    from detectron2.utils import comm

    torch.set_num_threads(1)
    init_gloo(rank, WORLD_SIZE, init_file)
    comm._LOCAL_PROCESS_GROUP = dist.new_group(list(range(WORLD_SIZE)))  # as launch() on one machine
    comm.synchronize()
    assert (comm.get_rank(), comm.get_world_size(), comm.get_local_rank()) == (rank, WORLD_SIZE, rank)
    state = {}
    for loss in H.STATEFUL:
        state.update(_d2_train(rank, WORLD_SIZE, loss))
    torch.save(state, f"{out_dir}/d2_rank{rank}.pt")


@pytest.mark.slow
def test_detectron2_two_ranks_match_one_process(tmp_path):
    run_ranks(_d2_worker, (str(tmp_path / "init"), str(tmp_path)), WORLD_SIZE, RUN_TIMEOUT_S)
    want = {}
    for loss in H.STATEFUL:
        want.update(_d2_train(0, 1, loss))
    _check_meaningful(want)
    assert {k.rsplit(".", 1)[-1] for k in want} == {"pos_grad", "neg_grad", "pos_neg", "cum_samples"}
    for rank in range(WORLD_SIZE):
        _compare(torch.load(tmp_path / f"d2_rank{rank}.pt"), want, f"detectron2 rank {rank}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="pins the behaviour on machines without CUDA")
@pytest.mark.skipif(
    "GLOO" in inspect.getsource(importlib.import_module("detectron2.engine.launch")._distributed_worker),
    reason="detectron2 main's launch starts CPU ranks with gloo (it would wait for rank 1 here); "
    "tests/workflow/test_train_net_distributed.py trains through it",
)
def test_detectron2_v06_launch_needs_cuda(tmp_path):
    # launch(main, num_gpus_per_machine=2, dist_url=...) runs _distributed_worker in each spawned rank; it is
    # called here in-process: a spawned rank would not even get that far in this environment, since the
    # fresh interpreter unpickles detectron2.engine (importing detectron2.data) without detbalance's Pillow
    # shim and fails on PIL.Image.LINEAR first.
    launch_module = importlib.import_module("detectron2.engine.launch")  # the package attribute is the function

    assert "NCCL" in inspect.getsource(launch_module._distributed_worker)  # the backend is not configurable
    with pytest.raises(AssertionError, match="cuda is not available"):
        launch_module._distributed_worker(0, print, WORLD_SIZE, WORLD_SIZE, 0, f"file://{tmp_path / 'init'}", ("rank",))
    assert not dist.is_initialized()


# ------------------------------------------------------------------------------------------------ MMDetection
def _mmdet_train(rank: int, world_size: int, loss: str) -> dict:
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper

    torch.manual_seed(0)
    model = H.mmdet_build(H.mmdet_model_cfg(loss, norm_eval=True, rcnn_num=512))
    model.train()  # as mmengine's train loop; applies the backbone's norm_eval
    wrapped = model
    if world_size > 1:
        # As Runner.wrap_model (broadcast_buffers=False), without its GPU device_ids.
        wrapped = MMDistributedDataParallel(module=model, device_ids=None, broadcast_buffers=False)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    for step in range(STEPS):
        full = H.mmdet_batch(IMAGES_PER_STEP, seed=step)
        data = {k: v[rank::world_size] for k, v in full.items()}
        log_vars = wrapped.train_step(data, optim_wrapper)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in log_vars.values()), log_vars
    return H.loss_buffers(model)


def _mmdet_worker(rank: int, port: int, out_dir: str) -> None:
    from mmengine.dist import get_dist_info, is_distributed

    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    dist.init_process_group(backend="gloo", init_method="env://", timeout=COLLECTIVE_TIMEOUT)
    assert is_distributed() and get_dist_info() == (rank, WORLD_SIZE)
    state = {}
    for loss in H.STATEFUL:
        state.update(_mmdet_train(rank, WORLD_SIZE, loss))
    torch.save(state, f"{out_dir}/mmdet_rank{rank}.pt")


@pytest.mark.slow
def test_mmdet_two_ranks_match_one_process(tmp_path):
    H.mmdet_model_cfg(None)  # load the config and registries once, before forking
    run_ranks(_mmdet_worker, (H.free_port(), str(tmp_path)), WORLD_SIZE, RUN_TIMEOUT_S)
    want = {}
    for loss in H.STATEFUL:
        want.update(_mmdet_train(0, 1, loss))
    _check_meaningful(want)
    assert {k.rsplit(".", 1)[-1] for k in want} == {"pos_grad", "neg_grad", "pos_neg", "cum_samples"}
    for rank in range(WORLD_SIZE):
        _compare(torch.load(tmp_path / f"mmdet_rank{rank}.pt"), want, f"mmdet rank {rank}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="pins the behaviour on machines without CUDA")
def test_mmengine_init_dist_pytorch_needs_cuda(monkeypatch):
    from mmengine.dist import init_dist

    for key, value in dict(
        RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(H.free_port())
    ).items():
        monkeypatch.setenv(key, value)
    start_method = mp.get_start_method(allow_none=True)
    try:
        with pytest.raises(RuntimeError, match="NVIDIA driver|CUDA|cuda"):
            init_dist("pytorch", backend="gloo")
        assert not dist.is_initialized()  # it failed before creating the process group
    finally:
        mp.set_start_method(start_method, force=True)  # init_dist sets 'spawn' when none was chosen


# ------------------------------------------------------------------------------------ a rank without proposals
def _d2_roi_step(model, rank: int, step: int) -> None:
    """One ROI-head training step; rank 1 has an image without boxes and no proposal."""
    from detectron2.structures import Boxes, Instances
    from detectron2.utils.events import EventStorage

    model.train()
    with EventStorage(step):
        batch = H.d2_batch(1, seed=step, empty=(0,) if rank == 1 else ())
        images = model.preprocess_image(batch)
        targets = [b["instances"] for b in batch]
        features = model.backbone(images.tensor)
        if rank == 1:
            empty = Instances(
                images.image_sizes[0], proposal_boxes=Boxes(torch.zeros(0, 4)), objectness_logits=torch.zeros(0)
            )
            proposals = [empty]
        else:
            proposals, _ = model.proposal_generator(images, features, targets)
        _, losses = model.roi_heads(images, features, proposals, targets)
        assert "loss_cls" in losses and torch.isfinite(losses["loss_cls"])
        sum(losses.values()).backward()


def _d2_state_with_empty_rank(rank: int, loss: str) -> dict:
    torch.manual_seed(0)
    model = H.d2_build(H.d2_cfg(loss, frozen_bn=True, roi_batch=512))
    for step in range(STEPS):
        _d2_roi_step(model, rank, step)
    return H.loss_buffers(model)


def _mmdet_roi_step(model, rank: int, step: int) -> None:
    """One ``DBStandardRoIHead`` training step; rank 1 has an image without boxes and no proposal."""
    from mmengine.structures import InstanceData

    model.train()
    data = model.data_preprocessor(H.mmdet_batch(1, seed=step, empty=(0,) if rank == 1 else ()), True)
    features = model.extract_feat(data["inputs"])
    samples = data["data_samples"]
    if rank == 1:
        proposals = [InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0).long())]
    else:
        proposals = model.rpn_head.predict(features, samples, rescale=False)
    losses = model.roi_head.loss(features, proposals, samples)
    assert "loss_cls" in losses and torch.isfinite(losses["loss_cls"])
    sum(v for k, v in losses.items() if k.startswith("loss")).backward()


def _mmdet_state_with_empty_rank(rank: int, loss: str) -> dict:
    torch.manual_seed(0)
    cfg = H.mmdet_model_cfg(loss, norm_eval=True, rcnn_num=512)
    cfg.roi_head.type = "DBStandardRoIHead"
    model = H.mmdet_build(cfg)
    for step in range(STEPS):
        _mmdet_roi_step(model, rank, step)
    return H.loss_buffers(model)


_EMPTY_RANK_RUNS = {"detectron2": _d2_state_with_empty_rank, "mmdet": _mmdet_state_with_empty_rank}


def _empty_rank_worker(rank: int, init_file: str, out_dir: str, framework: str) -> None:
    init_gloo(rank, WORLD_SIZE, init_file)
    state = {}
    for loss in H.STATEFUL:
        state.update(_EMPTY_RANK_RUNS[framework](rank, loss))
    torch.save(state, f"{out_dir}/{framework}_rank{rank}.pt")


@pytest.mark.slow
@pytest.mark.parametrize("framework", list(_EMPTY_RANK_RUNS))
def test_rank_without_proposals_joins_the_statistics_sum(tmp_path, framework):
    if framework == "mmdet":
        H.mmdet_model_cfg(None)  # load the config and registries once, before forking
    run_ranks(_empty_rank_worker, (str(tmp_path / "init"), str(tmp_path), framework), WORLD_SIZE, RUN_TIMEOUT_S)
    want = {}
    for loss in H.STATEFUL:
        want.update(_EMPTY_RANK_RUNS[framework](0, loss))  # one process, rank 0's batches only
    _check_meaningful(want)
    for rank in range(WORLD_SIZE):
        _compare(torch.load(tmp_path / f"{framework}_rank{rank}.pt"), want, f"{framework} rank {rank}")
