#!/usr/bin/env python
"""Forward+backward cost of every detbalance loss, as a ratio to plain F.cross_entropy in the same run.

Scales: LVIS (R=8192 proposals, K=1203 classes) and small (R=512, K=8). A quarter of the proposals are foreground,
their classes drawn from a 1000:1 exponential long tail (frequent classes dominate a batch, as in LVIS). Beside
detbalance's modules it runs MMDetection's own CrossEntropyLoss(class_weight), SeesawLoss and EQLV2Loss when mmdet
is installed.

Measured per loss (all cases of a scale run round-robin, so machine load hits them alike):
- time: median wall time of one forward + backward (``logits.grad`` reset in between), after warm-up; on CUDA
  each step ends with ``torch.cuda.synchronize()``.
- saved: bytes of the tensors autograd keeps from forward to backward (``saved_tensors_hooks``), not counting
  storages that existed before the call (logits, labels, the loss's buffers). It is the memory a loss adds to a
  training step's activations; short-lived temporaries freed inside forward are not counted.
- peak (``--device cuda`` only): ``torch.cuda.max_memory_allocated`` during forward + backward minus the memory
  allocated before it, i.e. every temporary included.

Targets (time), computed at every scale, checked at the LVIS scale only (at the small scale a loss costs a few
dozen small tensor operations, fixed overhead rather than work on the logits; its ratios are reported):

- ``target``: <= 0.8x mmdet's SeesawLoss and EQLV2Loss for detbalance's SeesawLoss and EQLv2Loss;
- ``ce_target``: every detbalance loss <= 1.3x plain CE.

``--value-checks`` runs detbalance's losses with the checks that read tensors back to the host on (default), off
(:func:`detbalance.losses.set_value_checks`), or both (each loss twice, ``[checks off]`` appended to its name).
``--check`` exits with 1 when a target is missed.

Example:
    python tools/bench_losses.py --device cpu --repeats 15 --value-checks both
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from detbalance.losses import (
    BAGSLoss,
    ClassBalancedFocalLoss,
    EQLv2Loss,
    EqualizationLoss,
    FederatedLoss,
    SeesawLoss,
    WeightedCrossEntropyLoss,
)
from detbalance.weights.file import write_text_atomic

SCALES = {"lvis": (8192, 1203), "small": (512, 8)}
CE = "F.cross_entropy"
#: the scales whose targets ``--check`` checks
CHECKED_SCALES = ("lvis",)
# loss -> (reference, maximum time ratio)
TARGETS = {"SeesawLoss": ("mmdet SeesawLoss", 0.8), "EQLv2Loss": ("mmdet EQLV2Loss", 0.8)}
#: maximum time ratio to plain CE of every detbalance loss
CE_TARGET = 1.3
CHECKS_OFF = " [checks off]"
DETBALANCE_LOSSES = (
    "WeightedCrossEntropyLoss",
    "ClassBalancedFocalLoss",
    "EqualizationLoss",
    "EQLv2Loss",
    "SeesawLoss",
    "FederatedLoss",
    "BAGSLoss",
)


@dataclass
class Case:
    """One loss at one scale: ``loss(logits)`` on logits with ``columns`` columns."""

    name: str
    columns: int
    loss: object
    existing: list = field(default_factory=list)  # tensors alive before the call (not counted as saved)
    times: list = field(default_factory=list)
    saved: int = 0
    peak: int | None = None


def long_tail(num_classes: int, ratio: float = 1000.0) -> torch.Tensor:
    """Training instances per class, decaying exponentially from 10000 to 10000 / ratio."""
    return 10000.0 * ratio ** (-torch.arange(num_classes, dtype=torch.float64) / max(1, num_classes - 1))


def _call(module, labels, logits):
    return module(logits, labels)


def _checks_off(loss):
    """``loss`` called with the value checks switched off (restored afterwards)."""
    from detbalance.losses import set_value_checks

    def call(x):
        set_value_checks(False)
        try:
            return loss(x)
        finally:
            set_value_checks(True)

    return call


def make_cases(
    num_rois: int, num_classes: int, device: torch.device, with_mmdet: bool, value_checks: str = "on"
) -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    counts = long_tail(num_classes)
    fg = torch.rand(num_rois, generator=gen) < 0.25
    fg_labels = torch.multinomial(counts / counts.sum(), num_rois, replacement=True, generator=gen)
    labels = torch.where(fg, fg_labels, torch.full_like(fg_labels, num_classes)).to(device)
    weights = (counts.mean() / counts).sqrt()
    class_weight = torch.cat([weights / weights.mean(), torch.ones(1, dtype=torch.float64)]).tolist()
    k = num_classes
    modules = {
        "WeightedCrossEntropyLoss": (k + 1, WeightedCrossEntropyLoss(k, class_weight)),
        "ClassBalancedFocalLoss": (k, ClassBalancedFocalLoss(k, counts.round().tolist())),
        "EqualizationLoss": (k, EqualizationLoss(k, (counts / counts.sum()).tolist())),
        "EQLv2Loss": (k + 1, EQLv2Loss(k)),
        "SeesawLoss": (k + 2, SeesawLoss(k)),
        "FederatedLoss": (k, FederatedLoss(k, (0.6 * counts).round().tolist(), seed=0)),
        "BAGSLoss": (k + 1 + 5, BAGSLoss(k, counts.round().tolist(), seed=0)),  # G = 5 groups (the paper's edges)
    }
    if with_mmdet:
        from mmdet.models.losses import CrossEntropyLoss, EQLV2Loss
        from mmdet.models.losses import SeesawLoss as MMSeesawLoss

        modules["mmdet CrossEntropyLoss(class_weight)"] = (k + 1, CrossEntropyLoss(class_weight=class_weight))
        modules["mmdet SeesawLoss"] = (k + 2, MMSeesawLoss(num_classes=k, return_dict=False))
        modules["mmdet EQLV2Loss"] = (k + 1, EQLV2Loss(num_classes=k))
    cases = [Case(CE, k + 1, lambda x: F.cross_entropy(x, labels), [labels])]
    for name, (columns, module) in modules.items():
        module = module.to(device)
        existing = [labels, *module.buffers(), *module.parameters()]
        loss = partial(_call, module, labels)
        if name not in DETBALANCE_LOSSES or value_checks in ("on", "both"):
            cases.append(Case(name, columns, loss, existing))
        if name in DETBALANCE_LOSSES and value_checks in ("off", "both"):
            cases.append(Case(name + CHECKS_OFF, columns, _checks_off(loss), existing))
    return cases


def _step(case: Case, logits: torch.Tensor, device: torch.device) -> float:
    logits.grad = None
    start = time.perf_counter()
    case.loss(logits).backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _saved_bytes(case: Case, logits: torch.Tensor) -> int:
    existing = {t.untyped_storage().data_ptr() for t in (logits, *case.existing)}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in existing:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    logits.grad = None
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = case.loss(logits)
    loss.backward()
    return sum(saved.values())


def _cuda_peak(case: Case, logits: torch.Tensor, device: torch.device) -> int:
    logits.grad = None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    case.loss(logits).backward()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def bench_scale(
    num_rois: int,
    num_classes: int,
    device: torch.device,
    repeats: int,
    warmup: int,
    with_mmdet: bool,
    value_checks: str = "on",
) -> list[Case]:
    cases = make_cases(num_rois, num_classes, device, with_mmdet, value_checks)
    gen = torch.Generator().manual_seed(1)
    logits = {
        c: (torch.randn(num_rois, c, generator=gen) * 2).to(device).requires_grad_()
        for c in {case.columns for case in cases}
    }
    for case in cases:
        case.saved = _saved_bytes(case, logits[case.columns])
        if device.type == "cuda":
            case.peak = _cuda_peak(case, logits[case.columns], device)
    for i in range(warmup + repeats):
        for case in cases:  # round-robin: load changes affect every loss alike
            elapsed = _step(case, logits[case.columns], device)
            if i >= warmup:
                case.times.append(elapsed)
    return cases


def summarize(cases: list[Case], scale: str) -> list[dict]:
    by_name = {c.name: c for c in cases}
    ce = by_name[CE]
    ce_time, ce_saved = statistics.median(ce.times), ce.saved
    rows = []
    for case in cases:
        t = statistics.median(case.times)
        row = {
            "loss": case.name,
            "columns": case.columns,
            "time_ms": 1e3 * t,
            "time_vs_ce": t / ce_time,
            "saved_mib": case.saved / 2**20,
            "saved_vs_ce": case.saved / ce_saved if ce_saved else math.nan,
            "peak_mib": None if case.peak is None else case.peak / 2**20,
            "peak_vs_ce": None if case.peak is None or not ce.peak else case.peak / ce.peak,
            "target": None,
            "ce_target": None,
        }
        loss = case.name.removesuffix(CHECKS_OFF)
        checked = scale in CHECKED_SCALES
        if loss in TARGETS and TARGETS[loss][0] in by_name:
            reference, limit = TARGETS[loss]
            row["target"] = _target(reference, limit, t / statistics.median(by_name[reference].times), checked)
        if loss in DETBALANCE_LOSSES:
            row["ce_target"] = _target(CE, CE_TARGET, t / ce_time, checked)
        rows.append(row)
    return rows


def _target(reference: str, limit: float, ratio: float, checked: bool) -> dict:
    return {"reference": reference, "limit": limit, "ratio": ratio, "met": ratio <= limit, "checked": checked}


def format_rows(rows: list[dict], title: str) -> str:
    header = f"{'loss':<44}{'cols':>6}{'time ms':>10}{'xCE':>7}{'saved MiB':>11}{'xCE':>7}"
    has_peak = any(r["peak_mib"] is not None for r in rows)
    if has_peak:
        header += f"{'peak MiB':>10}{'xCE':>7}"
    header += "  target (time)"
    lines = [title, header, "-" * len(header)]
    for r in rows:
        line = (
            f"{r['loss']:<44}{r['columns']:>6}{r['time_ms']:>10.2f}{r['time_vs_ce']:>7.2f}"
            f"{r['saved_mib']:>11.2f}{r['saved_vs_ce']:>7.2f}"
        )
        if has_peak:
            line += f"{r['peak_mib']:>10.2f}{r['peak_vs_ce'] or math.nan:>7.2f}"
        for target in (r["target"], r["ce_target"]):
            if target:
                verdict = ("ok" if target["met"] else "MISSED") if target["checked"] else "reported"
                line += f"  {target['ratio']:.2f}x {target['reference']} (<= {target['limit']}) {verdict}"
        lines.append(line)
    return "\n".join(lines)


def _write_json(path: str, data: dict) -> None:
    """Write ``data`` as json atomically (the package's one atomic writer)."""
    write_text_atomic(path, json.dumps(data, indent=1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--scales", default="lvis,small", help=f"comma-separated, from {','.join(SCALES)}")
    parser.add_argument("--repeats", type=int, default=15, help="timed forward+backward steps per loss")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per loss first")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: stable timings)")
    parser.add_argument("--no-mmdet", action="store_true", help="skip MMDetection's losses")
    parser.add_argument(
        "--value-checks",
        choices=("on", "off", "both"),
        default="on",
        help="detbalance's losses with the checks that read tensors back on, off, or each loss both ways",
    )
    parser.add_argument("--json", dest="json_out", help="also write the rows as json")
    parser.add_argument("--check", action="store_true", help="exit with 1 when a target is missed")
    args = parser.parse_args(argv)
    scales = [s for s in args.scales.split(",") if s]
    if not scales or any(s not in SCALES for s in scales):
        parser.error(f"--scales {args.scales!r}; expected a comma-separated subset of {list(SCALES)}")
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--repeats and --threads must be >= 1 and --warmup >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    torch.set_num_threads(args.threads)
    with_mmdet = not args.no_mmdet
    if with_mmdet:
        try:
            import mmdet.models.losses  # noqa: F401
        except ImportError as e:
            print(f"mmdet losses unavailable ({e}); comparing with plain CE only", file=sys.stderr)
            with_mmdet = False
    device = torch.device(args.device)
    report, missed = {}, []
    for scale in scales:
        num_rois, num_classes = SCALES[scale]
        cases = bench_scale(num_rois, num_classes, device, args.repeats, args.warmup, with_mmdet, args.value_checks)
        rows = summarize(cases, scale)
        report[scale] = rows
        title = (
            f"\n{scale}: R={num_rois}, K={num_classes}, device {args.device}, {args.threads} thread(s), "
            f"median of {args.repeats} forward+backward steps, torch {torch.__version__}"
        )
        print(format_rows(rows, title))
        missed += [
            f"{scale}/{r['loss']}"
            for r in rows
            if any(target and target["checked"] and not target["met"] for target in (r["target"], r["ce_target"]))
        ]
    if args.json_out:
        _write_json(args.json_out, report)
    if missed:
        print(f"\ntargets missed: {', '.join(missed)}")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
