"""The head rows of the matrix: RetinaNet with its framework's focal loss vs Equalized Focal Loss, Cascade R-CNN
with softmax CE vs the balanced losses. Each row trains and predicts its model through ``run_matrix`` in both
frameworks, the records and summary name the model, the tables group the rows by model, a loss the model's head
cannot train is refused, and adding the ``model`` field kept the hashes of the rows that existed before."""

import dataclasses
import hashlib
import json

import pytest
import torch
from bench_helpers import tiny_settings

from dbbench.benchmark import build_summary, get_method, pending
from dbbench.benchmark.methods import METHODS, Method, definition_hash, model_baseline
from dbbench.benchmark.models import HEAD_ROWS
from dbbench.benchmark.render import results_markdown
from dbbench.benchmark.runner import run_matrix
from dbbench.data.longtail import LongTailSpec
from dbbench.training import LOSS_SETTINGS, Schedule
from dbbench.training.models import HEAD_LOSSES
from dbbench.training.run import RunSpec

HEAD_KEYS = ("retinanet-focal", "retinanet-efl", "cascade-ce", "cascade-wce", "cascade-seesaw", "cascade-eqlv2")
MMDET_ONLY = ("fcos-focal", "fcos-efl", "atss-focal", "atss-efl")  # no Detectron2 config of FCOS / ATSS here


def test_head_rows_are_the_head_comparisons_and_run_in_both_frameworks():
    assert [k for k, m in METHODS.items() if m.model != "faster_rcnn"] == list(HEAD_KEYS + MMDET_ONLY)
    assert HEAD_ROWS == (
        ("retinanet", "FocalLoss"),
        ("retinanet", "EqualizedFocalLoss"),
        ("cascade_rcnn", "ce"),
        ("cascade_rcnn", "WeightedCrossEntropyLoss"),
        ("cascade_rcnn", "SeesawLoss"),
        ("cascade_rcnn", "EQLv2Loss"),
        ("fcos", "FocalLoss"),
        ("fcos", "EqualizedFocalLoss"),
        ("atss", "FocalLoss"),
        ("atss", "EqualizedFocalLoss"),
    )
    for key in HEAD_KEYS:
        for framework in ("detectron2", "mmdet"):
            assert pending(get_method(key), framework) is None, (key, framework)
    for key in MMDET_ONLY:
        assert pending(get_method(key), "mmdet") is None
        assert pending(get_method(key), "detectron2") == f"{key} exists only in ('mmdet',)"
    assert model_baseline("retinanet") == "retinanet-focal" and model_baseline("cascade_rcnn") == "cascade-ce"
    fcos = Method("fcos-efl", "FCOS, EFL", loss="efl", model="fcos")
    assert pending(fcos, "detectron2") == "fcos-efl: model 'fcos' has no detectron2 config here"


