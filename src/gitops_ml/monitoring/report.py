"""Monitor report: markdown that reads well with no images (Mermaid charts render on GitHub), plus
optional PNG plots. Pure text building; the only I/O is `write_monitor_plots`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from gitops_ml.evaluation.metrics import direction_sign
from gitops_ml.io_utils import atomic_write_bytes
from gitops_ml.monitoring.drift import FeatureDrift
from gitops_ml.monitoring.policy import Decision, WindowRecord, WindowResult, as_utc
from gitops_ml.reporting.markdown import GITHUB_COMMENT_LIMIT, truncate_markdown
from gitops_ml.reporting.mermaid import xychart

MAX_FEATURE_ROWS = 60
MAX_CHART_WINDOWS = 20


def _f(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:.3g}" if value >= 1e-4 else f"{value:.1e}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _day(dt: datetime) -> str:
    """The date; with the time of day when it is not midnight (sub-day windows stay distinguishable)."""
    moment = as_utc(dt)
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M")


def verdict(decision: Decision) -> str:
    if decision.action == "retrain":
        return "RETRAIN"
    if decision.status == "insufficient data":
        return "INSUFFICIENT DATA"
    if decision.bad_window:
        return "BAD WINDOW (no retrain yet)"
    return "OK"


def _feature_row(f: FeatureDrift) -> str:
    test = "KS" if f.test == "ks" else "chi²"
    nulls = (
        f"{f.null_rate_reference:.1%} → {f.null_rate_window:.1%}"
        if math.isfinite(f.null_rate_window)
        else "–"
    )
    mark = "**yes**" if f.drifted else "no"
    return (
        f"| {_cell(f.feature)} | {f.kind} | {_f(f.psi)} | {test} {_p(f.pvalue)} | {_f(f.effect)} | {nulls} "
        f"| {mark} | {_cell(f.reason)} |"
    )


def _series_chart(
    title: str, labels: list[str], y_label: str, lines: list[list[float]], *, from_zero: bool
) -> list[str]:
    values = [v for line in lines for v in line]
    pad = max(0.01, 0.1 * (max(values) - min(values)))
    lo = 0.0 if from_zero else math.floor((min(values) - pad) * 100) / 100
    hi = math.ceil((max(values) + pad) * 100) / 100
    series: dict[str, Sequence[float | None]] = {f"line {i}": line for i, line in enumerate(lines)}
    chart = xychart(title, labels, series, y_label=y_label, kind=["line"] * len(lines), y_min=lo, y_max=hi)
    return chart.splitlines()


def _charts(result: WindowResult, history: Sequence[WindowRecord]) -> list[str]:
    current_end = as_utc(result.window_end)
    past = sorted(
        (r for r in history if as_utc(r.window_end) < current_end), key=lambda r: as_utc(r.window_end)
    )
    # windows are labelled by their start day, as in the report header
    points: list[tuple[str, float | None, float | None]] = [
        (_day(r.window_start), r.max_psi, r.metric_value) for r in past
    ]
    perf = result.performance
    points.append(
        (
            _day(result.window_start),
            result.drift.max_psi,
            perf.value if perf is not None and math.isfinite(perf.value) else None,
        )
    )
    points = points[-MAX_CHART_WINDOWS:]
    out: list[str] = []
    psi_pts = [(d, v) for d, v, _ in points if v is not None and math.isfinite(v)]
    if len(psi_pts) >= 2:
        threshold = float(result.drift.thresholds.get("psi", 0.2))
        out += ["", f"Max feature PSI per window (second line: threshold {threshold:g}):", ""]
        out += _series_chart(
            "Max feature PSI",
            [d for d, _ in psi_pts],
            "PSI",
            [[v for _, v in psi_pts], [threshold] * len(psi_pts)],
            from_zero=True,
        )
    metric_pts = [(d, v) for d, _, v in points if v is not None and math.isfinite(v)]
    if len(metric_pts) >= 2 and perf is not None:
        lines = [[v for _, v in metric_pts]]
        note = ""
        if perf.baseline is not None:
            higher_is_better = direction_sign(perf.metric) > 0
            limit = perf.baseline - perf.max_drop if higher_is_better else perf.baseline + perf.max_drop
            lines += [[perf.baseline] * len(metric_pts), [limit] * len(metric_pts)]
            sign = "-" if higher_is_better else "+"
            note = f" (other lines: baseline {perf.baseline:.3f}, baseline {sign} max drop = {limit:.3f})"
        out += ["", f"{perf.metric} per window{note}:", ""]
        out += _series_chart(perf.metric, [d for d, _ in metric_pts], perf.metric, lines, from_zero=False)
    return out


def render_monitor_report(
    result: WindowResult,
    decision: Decision,
    history: Sequence[WindowRecord],
    *,
    model_version: str,
) -> str:
    """Markdown report of one monitor run: verdict and reasons first, then drift, performance, trend."""
    drift = result.drift
    lines = [
        f"## Model monitor: {verdict(decision)}",
        "",
        f"Model `{model_version}` · window {_day(result.window_start)} → {_day(result.window_end)} · "
        f"{result.rows:,} rows · {len(drift.drifted_features)} of {len(drift.features)} features drifted · "
        f"{decision.consecutive_bad} consecutive bad window(s)"
        + (" · in cool-down" if decision.in_cooldown else ""),
        "",
    ]
    lines += [f"- {_cell(reason)}" for reason in decision.reasons]

    perf = result.performance
    lines += ["", "### Performance vs baseline", ""]
    if perf is None:
        lines.append("No labels were looked up for this window.")
    else:
        pct = round(perf.confidence * 100)
        lines += [
            (
                f"| metric | window | {pct}% CI | baseline | drop (positive = worse) | drop {pct}% CI | max drop "
                "| labelled | label coverage | decayed |"
            ),
            "|---|---|---|---|---|---|---|---|---|---|",
            (
                f"| {perf.metric} | {_f(perf.value, 4)} | [{_f(perf.ci_low, 4)}, {_f(perf.ci_high, 4)}] "
                f"| {_f(perf.baseline, 4)} | {_f(perf.drop, 4)} | [{_f(perf.drop_ci_low, 4)}, {_f(perf.drop_ci_high, 4)}] "
                f"| {perf.max_drop:g} | {perf.labelled:,} | {perf.label_coverage:.1%} | "
                f"{'**yes**' if perf.decayed else 'no'} |"
            ),
            "",
            f"{perf.status}: {_cell(perf.reason)}. Decayed means the whole CI of the drop is above the max drop.",
        ]

    lines += _early_warning_lines(result)

    t = drift.thresholds
    lines += [
        "",
        "### Feature drift",
        "",
        (
            f"Rule: drifted when PSI > {t.get('psi', '?')}, or when the KS / chi² p-value < "
            f"{t.get('ks_pvalue', '?')} / {t.get('chi2_pvalue', '?')} with an effect (KS D / total variation) >= "
            f"{t.get('min_effect', '?')}."
        ),
        "",
        "| feature | type | PSI | test p-value | effect | null rate ref → window | drifted | why |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ranked = sorted(drift.features, key=lambda f: (not f.drifted, -(f.psi if math.isfinite(f.psi) else -1)))
    lines += [_feature_row(f) for f in ranked[:MAX_FEATURE_ROWS]]
    if len(ranked) > MAX_FEATURE_ROWS:
        hidden = ranked[MAX_FEATURE_ROWS:]
        lines.append(
            f"\n… {len(hidden)} more features not shown ({sum(f.drifted for f in hidden)} of them drifted)."
        )
    if drift.prediction is not None:
        p = drift.prediction
        lines += [
            "",
            (
                f"Prediction drift: PSI {_f(p.psi)} (threshold {t.get('prediction_psi', '?')}), "
                f"KS D {_f(p.statistic)} → {'**drifted**' if p.drifted else 'not drifted'}."
            ),
        ]

    charts = _charts(result, history)
    if charts:
        lines += ["", "### Trend over recent windows", *charts]
    text = "\n".join(lines) + "\n"
    # never exceed the comment limit, whatever the feature count
    return truncate_markdown(
        text, GITHUB_COMMENT_LIMIT, "\n\n… report truncated to fit the 65,536-character limit.\n"
    )


def _early_warning_lines(result: WindowResult) -> list[str]:
    """Estimated performance before labels, the reference's calibration, realized once labels arrive."""
    est = result.estimate
    if est is None:
        return []
    lines = ["", "### Early warning: performance estimated before labels", ""]
    if est.status == "not estimated":
        return [*lines, f"Not estimated: {_cell(est.reason)}."]
    pct = round(est.confidence * 100)
    flag = "**WARNING**" if est.warning else ("not valid" if est.status == "not valid" else "no warning")
    lines += [
        (
            f"| metric | estimated (all {est.rows:,} rows) | {pct}% interval | baseline | estimated drop "
            f"| drop {pct}% interval | max drop | early warning |"
        ),
        "|---|---|---|---|---|---|---|---|",
        (
            f"| {est.metric} | {_f(est.value, 4)} | [{_f(est.ci_low, 4)}, {_f(est.ci_high, 4)}] "
            f"| {_f(est.baseline, 4)} | {_f(est.drop, 4)} | [{_f(est.drop_ci_low, 4)}, {_f(est.drop_ci_high, 4)}] "
            f"| {est.max_drop:g} | {flag} |"
        ),
        "",
        f"{_cell(est.reason)}.",
    ]
    cal = est.calibration
    if cal is not None:
        lines += [
            "",
            (
                f"Calibration, checked on the reference data ({cal.reference_rows:,} holdout rows): "
                f"{'**calibrated**' if cal.calibrated else '**not calibrated**'}; expected calibration "
                f"error {_f(cal.ece, 4)} (max {cal.max_ece:g}); {est.metric} estimated from the holdout's "
                f"probabilities {_f(cal.reference_estimate, 4)} [{_f(cal.reference_ci_low, 4)}, "
                f"{_f(cal.reference_ci_high, 4)}], realized {_f(cal.reference_realized, 4)}. The estimate is "
                "valid only for a calibrated model; its interval is the spread of labels drawn from the "
                "probabilities and does not include a calibration error."
            ),
        ]
    if est.labelled:
        lines += [
            "",
            f"Estimated vs realized on the {est.labelled:,} labelled rows of this window:",
            "",
            f"| metric | estimated | {pct}% interval | realized | realized inside |",
            "|---|---|---|---|---|",
            (
                f"| {est.metric} | {_f(est.labelled_estimate, 4)} | [{_f(est.labelled_ci_low, 4)}, "
                f"{_f(est.labelled_ci_high, 4)}] | {_f(est.realized, 4)} | "
                f"{_inside(est.realized, est.labelled_ci_low, est.labelled_ci_high)} |"
            ),
        ]
    else:
        lines += ["", "No labels yet in this window: the estimate is all there is until they arrive."]
    return lines


