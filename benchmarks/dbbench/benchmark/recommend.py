""" "Which method should I use": the README section generated from ``results/summary.json``.

Per framework, in the primary regime (:data:`~.demo.PRIMARY_REGIME`, the users' one) the trained row of the
box head with the best mean APr (:func:`~.demo.best_recipe`'s rule, per framework), the config lines that select
it (:func:`config_lines`, made from the method's row: nothing is written by hand), what it costs against CE
(training time per run) and what it gains (APr, the fraction of CE's gap to the oracle it closes); the rows that
did worse than CE (what to avoid); and, for a model that is already trained, the best decoupled or post-hoc row.
"""

from __future__ import annotations

import numpy as np

from detbalance.losses import LOSS_TABLE

from .methods import BASELINE, METHODS, ORACLE, Method, get_method, method_loss
from .summary import runs_by_method

__all__ = ["config_lines", "recommendation_markdown"]


def _mean(runs: list[dict], key: str = "APr") -> float:
    return float(np.mean([r["metrics"][key] for r in runs]))


def _stage2_length(method: Method) -> str:
    return f"stage 2 trains {method.stage2_fraction:.0%} of stage 1's iterations"


def config_lines(method: Method, framework: str) -> list[str]:
    """The lines a user adds to a Faster R-CNN config of ``framework`` for ``method`` (K: the number of classes)."""
    loss = method_loss(method).loss
    hyper = method_loss(method).hyper
    if framework == "detectron2":
        lines = []
        if loss is not None:
            lines += ['MODEL.ROI_HEADS.NAME: "BalancedROIHeads"', f'DETBALANCE.LOSS: "{loss}"']
            spec = LOSS_TABLE[loss]
            keys = {argument: key for key, argument in spec.config_keys().items()}
            lines += [f"DETBALANCE.{spec.key}.{keys[a]}: {v}" for a, v in hyper.items()]
            if spec.stats_arg is not None:
                lines.append('DETBALANCE.WEIGHTS_FILE: "weights.json"  # tools/compute_weights.py')
        if method.classifier == "normed":
            lines.append('DETBALANCE.CLS_PREDICTOR.TYPE: "NormedLinear"')
        if method.sampler == "rfs":
            lines += [
                'DATALOADER.SAMPLER_TRAIN: "RepeatFactorTrainingSampler"',
                f"DATALOADER.REPEAT_THRESHOLD: {method.rfs_threshold:g}",
            ]
        if method.clip_grad_norm is not None:  # detectron2 clips each parameter's gradient norm
            lines += [
                "SOLVER.CLIP_GRADIENTS.ENABLED: True",
                'SOLVER.CLIP_GRADIENTS.CLIP_TYPE: "norm"',
                f"SOLVER.CLIP_GRADIENTS.CLIP_VALUE: {float(method.clip_grad_norm)!r}",
            ]
        if method.decouple is not None:
            lines.append(
                "# stage 2 of a trained model: tools/train_net.py --decouple model_final.pth ... "
                f"({_stage2_length(method)})"
            )
        return lines
    lines = ["custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)"]
    head = []  # the arguments of model.roi_head.bbox_head, in one assignment
    if method.mmdet_loss is not None:
        head.append(f"loss_cls=dict(_delete_=True, type='{method.mmdet_loss}', num_classes=K)")
    elif loss is not None:
        args = "".join(f", {a}={v!r}" for a, v in hyper.items())
        stats = LOSS_TABLE[loss].stats_arg
        stats_arg = f", {stats}='weights.json'" if stats is not None else ""
        head.append(f"loss_cls=dict(_delete_=True, type='DB{loss}', num_classes=K{stats_arg}{args})")
    if method.classifier == "normed":
        head.append("cls_predictor_cfg=dict(type='NormedLinear', tempearture=20)")
    if head:
        roi_head = "type='DBStandardRoIHead', " if loss is not None else ""
        lines.append(f"model = dict(roi_head=dict({roi_head}bbox_head=dict({', '.join(head)})))")
    if method.sampler == "rfs":
        lines.append(
            f"train_dataloader = dict(sampler=dict(_delete_=True, type='DBRepeatFactorSampler', "
            f"threshold={method.rfs_threshold:g}))"
        )
    if method.clip_grad_norm is not None:
        lines.append(f"optim_wrapper = dict(clip_grad=dict(max_norm={method.clip_grad_norm:g}, norm_type=2))")
    if method.decouple is not None:
        lines.append(
            f"# stage 2 of a trained model: tools/train.py CONFIG --decouple model_final.pth ({_stage2_length(method)})"
        )
    return lines


