"""Per-class detection evaluation and method comparison (COCO API maths; framework-free).

``evaluate_detections`` gives per-class AP/AP50/recall of one COCO results list; ``compare`` evaluates several
methods (several runs each) on one ground truth and returns a :class:`Report` with APr/APc/APf, deltas to a
baseline and the fraction of the rare-class gap to a balanced-data oracle that each method closes;
``format_report`` and ``plot_report`` render it.
"""

from .coco_eval import (
    ClassMetrics,
    check_score_threshold,
    evaluate_detections,
    load_json,
    validate_ground_truth,
    validate_results,
)
from .plot import plot_report
from .report import (
    GROUPS,
    METRIC_DESCRIPTIONS,
    METRICS,
    MethodRuns,
    Report,
    build_report,
    compare,
    resolve_groups,
    train_statistics,
)
from .table import format_report, format_table

__all__ = [
    "ClassMetrics",
    "check_score_threshold",
    "evaluate_detections",
    "load_json",
    "validate_ground_truth",
    "validate_results",
    "plot_report",
    "GROUPS",
    "METRICS",
    "METRIC_DESCRIPTIONS",
    "MethodRuns",
    "Report",
    "build_report",
    "compare",
    "resolve_groups",
    "train_statistics",
    "format_report",
    "format_table",
]
