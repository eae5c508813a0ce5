"""Tables and the plot of ``results/summary.json`` (``make results``); nothing else is read.

- :func:`results_markdown`: the README's results block: per framework, the primary metric (APr, LVIS protocol)
  of every method with its seed spread, the regime ratio CE / oracle, the fraction of CE's rare gap to the
  oracle each method closes and its paired APr delta vs CE (per seed, then mean +- std over seeds), then the
  secondary views (cap 100, AP-fixed, AP-pool, ECE). A post-hoc calibration row names the gamma each seed chose
  on the validation split. The head rows (another model than the default Faster R-CNN) follow per model, their
  deltas paired with the model's own-loss row (``model_baseline``: softmax CE, RetinaNet's focal loss).
- :func:`calibration_markdown`: the measured effect of post-hoc calibration (README's calibration section): per
  framework and calibration row, the gamma each seed chose on the validation split, the validation APr at
  gamma 0 and at the chosen gamma, and the test metrics of the base model before and after (paired by seed).
- :func:`runs_markdown`: every run, for RESULTS.md (seconds and machine included).
- :func:`plot_primary`: APr per method and framework, one dot per seed.
- :func:`replace_block`: swaps the text between ``<!-- name:begin -->`` and ``<!-- name:end -->`` of a file.

Means are over seeds; ``+-`` is the sample standard deviation over seeds (none with one seed).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from detbalance.evaluation.gap import bootstrap_gap_interval, gap_closed

from ..training.models import DEFAULT_MODEL, MODELS, REGIMES, loss_setting
from .methods import BASELINE, METHODS, ORACLE, model_baseline

__all__ = [
    "results_markdown",
    "regimes_markdown",
    "calibration_markdown",
    "runs_markdown",
    "plot_primary",
    "replace_block",
]


def _label(method: str) -> str:
    """The table label of a method key (the key itself for a row no longer in the method table)."""
    return METHODS[method].label if method in METHODS else method


def _model(run: dict) -> str:
    return run.get("model", DEFAULT_MODEL)  # records made before the head rows trained the demo's model


def _regime_of(run: dict) -> str:
    return run.get("regime", "scratch")  # records made before the regimes trained from scratch


def _by(
    summary: dict, framework: str, model: str | None = DEFAULT_MODEL, regime: str = "scratch"
) -> dict[str, dict[int, dict]]:
    """``{method: {seed: run}}`` of ``framework``'s runs of ``model`` (every model's where None) in ``regime``, in
    table order."""
    out: dict[str, dict[int, dict]] = {}
    for run in summary["runs"]:
        if run["framework"] == framework and model in (None, _model(run)) and _regime_of(run) == regime:
            out.setdefault(run["method"], {})[run["seed"]] = run
    return {m: out[m] for m in sorted(out, key=lambda k: list(METHODS).index(k) if k in METHODS else len(METHODS))}


def _fmt(values, scale: float = 1.0, suffix: str = "") -> str:
    values = [v * scale for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f}{suffix}"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}{suffix}"


def _paired(runs: dict[str, dict[int, dict]], method: str, fn, baseline: str = BASELINE) -> list[float]:
    """``fn(method run, baseline run, oracle run)`` for every seed all three exist (oracle may be None)."""
    out = []
    for seed, run in runs.get(method, {}).items():
        ce = runs.get(baseline, {}).get(seed)
        oracle = runs.get(ORACLE, {}).get(seed)
        value = fn(run, ce, oracle) if ce is not None else None
        if value is not None:
            out.append(value)
    return out


def _apr(runs, method: str) -> list[float]:
    return [r["metrics"]["APr"] for r in runs.get(method, {}).values()]


def _gap(runs, method: str, baseline: str = BASELINE) -> tuple[float, float, float] | None:
    """The fraction of ``baseline``'s APr gap to the oracle that ``method`` closes, as the ratio of the means over
    each row's seeds, with its 95 % bootstrap interval over seeds (:mod:`detbalance.evaluation.gap`); None
    without runs of all three rows or without a gap."""
    rows = [_apr(runs, method), _apr(runs, baseline), _apr(runs, ORACLE)]
    if not all(rows):
        return None
    ratio = gap_closed(*rows)
    if ratio is None:
        return None
    low, high, _ = bootstrap_gap_interval(*rows)
    return ratio, low, high


def _fmt_gap(gap) -> str:
    if gap is None:
        return "—"
    return "{} % [{} %, {} %]".format(*(_pct(v) for v in gap))


def _pct(value: float) -> str:
    """``value`` in percent, rounded to an integer, without a sign on zero."""
    return f"{round(value * 100) + 0:d}"


def _primary_table(runs, baseline: str = BASELINE) -> list[str]:
    name = _baseline_name(baseline)
    lines = [
        f"| method | seeds | **APr** | AP | APc | APf | ΔAPr vs {name} (paired) | {name}'s APr gap to oracle closed "
        "(ratio of means [95 % bootstrap over seeds]) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, seeds in runs.items():
        metric = {k: _fmt([r["metrics"][k] for r in seeds.values()]) for k in ("APr", "AP", "APc", "APf")}
        delta = (
            "—"
            if method == baseline
            else _fmt(_paired(runs, method, lambda r, ce, o: r["metrics"]["APr"] - ce["metrics"]["APr"], baseline))
        )
        gap = "—" if method in (baseline, ORACLE) else _fmt_gap(_gap(runs, method, baseline))
        label = _label(method)
        gammas = [seeds[s]["calibration"]["gamma"] for s in sorted(seeds) if "calibration" in seeds[s]]
        if gammas:  # a post-hoc calibration row: the exponent each seed chose on the validation split
            label += f" (γ on val: {', '.join(f'{g:g}' for g in gammas)})"
        stages = [r["decouple"] for r in seeds.values() if "decouple" in r]
        if stages:  # a decoupled row: its stage 2's time (training and test) beside its stage 1's training
            stage2 = np.mean([r["seconds"] for r in seeds.values()])
            stage1 = np.mean([d["stage1_seconds"] for d in stages])
            label += f" (stage 2: {stage2:.0f} s, {stages[0]['iters']} it; stage 1: {stage1:.0f} s)"
        lines.append(
            f"| {label} | {','.join(map(str, sorted(seeds)))} | **{metric['APr']}** | {metric['AP']} | "
            f"{metric['APc']} | {metric['APf']} | {delta} | {gap} |"
        )
    return lines


def _baseline_name(baseline: str) -> str:
    """What the deltas are against: ``CE`` or the baseline row's loss (e.g. ``sigmoid focal loss``)."""
    loss = METHODS[baseline].loss
    return "CE" if loss == BASELINE else loss_setting(loss).label.split(" (")[0]


