"""The ONE pull-request report: `reports/pr/report.md` (+ `summary.json`).

Verdict first, then the evidence a reviewer needs, in order of importance. It must read well
with no images (Mermaid renders natively on GitHub) and fit GitHub's 65,536-character comment
limit: sections are truncated from the least important up, never the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.errors import EXIT_BAD_INPUT, EXIT_GATES_FAILED, EXIT_OK
from gitops_ml.evaluation.curves import Curve
from gitops_ml.evaluation.metrics import METRIC_SCALE, ClassMetrics
from gitops_ml.reporting.mermaid import xychart

# Headroom for CML's watermark and image links rewritten to longer URLs on upload.
REPORT_BUDGET = 60_000
WATERMARK_TITLE = "gitops-ml PR check"
MAX_CLASS_ROWS = 50  # the rest of the per-class table is in summary.json


@dataclass
class PrCheckResult:
    status: str  # "pass" | "fail" | "error"
    title: str = "Model check"
    error: str | None = None
    verdict: Any | None = None  # evaluation.gates.Verdict
    comparison: Any | None = None  # evaluation.compare.Comparison
    primary_metric: str = "roc_auc"
    candidate_version: str | None = None
    production_version: str | None = None
    segments: pd.DataFrame | None = None
    per_class: list[ClassMetrics] | None = None  # candidate, classification only
    per_class_production: list[ClassMetrics] | None = None
    costs_note: str | None = None  # the costs expected_cost was computed with, in words
    curves: list[Curve] | None = None  # ROC, PR, calibration, cost, per-class recall, residuals...
    decisions: dict[str, str] = field(default_factory=dict)  # model -> its decision rule, in words
    decision_warnings: list[str] = field(default_factory=list)  # e.g. decides everything one way
    model_card: str | None = None  # path of the model card preview, relative to the report
    contract: Any | None = None  # contracts.validate.ValidationReport
    contract_diff: Any | None = None  # contracts.diff.ContractDiff (None: no base to diff against)
    contract_diff_note: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # rows, batches, manifest_hash, split
    deepchecks: dict[str, Any] = field(default_factory=dict)  # suite name -> SuiteSummary
    plots: dict[str, str] = field(default_factory=dict)  # name -> path relative to the report
    reproducibility: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return {"pass": EXIT_OK, "fail": EXIT_GATES_FAILED}.get(self.status, EXIT_BAD_INPUT)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+.{digits}f}"


# --- sections ------------------------------------------------------------------------------------


def _verdict_section(r: PrCheckResult) -> str:
    if r.status == "error":
        return f"# ⛔ {r.title}: BAD INPUT — nothing was trained or promoted\n\n```text\n{r.error}\n```\n"
    icon, word = ("✅", "PASS") if r.status == "pass" else ("❌", "FAIL")
    lines = [f"# {icon} {r.title}: {word}", ""]
    headline = getattr(r.verdict, "headline", None)
    if headline:
        lines += [headline, ""]
    prod = r.production_version or "none yet"
    lines.append(f"Candidate `{r.candidate_version}` vs production `{prod}` on the same holdout.")
    failed = [g for g in getattr(r.verdict, "gates", []) or [] if g.status == "fail"]
    if failed:
        lines += ["", "**Failed gates**", ""]
        lines += [f"- ❌ `{g.name}`: {g.reason}" for g in failed]
    return "\n".join(lines) + "\n"


def _gates_section(r: PrCheckResult) -> str:
    gates = list(getattr(r.verdict, "gates", []) or [])
    if not gates:
        return ""
    icon = {"pass": "✅", "fail": "❌", "skipped": "⏭️"}
    rows = ["## Gates", "", "| gate | result | reason |", "| --- | --- | --- |"]
    for g in gates:
        rows.append(f"| `{g.name}` | {icon.get(g.status, '')} {g.status} | {_cell(g.reason)} |")
    return "\n".join(rows) + "\n"


def _metrics_section(r: PrCheckResult) -> str:
    comp = r.comparison
    if comp is None:
        return ""
    pct = round(comp.confidence * 100)
    lines = [f"## Metrics on the holdout ({comp.n_rows:,} rows)", ""]
    if comp.has_production:
        lines += [
            f"| metric | production | candidate | delta | {pct}% CI of delta | |",
            "| --- | ---: | ---: | ---: | --- | --- |",
        ]
        marks = {"better": "🟢 better", "worse": "🔴 worse", "inconclusive": "⚪ inconclusive"}
        for m in comp:
            arrow = "↑" if m.direction == "higher" else "↓"
            lines.append(
                f"| {m.metric} {arrow} | {_fmt(m.production)} | {_fmt(m.candidate)} | {_signed(m.delta)} "
                f"| [{_signed(m.ci_low)}, {_signed(m.ci_high)}] | {marks.get(m.outcome, '')} |"
            )
    else:
        lines += [f"| metric | candidate | {pct}% CI |", "| --- | ---: | --- |"]
        for m in comp:
            arrow = "↑" if m.direction == "higher" else "↓"
            lo, hi = m.candidate_ci
            lines.append(f"| {m.metric} {arrow} | {_fmt(m.candidate)} | [{_fmt(lo)}, {_fmt(hi)}] |")
    notes = [f"- {m.metric}: {m.note}" for m in comp if m.note]
    lines += ["", f"Intervals: {comp.method}, {comp.n_resamples:,} resamples, seed {comp.seed}."]
    if r.costs_note and "expected_cost" in comp.metrics:
        lines += [
            "",
            (
                f"`expected_cost` is the cost of 1,000 decisions on the holdout with `evaluation.costs`: "
                f"{r.costs_note}."
            ),
        ]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


# Which metrics share an axis: only those of the same range and direction. Unbounded metrics
# of different meaning (log loss, MAPE) get a chart each; errors in target units share one.
_SCALE_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "unit": (0.0, 1.0),
    "at_most_one": (None, 1.0),
    "non_negative": (0.0, None),
    "target": (0.0, None),
    "cost": (None, None),
}
_SHARED_SCALES = ("unit", "target")


def _chart_groups(metrics: list[Any]) -> list[tuple[str, list[Any]]]:
    groups: dict[tuple[str, str], list[Any]] = {}
    singles: list[tuple[str, list[Any]]] = []
    for m in metrics:
        scale = METRIC_SCALE.get(m.metric, "non_negative")
        if scale in _SHARED_SCALES:
            groups.setdefault((scale, m.direction), []).append(m)
        else:
            singles.append((scale, [m]))
    titled = []
    for (shared_scale, _direction), members in groups.items():
        if len(members) == 1:
            singles.insert(0, (shared_scale, members))
        else:
            titled.append((shared_scale, members))
    return titled + singles


def _metric_chart(comp: Any, scale: str, members: list[Any]) -> str:
    floor, ceiling = _SCALE_LIMITS[scale]
    word = "higher" if members[0].direction == "higher" else "lower"
    labels = [m.metric for m in members]
    if len(members) == 1:
        m = members[0]
        labels = ["production", "candidate"] if comp.has_production else ["candidate"]
        series: dict[str, list[float | None]] = {
            "value": [m.production, m.candidate] if comp.has_production else [m.candidate]
        }
        title, y_label = f"{m.metric} ({word} is better)", m.metric
    else:
        series = {"candidate": [m.candidate for m in members]}
        if comp.has_production:
            series["production"] = [m.production for m in members]
        title = f"Candidate vs production ({word} is better)"
        y_label = "target units" if scale == "target" else "score"
    values = [v for vs in series.values() for v in vs if v is not None and math.isfinite(v)]
    # bars start at zero (a zoomed axis exaggerates a small difference); scores span their whole range
    y_min = 0.0 if values and min(values) >= 0 else None
    y_max = 1.0 if scale == "unit" else None
    return xychart(
        title, labels, series, y_label=y_label, y_min=y_min, y_max=y_max, floor=floor, ceiling=ceiling
    )


def _chart_section(r: PrCheckResult) -> str:
    comp = r.comparison
    if comp is None:
        return ""
    shown = [m for m in comp if m.candidate is not None and math.isfinite(m.candidate)]
    if not shown:
        return ""
    parts = [
        "## Charts",
        "",
        "_One axis per range: metrics share a chart only when they share a range and a "
        "direction. Several metrics: bars candidate"
        + (", line production" if comp.has_production else "")
        + "; one metric: a bar per model._",
    ]
    for scale, members in _chart_groups(shown):
        parts += ["", _metric_chart(comp, scale, members)]
    seg = r.segments
    if seg is not None and len(seg) and {"candidate", "production"} <= set(seg.columns):
        top = seg.dropna(subset=["candidate"]).head(12)
        if len(top):
            labels = [f"{c}={segment_value(v)}" for c, v in zip(top["column"], top["value"], strict=True)]
            seg_series: dict[str, list[float | None]] = {"candidate": list(top["candidate"])}
            if top["production"].notna().any():
                seg_series["production"] = [None if pd.isna(v) else float(v) for v in top["production"]]
            floor, ceiling = _SCALE_LIMITS[METRIC_SCALE.get(r.primary_metric, "non_negative")]
            parts += [
                "",
                xychart(
                    f"{r.primary_metric} by segment",
                    labels,
                    seg_series,
                    y_label=r.primary_metric,
                    floor=floor,
                    ceiling=ceiling,
                ),
            ]
    return "\n".join(parts) + "\n"


def _decisions_section(r: PrCheckResult) -> str:
    if not r.decisions and not r.decision_warnings and not r.model_card:
        return ""
    lines = ["## Decisions", ""]
    lines += [f"- {model} decides: {rule}" for model, rule in r.decisions.items()]
    lines += [f"- ⚠️ {warning}" for warning in r.decision_warnings]
    if r.model_card:
        card = f"[{r.model_card}]({r.model_card})"
        lines.append(f"- Model card: {card} in the artifact; promotion commits it as `deploy/model-card.md`")
    return "\n".join(lines) + "\n"


def _curves_section(r: PrCheckResult) -> str:
    if not r.curves:
        return ""
    parts = [
        "## Curves",
        "",
        (
            "_Candidate and production on one chart, sampled on an even grid; the full-resolution "
            "PNGs are in the artifact._"
        ),
    ]
    for c in r.curves:
        names = list(c.series)
        kinds = c.kinds or ["line"] * len(names)
        order = ", ".join(f"{k} {i + 1}: {n}" for i, (k, n) in enumerate(zip(kinds, names, strict=True)))
        if c.categories is not None:
            chart = xychart(
                c.title, c.categories, c.series, y_label=c.y_label, kind=kinds, y_min=c.y_min, y_max=c.y_max
            )
        else:
            chart = xychart(
                c.title,
                [],
                c.series,
                y_label=c.y_label,
                kind=kinds,
                y_min=c.y_min,
                y_max=c.y_max,
                x_range=(c.x_min, c.x_max),
                x_label=c.x_label,
            )
        parts += ["", chart, "", f"_{order}{'; ' + c.note if c.note else ''}._"]
    return "\n".join(parts) + "\n"


def segment_value(value: Any) -> str:
    """A segment's value as written in the data: a float-coded category 3.0 reads `3`, not `3.0000`."""
    if isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