def _best(rows: dict[str, list[dict]], keep) -> str | None:
    candidates = []
    for key, runs in rows.items():
        try:
            row = get_method(key)
        except ValueError:
            continue
        if key not in (BASELINE, ORACLE) and row.model == "faster_rcnn" and keep(row):
            candidates.append((_mean(runs), key))
    return max(candidates)[1] if candidates else None


def recommendation_markdown(summary: dict, regime: str) -> str:
    """The README section (markdown, ends with a newline)."""
    frameworks = sorted({r["framework"] for r in summary["runs"] if r.get("regime", "scratch") == regime})
    if not frameworks:
        return f"No run of the {regime} regime yet: no recommendation.\n"
    out = [f"From the {regime} regime of the benchmark (APr, LVIS protocol; seeds in brackets):", ""]
    for framework in frameworks:
        rows = runs_by_method(summary, regime, framework)
        if BASELINE not in rows:
            continue
        ce, ce_time = _mean(rows[BASELINE]), float(np.mean([r["seconds"] for r in rows[BASELINE]]))
        oracle = _mean(rows[ORACLE]) if ORACLE in rows else None
        best = _best(rows, lambda m: m.mmdet_loss is None and m.calibrate is None)
        end_to_end = _best(rows, lambda m: m.mmdet_loss is None and m.calibrate is None and m.decouple is None)
        fix = _best(rows, lambda m: m.calibrate is not None or m.decouple is not None)
        if best is None:
            continue
        runs = rows[best]
        gap = (
            ""
            if oracle is None or oracle <= ce
            else f", {(_mean(runs) - ce) / (oracle - ce):.0%} of CE's gap to the oracle"
        )
        time = float(np.mean([r["seconds"] for r in runs]))
        if get_method(best).decouple is not None:  # stage 1 is CE's training, the row's own time its stage 2
            stage1 = [r["decouple"]["stage1_seconds"] for r in runs if "decouple" in r]
            stage1_time = float(np.mean(stage1)) if stage1 else ce_time  # its stage 1 on the same machine
            cost = f"CE's training ({stage1_time / 60:.1f} min) then {time / 60:.1f} min re-training the classifier"
        else:
            cost = f"training {time / 60:.1f} min against CE's {ce_time / 60:.1f} min per run"
        out += [
            f"**{framework}, Faster R-CNN**: {get_method(best).label}: APr {_mean(runs):.1f} ({len(runs)}) against CE's "
            f"{ce:.1f} ({len(rows[BASELINE])}){gap}; {cost}.",
            "",
            "```" + ("yaml" if framework == "detectron2" else "python"),
            *config_lines(get_method(best), framework),
            "```",
            "",
        ]
        if end_to_end is not None and end_to_end != best:
            e2e = rows[end_to_end]
            out += [
                f"In one training ({framework}): {get_method(end_to_end).label}, APr {_mean(e2e):.1f} ({len(e2e)}).",
                "",
            ]
        worse = [k for k, r in rows.items() if k not in (BASELINE, ORACLE) and _mean(r) < ce]
        if worse:
            out += [
                f"Avoid ({framework}, below CE's APr): "
                + ", ".join(get_method(k).label for k in worse if k in METHODS)
                + ".",
                "",
            ]
        if fix is not None and fix != best:
            fr = rows[fix]
            out += [
                f"Already trained with CE ({framework}): {get_method(fix).label}, APr {_mean(fr):.1f} ({len(fr)}), "
                f"{float(np.mean([r['seconds'] for r in fr])) / 60:.1f} min on top of the trained model.",
                "",
            ]
    return "\n".join(out).rstrip("\n") + "\n"