def _head_rows(summary: dict, framework: str) -> list[str]:
    """The tables of ``framework``'s head rows, one per model other than the demo's (in the models' order)."""
    out = []
    for model in MODELS:
        runs = _by(summary, framework, model) if model != DEFAULT_MODEL else {}
        if runs:
            baseline = model_baseline(model)
            out += [
                f"**{framework}**, {MODELS[model].label}, LVIS protocol (primary: APr; deltas vs "
                f"{METHODS[baseline].label}):",
                "",
                *_primary_table(runs, baseline),
                "",
                f"{framework}, {MODELS[model].label}, secondary views:",
                "",
                *_secondary_table(runs),
                "",
            ]
    return out


def _secondary_table(runs) -> list[str]:
    lines = [
        "| method | APr, cap 100 | AP, cap 100 | APr, AP-fixed | AP, AP-fixed | AP-pool | AP50 | "
        "ECE all | ECE r | ECE c | ECE f |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, seeds in runs.items():
        rs = list(seeds.values())
        cells = [
            _fmt([r["cap100"]["APr"] for r in rs]),
            _fmt([r["cap100"]["AP"] for r in rs]),
            _fmt([r["ap_fixed"]["APr"] for r in rs]),
            _fmt([r["ap_fixed"]["AP"] for r in rs]),
            _fmt([r["ap_pool"] for r in rs]),
            _fmt([r["AP50"] for r in rs]),
        ]
        cells += [_fmt([r["ece"][g] for r in rs]) for g in ("all", "r", "c", "f")]
        label = _label(method)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _regime(runs) -> str:
    ratios = _paired(
        runs,
        BASELINE,
        lambda r, ce, o: None if o is None or o["metrics"]["APr"] <= 0 else ce["metrics"]["APr"] / o["metrics"]["APr"],
    )
    if not ratios:
        return "Regime: no seed has both CE and the oracle yet."
    return (
        f"Regime: CE's APr is {_fmt(ratios, 100.0, ' %')} of the oracle's (per seed, {len(ratios)} "
        f"seed{'s' if len(ratios) > 1 else ''})."
    )


#: The goal per regime: the best recipe closes at least this fraction of CE's APr gap to the oracle (ratio of the
#: means, over at least :data:`GOAL_SEEDS` seeds of the row, CE and the oracle).
GOAL_GAP_CLOSED = {"scratch": 0.5, "pretrained": 0.6}
GOAL_SEEDS = 3
#: Classifier re-training's goal: close this fraction of the gap at no more than this fraction of CE's training.
DECOUPLE_GOAL = (0.4, 0.2)


def _seeds_note(runs, method: str) -> str:
    return f"{len(runs[method])} seed{'s' if len(runs[method]) > 1 else ''}; CE {len(runs[BASELINE])}, oracle {len(runs[ORACLE])}"


def _verdict(runs, method: str, ratio: float, goal: float) -> str:
    """ "met" only where the ratio reaches ``goal`` with :data:`GOAL_SEEDS` seeds of the row, CE and the oracle."""
    if ratio < goal:
        return "not met"
    if min(len(runs[m]) for m in (method, BASELINE, ORACLE)) < GOAL_SEEDS:
        return f"reached with fewer than {GOAL_SEEDS} seeds, not yet met"
    return "met"


def _gaps(runs) -> dict[str, tuple[float, float, float]]:
    """:func:`_gap` of every row but CE and the oracle that has one (computed once per table)."""
    gaps = {m: _gap(runs, m) for m in runs if m not in (BASELINE, ORACLE)}
    return {m: g for m, g in gaps.items() if g is not None}


def _closest(runs, gaps, goal: float) -> str:
    """Which row closes the largest fraction of CE's APr gap to the oracle (ratio of the means, ``gaps``: of
    :func:`_gaps`), against ``goal``: met only when that ratio reaches it over :data:`GOAL_SEEDS` seeds."""
    if not gaps:
        return "Goal: no row has runs of it, CE and the oracle yet."
    best = max(gaps, key=lambda m: gaps[m][0])
    return (
        f"Goal (close >= {goal:.0%} of CE's APr gap to the oracle, ratio of the means): "
        f"{_verdict(runs, best, gaps[best][0], goal)}; closest: {_label(best)}, {_fmt_gap(gaps[best])} "
        f"({_seeds_note(runs, best)})."
    )


def _decoupled_goal(runs, gaps) -> str | None:
    """Classifier re-training against :data:`DECOUPLE_GOAL`: among the decoupled rows on CE's model whose stage 2
    takes at most the goal's share of CE's training, the one closing the largest fraction of the gap (``gaps``: of
    :func:`_gaps`); where a slower decoupled row closes more, it is named after it. None without a decoupled row
    with a gap."""
    gaps = {
        m: g
        for m, g in gaps.items()
        if m in METHODS and METHODS[m].decouple is not None and METHODS[m].base == BASELINE
    }
    if not gaps:
        return None
    goal, time_goal = DECOUPLE_GOAL
    seconds = {m: _stage_seconds(list(runs[m].values())) for m in gaps}
    fast = [m for m in gaps if seconds[m][0] <= time_goal * seconds[m][1]]
    best = max(fast or gaps, key=lambda m: gaps[m][0])
    verdict = _verdict(runs, best, gaps[best][0], goal) if fast else "not met"
    text = (
        f"Classifier re-training goal (close >= {goal:.0%} of the gap at <= {time_goal:.0%} of CE's training "
        f"time): {verdict}; best{' within the time' if fast else ''}: {_label(best)}, {_fmt_gap(gaps[best])}, "
        f"{_stage_note(seconds[best])} ({_seeds_note(runs, best)})."
    )
    slower = max(gaps, key=lambda m: gaps[m][0])
    if slower != best:
        text += (
            f" Closing more with a longer stage 2: {_label(slower)}, {_fmt_gap(gaps[slower])}, "
            f"{_stage_note(seconds[slower])} ({_seeds_note(runs, slower)})."
        )
    return text


def _stage_note(seconds: tuple[float, float, str]) -> str:
    stage2, stage1, timed = seconds
    return f"stage 2 {stage2:.0f} s = {stage2 / stage1:.0%} of stage 1's {stage1:.0f} s, {timed}"


def _stage_seconds(records: list[dict]) -> tuple[float, float, str]:
    """The mean seconds of a decoupled row's stage 2 and of its stage 1 over ``records``, and what they count:
    training alone where every record has both stages' test-prediction time to subtract, else the whole runs
    (records made before the runners timed their prediction)."""
    predicted = [
        (r.get("train", {}).get("predict_seconds"), r["decouple"].get("stage1_predict_seconds")) for r in records
    ]
    if all(p2 is not None and p1 is not None for p2, p1 in predicted):
        stage2 = np.mean([r["seconds"] - p2 for r, (p2, _) in zip(records, predicted)])
        stage1 = np.mean([r["decouple"]["stage1_seconds"] - p1 for r, (_, p1) in zip(records, predicted)])
        return float(stage2), float(stage1), "training alone (test prediction not counted)"
    stage2 = np.mean([r["seconds"] for r in records])
    stage1 = np.mean([r["decouple"]["stage1_seconds"] for r in records])
    return float(stage2), float(stage1), "whole runs with their test prediction"


def _versus_framework_losses(runs, gaps) -> list[str]:
    """The best detbalance row (by ``gaps``, of :func:`_gaps`) against each of MMDetection's own losses: the
    difference of the mean APr and whether it exceeds the seed spread (the larger of the two rows' standard
    deviations over seeds)."""
    own = [m for m in runs if m in METHODS and METHODS[m].mmdet_loss is not None]
    ours = {m: g for m, g in gaps.items() if m not in own}
    if not own or not ours:
        return []
    best = max(ours, key=lambda m: ours[m][0])
    lines = []
    for m in own:
        a, b = _apr(runs, best), _apr(runs, m)
        diff = float(np.mean(a) - np.mean(b))
        if min(len(a), len(b)) < 2:
            spread = f"spread unknown ({len(a)} and {len(b)} seeds)"
        else:
            sd = max(float(np.std(a, ddof=1)), float(np.std(b, ddof=1)))
            beats = "more" if diff > sd else "not more"
            spread = f"{beats} than the seed spread {sd:.1f} ({len(a)} and {len(b)} seeds)"
        lines.append(f"{_label(best)} against {_label(m)}: {diff:+.1f} APr, {spread}.")
    return lines


def _tried(val: dict, candidates, metric: str) -> str:
    """The validation ``metric`` of each of a tuning's ``candidates`` per framework (``val``: framework ->
    candidate -> metrics), as ``"<candidate>: <framework> <value>, ...; ..."``."""
    return "; ".join(
        f"{c}: " + ", ".join(f"{fw} {_fmt([by[c][metric]])}" for fw, by in sorted(val.items())) for c in candidates
    )


def _rfs_tuning(tuning: dict) -> str:
    """One sentence: the repeat thresholds tried, their validation APr per framework, the one kept."""
    tried = _tried(tuning["val"], next(iter(tuning["val"].values())), "APr")
    return (
        f"Repeat threshold of `{tuning['row']}`, chosen on the validation split ({_label(tuning['base'])}, seed "
        f"{tuning['seed']}, {tuning['metric']}): validation APr at {tried}; kept {tuning['chosen']:g}."
    )


def _schedule_tuning(tuning: dict) -> str:
    """One sentence: the fine-tuning schedules tried, their validation AP per framework, the one kept."""
    tried = _tried(tuning["val"], tuning["grid"], "AP")
    return (
        f"Fine-tuning schedule (SGD, batch 2), chosen on the validation split ({_label(tuning['base'])}, seed "
        f"{tuning['seed']}, {tuning['metric']}): validation AP at {tried}; kept {tuning['chosen']}."
    )


def _decouple_tuning(tuning: dict) -> str:
    """One sentence: the stage-2 lengths tried, their validation APr per framework, the one kept."""
    tried = _tried(tuning["val"], next(iter(tuning["val"].values())), "APr")
    return (
        f"Length of stage 2 of `{tuning['row']}` (fraction of the schedule's iterations), chosen on the validation "
        f"split ({_label(tuning['base'])} on the saved {tuning['stage1']} model, seed {tuning['seed']}, "
        f"{tuning['metric']}): validation APr at {tried}; kept {tuning['chosen']:g}."
    )


def _paragraphs(lines: list[str | None]) -> list[str]:
    """Each line that is not None as a paragraph of its own (a blank line before it)."""
    return [p for line in lines if line is not None for p in ("", line)]


def results_markdown(summary: dict, regime: str = "scratch") -> str:
    """The README's generated results block of ``regime`` (markdown, ends with a newline)."""
    ds = summary["dataset"]
    frameworks = sorted({r["framework"] for r in summary["runs"] if _regime_of(r) == regime})
    out = [
        f"Data `{ds['version']}`: {ds['num_classes']} classes ({ds['groups']['r']} r / {ds['groups']['c']} c / "
        f"{ds['groups']['f']} f), {ds['train_instances']} train instances, oracle "
        f"{ds['oracle_instances_per_class']} per class, test {ds['test_instances_per_class']} per class. "
        f"Primary metric: {summary['primary_metric']}.",
        "",
    ]
    if "rfs_threshold" in summary.get("tuning", {}) and regime == "scratch":
        out += [_rfs_tuning(summary["tuning"]["rfs_threshold"]), ""]
    if "pretrained_schedule" in summary.get("tuning", {}) and regime == "pretrained":
        out += [_schedule_tuning(summary["tuning"]["pretrained_schedule"]), ""]
    if "decouple_fraction" in summary.get("tuning", {}) and regime == "pretrained":
        out += [_decouple_tuning(summary["tuning"]["decouple_fraction"]), ""]
    if not frameworks:
        out.append("No run has finished yet.")
    for framework in frameworks:
        runs = _by(summary, framework, regime=regime)
        if runs:
            gaps = _gaps(runs)
            out += [
                f"**{framework}**, LVIS protocol (primary: APr):",
                "",
                *_primary_table(runs),
                "",
                _regime(runs),
                _closest(runs, gaps, GOAL_GAP_CLOSED[regime]),
                *_paragraphs([_decoupled_goal(runs, gaps), *_versus_framework_losses(runs, gaps)]),
                "",
                f"{framework}, secondary views (ECE in percent, LVIS-protocol detections):",
                "",
                *_secondary_table(runs),
                "",
            ]
        if regime == "scratch":
            out += _head_rows(summary, framework)
    if frameworks:
        out.append("![APr per method](../results/apr.png)")  # from docs/
    return "\n".join(out).rstrip("\n") + "\n"


def regimes_markdown(summary: dict) -> str:
    """Both regimes side by side (markdown, ends with a newline): per method of the demo's model, APr (mean +- std
    over seeds, the number of seeds) and the fraction of CE's gap to the oracle it closes (ratio of the means), in
    each (regime, framework) that has runs."""
    columns = [
        (regime, framework)
        for regime in REGIMES
        for framework in sorted({r["framework"] for r in summary["runs"]})
        if _by(summary, framework, regime=regime)
    ]
    if not columns:
        return "No run has finished yet.\n"
    by = {c: _by(summary, c[1], regime=c[0]) for c in columns}
    methods = [m for m in METHODS if any(m in runs for runs in by.values())]
    head = " | ".join(f"{framework}, {regime}" for regime, framework in columns)
    lines = [
        f"| APr (seeds) / gap closed | {head} |",
        "|---|" + "---|" * len(columns),
    ]
    for method in methods:
        cells = []
        for c in columns:
            runs = by[c]
            if method not in runs:
                cells.append("")
                continue
            apr = f"{_fmt(_apr(runs, method))} ({len(runs[method])})"
            gap = _gap(runs, method) if method not in (BASELINE, ORACLE) else None
            cells.append(apr if gap is None else f"{apr} / {_pct(gap[0])} %")
        lines.append(f"| {_label(method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _delta(pairs: list[tuple[dict, dict]], get) -> str:
    """``get(calibrated) - get(base)`` per seed, formatted."""
    return _fmt([get(r) - get(b) for r, b in pairs])


def _calibration_rows(runs: dict[str, dict[int, dict]]) -> list[str]:
    lines = []
    for method, seeds in runs.items():
        calibrated = {s: r for s, r in seeds.items() if "calibration" in r}
        if not calibrated:
            continue
        base = next(iter(calibrated.values()))["calibration"]["base"]
        pairs = [(r, runs.get(base, {}).get(s)) for s, r in sorted(calibrated.items())]
        pairs = [(r, b) for r, b in pairs if b is not None]
        if not pairs:
            continue

        label = _label(method)
        fit = [r["calibration"] for r, _ in pairs]
        cells = [
            label,
            ",".join(str(r["seed"]) for r, _ in pairs),
            ", ".join(f"{c['gamma']:g}" for c in fit),
            _fmt([c["val_curve"]["0"] for c in fit]) + " → " + _fmt([max(c["val_curve"].values()) for c in fit]),
            _fmt([b["metrics"]["APr"] for _, b in pairs]) + " → " + _fmt([r["metrics"]["APr"] for r, _ in pairs]),
            _delta(pairs, lambda x: x["metrics"]["APr"]),
            _delta(pairs, lambda x: x["metrics"]["AP"]),
            _delta(pairs, lambda x: x["metrics"]["APf"]),
            _delta(pairs, lambda x: x["cap100"]["APr"]),
            _fmt([b["ece"]["all"] for _, b in pairs]) + " → " + _fmt([r["ece"]["all"] for r, _ in pairs]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def calibration_markdown(summary: dict) -> str:
    """The measured effect of the post-hoc calibration rows (markdown, ends with a newline)."""
    out = []
    for framework in sorted({r["framework"] for r in summary["runs"]}):
        rows = _calibration_rows(_by(summary, framework))
        if rows:
            out += [
                f"**{framework}** (test split, LVIS protocol; γ chosen on the validation split; deltas paired by "
                "seed, calibrated minus base):",
                "",
                "| calibration | seeds | γ | val APr, γ = 0 → chosen | test APr, base → calibrated | ΔAPr | ΔAP | "
                "ΔAPf | ΔAPr, cap 100 | ECE all, base → calibrated |",
                "|---|---|---|---|---|---|---|---|---|---|",
                *rows,
                "",
            ]
    if not out:
        out = ["No calibration row has been measured yet (`tools/benchmark.py run --methods ce-norcal ...`)."]
    return "\n".join(out).rstrip("\n") + "\n"


def _tuning_cost(tuning: dict, total: float) -> str:
    """The trainings the repeat-threshold tuning added to the matrix's ``total`` seconds: the candidates at the base's
    threshold and at the chosen one are the seed-0 runs of matrix rows, the others are not."""
    rows = {f"{tuning['base_threshold']:g}", f"{tuning['chosen']:g}"}
    extra = [(fw, t, s) for fw, by_t in tuning["train_seconds"].items() for t, s in by_t.items() if t not in rows]
    if not extra:
        return "Choosing the repeat threshold on the validation split trained no model besides the matrix's runs."
    spent = sum(s for _, _, s in extra)
    return (
        f"Choosing the repeat threshold on the validation split trained {len(extra)} more model"
        f"{'s' if len(extra) != 1 else ''} ({', '.join(f'{fw} {t}' for fw, t, _ in extra)}): "
        f"{spent / 60:.0f} min; {(total + spent) / 60:.0f} min with them."
    )


def runs_markdown(summary: dict) -> str:
    """Every run with its time and machine (RESULTS.md's generated block)."""
    lines = [
        "| regime | framework | method | seed | AP | APr | APc | APf | seconds | machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["runs"]:
        m = r["metrics"]
        machine = r["machine"].get("gpu") or f"{r['machine']['cpus']} CPUs"
        lines.append(
            f"| {_regime_of(r)} | {r['framework']} | {r['method']} | {r['seed']} | {m['AP']:.1f} | {m['APr']:.1f} | "
            f"{m['APc']:.1f} | {m['APf']:.1f} | {r['seconds']:.0f} | {machine}, torch {r['machine']['torch']} |"
        )
    total = sum(r["seconds"] for r in summary["runs"])
    lines += ["", f"{len(summary['runs'])} runs, {total / 60:.0f} min of training and testing in all."]
    tuning = summary.get("tuning", {}).get("rfs_threshold")
    if tuning is not None:
        lines.append(_tuning_cost(tuning, total))
    return "\n".join(lines) + "\n"


def plot_primary(summary: dict, path: str | Path) -> Path:
    """APr (LVIS protocol) per method, one panel per framework: seeds as dots, their mean as a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted(
        {(_regime_of(r), r["framework"]) for r in summary["runs"]}, key=lambda p: (REGIMES.index(p[0]), p[1])
    ) or [("scratch", "(none)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, (regime, framework) in zip(axes[0], panels):
        runs = _by(summary, framework, model=None, regime=regime)
        for x, seeds in enumerate(runs.values()):
            values = [r["metrics"]["APr"] for r in seeds.values()]
            ax.bar(x, np.mean(values), color="#9ab", width=0.6)
            ax.plot([x] * len(values), values, "k.", markersize=6)
        ax.set_xticks(range(len(runs)), list(runs), rotation=45, ha="right")
        ax.set_ylabel("APr, LVIS protocol (%)")
        ax.set_title(f"{framework}, {regime}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the lines between ``<!-- name:begin -->`` and ``<!-- name:end -->`` replaced by ``body``."""
    pattern = re.compile(rf"(<!-- {re.escape(name)}:begin[^\n]*-->\n)(.*?)(<!-- {re.escape(name)}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no '<!-- {name}:begin ... -->' / '<!-- {name}:end -->' markers; expected both once")
    return pattern.sub(lambda m: m.group(1) + body + m.group(3), text, count=1)