_SEGMENT_HEADERS = {"ci_low": "CI of the delta"}


def _segments_section(r: PrCheckResult) -> str:
    seg = r.segments
    if seg is None or not len(seg):
        return ""
    lines = [f"## Segments ({r.primary_metric})", ""]
    flagged = seg[seg["flagged"]] if "flagged" in seg.columns else seg.iloc[0:0]
    if len(flagged):
        lines += [f"**{len(flagged)} segment regression(s) beyond the allowed amount.**", ""]
    else:
        lines += ["No segment regresses beyond the allowed amount.", ""]
    cols = [
        c
        for c in ("column", "value", "n", "production", "candidate", "delta", "ci_low", "flagged")
        if c in seg.columns
    ]
    has_notes = "note" in seg.columns and seg["note"].notna().any()
    header = [_SEGMENT_HEADERS.get(c, c) for c in cols] + (["note"] if has_notes else [])
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    ordered = seg.sort_values("delta") if "delta" in seg.columns else seg
    for _, row in ordered.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if c == "flagged":
                cells.append("🔴" if v else "")
            elif c == "value":
                cells.append(_cell(segment_value(v)))
            elif c == "delta":
                cells.append(_signed(None if pd.isna(v) else float(v)))
            elif c == "ci_low":
                low, high = row["ci_low"], row["ci_high"]
                cells.append(
                    "" if pd.isna(low) or pd.isna(high) else f"[{float(low):+.4f}, {float(high):+.4f}]"
                )
            elif isinstance(v, float):
                cells.append(_fmt(v))
            else:
                cells.append(_cell(v))
        if has_notes:
            note = row["note"]
            cells.append(_cell(note) if isinstance(note, str) else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _per_class_section(r: PrCheckResult) -> str:
    rows = r.per_class
    if not rows:
        return ""
    production = {_label_key(c.label): c for c in (r.per_class_production or [])}
    lines = ["## Per class (candidate)", ""]
    head = "| class | support | precision | recall | F1 |"
    rule = "| --- | ---: | ---: | ---: | ---: |"
    if production:
        head += " recall (production) | F1 (production) |"
        rule += " ---: | ---: |"
    lines += [head, rule]
    for c in rows[:MAX_CLASS_ROWS]:
        line = f"| {_cell(segment_value(c.label))} | {c.support:,} | {_fmt(c.precision)} | {_fmt(c.recall)} | {_fmt(c.f1)} |"
        if production:
            p = production.get(_label_key(c.label))
            line += f" {_fmt(p.recall if p else None)} | {_fmt(p.f1 if p else None)} |"
        lines.append(line)
    if len(rows) > MAX_CLASS_ROWS:
        lines += ["", f"_… and {len(rows) - MAX_CLASS_ROWS} more classes in summary.json._"]
    if any(c.support == 0 for c in rows):
        lines += ["", "Recall is – for a class with no holdout row: there is nothing to recall."]
    return "\n".join(lines) + "\n"


def _label_key(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


def _contract_section(r: PrCheckResult) -> str:
    lines = ["## Data contract", ""]
    data = r.data
    if data:
        lines.append(
            f"- rows: {data.get('rows', '–'):,} from {data.get('batches', '–')} batches; "
            f"manifest hash `{str(data.get('manifest_hash', ''))[:12]}`"
        )
        if data.get("split"):
            lines.append(f"- split: {data['split']}")
    if r.contract is not None:
        passed = r.contract.passed
        n_rules = len(r.contract.rules)
        n_failed = sum(1 for rule in r.contract.rules if not rule.passed)
        lines.append(
            f"- contract: {'✅ passed' if passed else '❌ FAILED'} ({n_rules - n_failed}/{n_rules} rules)"
        )
        if not passed:
            lines += ["", "| column | rule | failing | examples (row: value) |", "| --- | --- | ---: | --- |"]
            for rule in r.contract.rules:
                if rule.passed:
                    continue
                examples = ", ".join(f"{pos}: {_short(val)}" for pos, val in list(rule.examples)[:5])
                lines.append(
                    f"| {rule.column or '–'} | {rule.rule} | {rule.failing_count:,} | {_cell(examples)} |"
                )
    lines += ["", "### Contract diff vs base", ""]
    if r.contract_diff is not None:
        md = r.contract_diff.to_markdown().strip()
        lines.append(md or "No changes.")
    else:
        lines.append(r.contract_diff_note or "Not computed.")
    return "\n".join(lines) + "\n"


def _deepchecks_section(r: PrCheckResult) -> str:
    if not r.deepchecks:
        if r.comparison is None:  # stopped before training: the error says why
            return ""
        return (
            "## deepchecks\n\n⏭️ **Not run.** Not run is never a pass: a check marked `blocking` that did "
            "not run fails the `deepchecks` gate.\n"
        )
    lines = [
        "## deepchecks",
        "",
        "| suite | passed | warned | failed | info | not run | error | HTML |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    problems = []
    for name, summary in r.deepchecks.items():
        counts = summary.counts
        html = getattr(summary, "html_path", None)
        html_cell = f"`{getattr(html, 'name', html)}` (artifact)" if html else "–"
        lines.append(
            f"| {name} | {counts.get('passed', 0)} | {counts.get('warned', 0)} | {counts.get('failed', 0)} "
            f"| {counts.get('info', 0)} | {counts.get('not_run', 0)} | {counts.get('error', 0)} | {html_cell} |"
        )
        for check in summary.checks:
            if check.status in ("failed", "warned", "error", "not_run"):
                detail = check.error or "; ".join(
                    f"{c[0]}: {c[2]}" if isinstance(c, tuple | list) else str(c)
                    for c in check.conditions
                    if (c[1] if isinstance(c, tuple | list) else "") != "passed"
                )
                flag = " **(blocking)**" if check.blocks else ""
                problems.append(f"- {name} / `{check.check}`: {check.status}{flag} — {_short(detail, 300)}")
    sampled = [
        f"{name}: {', '.join(f'{k} {v:,} of {summary.input_sizes.get(k, v):,}' for k, v in summary.sample_sizes.items())}"
        for name, summary in r.deepchecks.items()
        if any(v < summary.input_sizes.get(k, v) for k, v in getattr(summary, "sample_sizes", {}).items())
    ]
    if problems:
        lines += ["", *problems]
        codes = next((s.label_codes for s in r.deepchecks.values() if getattr(s, "label_codes", ())), ())
        if codes:
            legend = ", ".join(f"{i} = `{_cell(c)}`" for i, c in enumerate(codes))
            lines += ["", f"deepchecks' texts name the classes by code: {legend}."]
    if sampled:
        lines += [
            "",
            "Sampled (seeded, `evaluation.deepchecks.sample_size`) to keep the suites fast: "
            + "; ".join(sampled)
            + " rows.",
        ]
    lines += ["", "A check that crashed or did not run is listed as such and never counted as passed."]
    return "\n".join(lines) + "\n"


def _plots_section(r: PrCheckResult) -> str:
    if not r.plots:
        return ""
    lines = ["## Plots", ""]
    lines += [f"![{name}]({path})" for name, path in r.plots.items()]
    return "\n".join(lines) + "\n"


def _repro_section(r: PrCheckResult) -> str:
    lines = ["## Reproducibility", "", "```text"]
    for key, value in r.reproducibility.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        lines.append(f"{key:<16} {value}")
    if r.timings:
        total = sum(r.timings.values())
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in r.timings.items())
        lines.append(f"{'wall time':<16} {total:.1f}s ({stages})")
    lines.append("```")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _short(value: Any, width: int = 40) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


SECTIONS = (  # in report order; the verdict is never truncated
    ("verdict", _verdict_section),
    ("gates", _gates_section),
    ("metrics", _metrics_section),
    ("per_class", _per_class_section),
    ("chart", _chart_section),
    ("decisions", _decisions_section),
    ("curves", _curves_section),
    ("segments", _segments_section),
    ("contract", _contract_section),
    ("deepchecks", _deepchecks_section),
    ("plots", _plots_section),
    ("reproducibility", _repro_section),
)
# Dropped or cut first when over budget: least important first.
TRUNCATION_ORDER = (
    "curves",
    "segments",
    "deepchecks",
    "contract",
    "plots",
    "chart",
    "per_class",
    "decisions",
    "gates",
    "metrics",
    "reproducibility",
)


def render_pr_report(result: PrCheckResult, budget: int = REPORT_BUDGET) -> str:
    parts = {name: fn(result) for name, fn in SECTIONS}
    footer = "\n---\n_Full details: `summary.json` and the deepchecks HTML in the workflow artifact._\n"

    def total() -> int:
        return sum(len(p) + 1 for p in parts.values()) + len(footer)

    for name in TRUNCATION_ORDER:
        if total() <= budget:
            break
        excess = total() - budget
        text = parts[name]
        note = f"\n_… section `{name}` truncated to fit GitHub's comment limit; see summary.json._\n"
        keep = max(0, len(text) - excess - len(note))
        # Cut at a line boundary so tables and code fences stay well formed enough to read.
        cut = text[:keep].rsplit("\n", 1)[0] if keep else ""
        if cut.count("```") % 2:
            cut += "\n```"
        parts[name] = (cut + note) if cut else note
    report = "\n".join(p for p in parts.values() if p) + footer
    if len(report) > budget:  # only the verdict is left and it is huge (e.g. a giant error message)
        report = report[: budget - 200] + "\n```\n\n_… truncated to fit GitHub's comment limit._\n"
    return report
