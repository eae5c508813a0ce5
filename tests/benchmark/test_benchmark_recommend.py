""" "Which method should I use", generated from the results: the best row per framework in the regime, the config
lines made from the method's row (they load in the frameworks), its cost against CE, what to avoid, and the best
fix of an already-trained model."""

from __future__ import annotations

import pytest

from dbbench.benchmark import get_method
from dbbench.benchmark.methods import method_loss
from dbbench.benchmark.recommend import config_lines, recommendation_markdown


def _run(framework, method, apr, seconds=300.0, seed=0):
    return {
        "regime": "pretrained",
        "framework": framework,
        "method": method,
        "seed": seed,
        "metrics": {"AP": 30.0, "APr": apr, "APc": 20.0, "APf": 40.0},
        "seconds": seconds,
    }


SUMMARY = {
    "runs": [
        _run("detectron2", "ce", 4.0, 400.0),
        _run("detectron2", "ce", 6.0, 400.0, seed=1),
        _run("detectron2", "oracle", 25.0),
        _run("detectron2", "rfs-eqlv2-t0.1", 15.0, 420.0),
        _run("detectron2", "seesaw-normed", 8.0),
        _run("detectron2", "cbfocal", 2.0),
        _run("detectron2", "crt", 12.0, 90.0),
        _run("detectron2", "ce-norcal", 7.0, 60.0),
        _run("mmdet", "ce", 3.0),
        _run("mmdet", "seesaw-normed", 9.0),
        _run("mmdet", "mmdet-seesaw-normed", 30.0),  # MMDetection's own loss: never the recommendation
    ]
}


def test_the_best_row_its_lines_cost_and_what_to_avoid():
    text = recommendation_markdown(SUMMARY, "pretrained")
    assert "**detectron2, Faster R-CNN**: RFS + EQLv2, repeat threshold 0.1: APr 15.0 (1) against CE's 5.0 (2)" in text
    assert "50% of CE's gap to the oracle" in text and "training 7.0 min against CE's 6.7 min" in text
    assert 'DETBALANCE.LOSS: "EQLv2Loss"' in text and "DATALOADER.REPEAT_THRESHOLD: 0.1" in text
    assert "Avoid (detectron2, below CE's APr): class-balanced focal (beta 0.9)." in text
    assert "Already trained with CE (detectron2): cRT: CE model, classifier re-trained with RFS + CE, APr 12.0" in text
    assert "**mmdet, Faster R-CNN**: Seesaw, normalised linear classifier" in text
    assert "tempearture=20" in text
    assert recommendation_markdown(SUMMARY, "scratch") == "No run of the scratch regime yet: no recommendation.\n"


def test_a_decoupled_best_row_costs_ces_training_plus_its_stage_2_and_names_the_best_single_training():
    runs = [r for r in SUMMARY["runs"] if r["framework"] == "detectron2"]
    summary = {"runs": [*runs, _run("detectron2", "bags", 20.0, 100.0)]}
    text = recommendation_markdown(summary, "pretrained")
    assert (
        "**detectron2, Faster R-CNN**: BAGS: CE model, classifier re-trained with balanced group softmax: APr 20.0"
        in text
    )
    assert "CE's training (6.7 min) then 1.7 min re-training the classifier." in text
    assert "# stage 2 of a trained model: tools/train_net.py --decouple model_final.pth" in text
    assert "In one training (detectron2): RFS + EQLv2, repeat threshold 0.1, APr 15.0 (1)." in text
    # the best fix of a trained model is the recommendation itself: not repeated
    assert "Already trained with CE (detectron2)" not in text


def test_detectron2_lines_load_as_a_config(tmp_path):
    pytest.importorskip("detectron2")
    from detbalance.detectron2 import get_config
    from helpers import D2_TINY_CONFIG

    for key in ("rfs-eqlv2-t0.1", "seesaw-normed", "rfs-seesaw-normed", "cbfocal", "crt", "eqlv2-clip"):
        lines = [line.split("#")[0].rstrip() for line in config_lines(get_method(key), "detectron2")]
        opts = []
        for line in filter(None, lines):
            k, v = line.split(": ", 1)
            opts += [k, v.strip('"')]
        cfg = get_config(D2_TINY_CONFIG, opts)
        if get_method(key).sampler == "rfs":
            assert cfg.DATALOADER.SAMPLER_TRAIN == "RepeatFactorTrainingSampler"


def test_mmdet_lines_merge_into_a_config(tmp_path):
    pytest.importorskip("mmdet")
    from mmengine.config import Config

    from helpers import MMDET_TINY_CONFIG

    for key in ("rfs-eqlv2-t0.1", "seesaw-normed", "rfs-seesaw-normed", "cbfocal", "mmdet-eqlv2", "eqlv2-clip"):
        body = "\n".join(config_lines(get_method(key), "mmdet")).replace("num_classes=K", "num_classes=8")
        path = tmp_path / f"{key}.py"
        path.write_text(f"_base_ = '{MMDET_TINY_CONFIG}'\n{body}\n")
        cfg = Config.fromfile(str(path))
        assert cfg.custom_imports.imports == ["detbalance.mmdet"]
        head = cfg.model.roi_head.bbox_head
        row = get_method(key)
        assert head.loss_cls.type == (row.mmdet_loss or "DB" + method_loss(row).loss)
        assert (head.get("cls_predictor_cfg") or {}).get("type") == (
            "NormedLinear" if key.endswith("seesaw-normed") else None
        )


def test_recommended_seesaw_normed_lines_build_the_model_they_describe(tmp_path):
    """The lines of the normalised-classifier Seesaw recipe build, in each framework, a box head whose classifier is
    a normalised linear layer of K + 2 outputs trained with detbalance's SeesawLoss."""
    from detectron2.modeling import build_model
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import detbalance.mmdet  # noqa: F401  (registers the DB* classes, as custom_imports does)
    from detbalance.detectron2 import get_config
    from detbalance.layers import NormedLinear
    from detbalance.losses import SeesawLoss
    from helpers import D2_TINY_CONFIG, MMDET_TINY_CONFIG

    row = get_method("rfs-seesaw-normed")
    opts = []
    for line in filter(None, (line.split("#")[0].rstrip() for line in config_lines(row, "detectron2"))):
        k, v = line.split(": ", 1)
        opts += [k, v.strip('"')]
    cfg = get_config(D2_TINY_CONFIG, opts)
    cfg.MODEL.DEVICE = "cpu"
    k = cfg.MODEL.ROI_HEADS.NUM_CLASSES
    predictor = build_model(cfg).roi_heads.box_predictor
    assert isinstance(predictor.cls_score, NormedLinear) and predictor.cls_score.out_features == k + 2

    body = "\n".join(config_lines(row, "mmdet")).replace("num_classes=K", "num_classes=8")
    path = tmp_path / "recipe.py"
    path.write_text(f"_base_ = '{MMDET_TINY_CONFIG}'\n{body}\n")
    init_default_scope("mmdet")
    head = MODELS.build(Config.fromfile(str(path)).model).roi_head.bbox_head
    assert type(head.fc_cls).__name__ == "NormedLinear" and head.fc_cls.out_features == 8 + 2
    assert isinstance(head.loss_cls.core, SeesawLoss)