def _old_hash(method: Method, extra: dict) -> str:
    """The definition hash as computed before ``Method`` had its ``model``, ``classifier``, ``decouple``,
    ``decouple_fraction``, ``clip_grad_norm`` and ``regimes`` fields (the row without them)."""
    row = {
        f.name: getattr(method, f.name)
        for f in dataclasses.fields(method)
        if f.name not in ("model", "classifier", "decouple", "decouple_fraction", "clip_grad_norm", "regimes")
    }
    row = json.loads(json.dumps(row, default=str))
    text = json.dumps({"method": row, **extra}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_rows_of_the_default_model_keep_their_definition_hash_and_head_rows_get_their_own():
    extra = {"schedule": {"iters": 2000}, "protocol": [300, 1e-4]}
    for key, method in METHODS.items():
        if (
            method.model == "faster_rcnn"
            and method.classifier == "linear"
            and method.decouple is None
            and method.clip_grad_norm is None
            and method.regimes == ("scratch", "pretrained")
        ):
            assert definition_hash(method, extra) == _old_hash(method, extra), key
    normed = get_method("seesaw-normed")  # a row with the normalised classifier is a row of its own
    assert definition_hash(normed, extra) != definition_hash(dataclasses.replace(normed, classifier="linear"), extra)
    cascade_ce = get_method("cascade-ce")
    assert definition_hash(cascade_ce, extra) != _old_hash(cascade_ce, extra)
    assert definition_hash(cascade_ce, extra) != definition_hash(dataclasses.replace(cascade_ce, key="ce"), extra)


@pytest.mark.parametrize(
    "model,loss,message",
    [
        ("retinanet", "seesaw", "loss 'seesaw' (SeesawLoss) cannot train the dense head of model 'retinanet'"),
        ("retinanet", "wce", "loss 'wce' (WeightedCrossEntropyLoss) cannot train the dense head of model 'retinanet'"),
        (
            "retinanet",
            "ce",
            "loss 'ce' (a framework default) cannot train the dense head of model 'retinanet' "
            "(RetinaNet R18-FPN); expected 'focal'",
        ),
        ("cascade_rcnn", "efl", "loss 'efl' (EqualizedFocalLoss) cannot train the box head of model 'cascade_rcnn'"),
        ("cascade_rcnn", "focal", "loss 'focal' (a framework default) cannot train the box head"),
    ],
)
def test_a_loss_the_models_head_cannot_train_is_refused(tmp_path, model, loss, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Method("row", "row", loss=loss, model=model)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunSpec(
            framework="mmdet",
            loss={**LOSS_SETTINGS, **HEAD_LOSSES}[loss],
            seed=0,
            data=None,
            schedule=Schedule(iters=1),
            weights_file=tmp_path,
            work_dir=tmp_path,
            model=model,
        )


def test_unknown_model_and_mmdet_losses_of_dense_heads_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'yolo'; expected one of"):
        Method("row", "row", model="yolo")
    with pytest.raises(
        ValueError, match="mmdet_loss='SeesawLoss' with model='retinanet'; expected a model with a box head"
    ):
        RunSpec(
            framework="mmdet",
            loss=HEAD_LOSSES["focal"],
            seed=0,
            data=None,
            schedule=Schedule(iters=1),
            weights_file=tmp_path,
            work_dir=tmp_path,
            model="retinanet",
            mmdet_loss="SeesawLoss",
        )


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["detectron2", "mmdet"])
def test_head_rows_train_and_predict_their_model(tmp_path, framework):
    settings = tiny_settings(tmp_path)
    keys = HEAD_KEYS + (MMDET_ONLY if framework == "mmdet" else ())
    records = run_matrix(settings, [framework], list(HEAD_KEYS + MMDET_ONLY), [0], log=lambda line: None)
    assert [(r["method"], r["model"]) for r in records] == [(k, METHODS[k].model) for k in keys]
    for r in records:
        assert r["train"]["iterations"] == 2 and r["num_detections"] > 0, r["method"]
    work = {k: next((tmp_path / "work").rglob(f"{framework}/{k}/seed0")) for k in keys}
    for key in keys:
        assert (work[key] / "model_final.pth").is_file()
        detections = json.loads((work[key] / "results.json").read_text())
        per_image = {}
        for d in detections:
            per_image[d["image_id"]] = per_image.get(d["image_id"], 0) + 1
            assert d["score"] >= 1e-4
        assert max(per_image.values()) <= 300
    if framework == "detectron2":
        text = {k: (work[k] / "config.yaml").read_text() for k in HEAD_KEYS}
        assert "META_ARCHITECTURE: RetinaNet\n" in text["retinanet-focal"]
        assert "META_ARCHITECTURE: BalancedRetinaNet" in text["retinanet-efl"]
        assert "LOSS: EqualizedFocalLoss" in text["retinanet-efl"]
        assert "NAME: CascadeROIHeads" in text["cascade-ce"]
        for key, loss in (
            ("cascade-wce", "WeightedCrossEntropyLoss"),
            ("cascade-seesaw", "SeesawLoss"),
            ("cascade-eqlv2", "EQLv2Loss"),
        ):
            assert "NAME: BalancedCascadeROIHeads" in text[key] and f"LOSS: {loss}" in text[key]
        state = torch.load(work["retinanet-focal"] / "model_final.pth", weights_only=True)["model"]
        # three anchor scales per octave x three ratios per position, as MMDetection's tiny RetinaNet
        assert state["head.cls_score.weight"].shape[0] == 9 * 4
    else:
        from mmengine.config import Config

        cfg = {k: Config.fromfile(str(work[k] / "config.py")).model for k in keys}
        assert cfg["retinanet-focal"].bbox_head.loss_cls == dict(
            type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0
        )
        assert cfg["retinanet-efl"].bbox_head.loss_cls.type == "DBEqualizedFocalLoss"
        for model in ("fcos", "atss"):
            assert cfg[f"{model}-focal"].bbox_head.loss_cls.type == "FocalLoss"
            assert cfg[f"{model}-efl"].bbox_head.loss_cls.type == "DBEqualizedFocalLoss"
            assert cfg[f"{model}-efl"].neck.out_channels == 128 and cfg[f"{model}-efl"].test_cfg.score_thr == 1e-4
        for key, loss in (
            ("cascade-ce", "CrossEntropyLoss"),
            ("cascade-wce", "DBWeightedCrossEntropyLoss"),
            ("cascade-seesaw", "DBSeesawLoss"),
            ("cascade-eqlv2", "DBEQLv2Loss"),
        ):
            assert cfg[key].roi_head.type == "CascadeRoIHead"
            assert [h.loss_cls.type for h in cfg[key].roi_head.bbox_head] == [loss] * 3, key  # every stage
        state = torch.load(work["retinanet-focal"] / "model_final.pth", weights_only=True)["state_dict"]
        assert state["bbox_head.retina_cls.weight"].shape[0] == 9 * 4
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert {(r["method"], r["model"]) for r in summary["runs"]} == {(k, METHODS[k].model) for k in keys}


def _run(method, seed, apr):
    views = {"AP": 30.0, "APr": apr, "APc": 20.0, "APf": 40.0, "AP50": 50.0}
    return {
        "framework": "mmdet",
        "method": method,
        "model": METHODS[method].model,
        "seed": seed,
        "metrics": {k: views[k] for k in ("AP", "APr", "APc", "APf")},
        "AP50": 50.0,
        "cap100": views,
        "ap_fixed": {**views, "k": 100},
        "ap_pool": 10.0,
        "ece": {"all": 1.0, "r": 2.0, "c": 1.0, "f": 1.0},
        "seconds": 60.0,
        "machine": {"cpus": 2, "torch": "2.x"},
    }


def test_tables_group_head_rows_by_model_with_deltas_against_the_models_own_loss():
    summary = build_summary([], LongTailSpec())
    summary["runs"] = [
        _run("retinanet-focal", 0, 1.0),
        _run("retinanet-efl", 0, 4.0),
        _run("cascade-ce", 0, 2.0),
        _run("cascade-seesaw", 0, 7.5),
    ]
    text = results_markdown(summary)
    assert "**mmdet**, LVIS protocol" not in text  # no Faster R-CNN run: no such table
    cascade = text.index("**mmdet**, Cascade R-CNN R18-FPN, LVIS protocol")  # the models' order
    retina = text.index("**mmdet**, RetinaNet R18-FPN, LVIS protocol")
    assert "ΔAPr vs CE (paired)" in text[cascade:retina]
    assert "| Cascade R-CNN, Seesaw | 0 | **7.5** | 30.0 | 20.0 | 40.0 | 5.5 | — |" in text[cascade:retina]
    assert "ΔAPr vs sigmoid focal loss (paired)" in text[retina:]
    assert "| RetinaNet, Equalized Focal Loss | 0 | **4.0** | 30.0 | 20.0 | 40.0 | 3.0 | — |" in text[retina:]
    assert "Regime" not in text  # CE / oracle is the Faster R-CNN's