def _inside(value: float, low: float, high: float) -> str:
    if not all(math.isfinite(v) for v in (value, low, high)):
        return "–"
    return "yes" if low <= value <= high else "no"


def _save_atomic(fig: object, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # type: ignore[arg-type]  # Agg canvas: no display, no global pyplot state
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)  # type: ignore[attr-defined]
    atomic_write_bytes(path, buffer.getvalue())


def write_monitor_plots(
    result: WindowResult, history: Sequence[WindowRecord], out_dir: Path | str
) -> dict[str, Path]:
    """PNG plots: PSI per feature (`drift_psi.png`) and the metric over windows (`metric_history.png`,
    only when at least one window has a metric value). Returns name -> path."""
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    features = sorted(result.drift.features, key=lambda f: f.psi if math.isfinite(f.psi) else 0.0)
    fig = Figure(figsize=(7, max(2.5, 0.3 * len(features) + 1)))
    ax = fig.add_subplot()
    values = [f.psi if math.isfinite(f.psi) else 0.0 for f in features]
    colors = ["tab:red" if f.drifted else "tab:blue" for f in features]
    ax.barh([f.feature for f in features], values, color=colors)
    threshold = float(result.drift.thresholds.get("psi", 0.2))
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"PSI threshold {threshold:g}")
    ax.set_xlabel("PSI (red = drifted)")
    ax.set_title(f"Feature drift, window {_day(result.window_start)} to {_day(result.window_end)}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    paths["psi"] = out / "drift_psi.png"
    _save_atomic(fig, paths["psi"])

    perf = result.performance
    end = as_utc(result.window_end)
    points = [
        (as_utc(r.window_start), r.metric_value, r.metric_ci_low, r.metric_ci_high)
        for r in sorted(history, key=lambda r: as_utc(r.window_end))
        if as_utc(r.window_end) < end
    ]
    if perf is not None:
        points.append((as_utc(result.window_start), perf.value, perf.ci_low, perf.ci_high))
    points = [p for p in points if p[1] is not None and math.isfinite(p[1])]
    if points:
        fig = Figure(figsize=(7, 3.5))
        ax = fig.add_subplot()
        # matplotlib's stubs list no datetime sequences, although its date axis takes them
        xs: Any = [p[0] for p in points]
        ax.plot(xs, [float(p[1]) for p in points if p[1] is not None], marker="o", label="window")
        lows = [p[2] if p[2] is not None and math.isfinite(p[2]) else p[1] for p in points]
        highs = [p[3] if p[3] is not None and math.isfinite(p[3]) else p[1] for p in points]
        ax.fill_between(
            xs, np.asarray(lows, dtype=float), np.asarray(highs, dtype=float), alpha=0.2, label="CI"
        )
        if perf is not None and perf.baseline is not None:
            ax.axhline(perf.baseline, color="black", linewidth=1, label="baseline")
            higher_is_better = direction_sign(perf.metric) > 0
            limit = perf.baseline - perf.max_drop if higher_is_better else perf.baseline + perf.max_drop
            ax.axhline(limit, color="tab:red", linestyle="--", linewidth=1, label="baseline - max drop")
        ax.set_ylabel(perf.metric if perf is not None else "metric")
        ax.set_title("Performance over monitoring windows (by window start)")
        ax.legend(loc="best")
        fig.autofmt_xdate()
        fig.tight_layout()
        paths["metric"] = out / "metric_history.png"
        _save_atomic(fig, paths["metric"])
    return paths
