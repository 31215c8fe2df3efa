"""The ONE pull-request report: `reports/pr/report.md` (+ `summary.json`).

Verdict first, then the evidence a reviewer needs, in order of importance. It must read well
with no images (Mermaid renders natively on GitHub) and fit GitHub's 65,536-character comment
limit: sections are truncated from the least important up, never the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gitops_ml.errors import EXIT_BAD_INPUT, EXIT_GATES_FAILED, EXIT_OK
from gitops_ml.reporting.mermaid import xychart

GITHUB_COMMENT_LIMIT = 65_536
# Headroom for CML's watermark and image links rewritten to longer URLs on upload.
REPORT_BUDGET = 60_000
WATERMARK_TITLE = "gitops-ml PR check"


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
        return (f"# ⛔ {r.title}: BAD INPUT — nothing was trained or promoted\n\n"
                f"```text\n{r.error}\n```\n")
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
    pct = int(round(comp.confidence * 100))
    lines = [f"## Metrics on the holdout ({comp.n_rows:,} rows)", ""]
    if comp.has_production:
        lines += [f"| metric | production | candidate | delta | {pct}% CI of delta | |",
                  "| --- | ---: | ---: | ---: | --- | --- |"]
        marks = {"better": "🟢 better", "worse": "🔴 worse", "inconclusive": "⚪ inconclusive"}
        for m in comp:
            arrow = "↑" if m.direction == "higher" else "↓"
            lines.append(f"| {m.metric} {arrow} | {_fmt(m.production)} | {_fmt(m.candidate)} | {_signed(m.delta)} "
                         f"| [{_signed(m.ci_low)}, {_signed(m.ci_high)}] | {marks.get(m.outcome, '')} |")
    else:
        lines += [f"| metric | candidate | {pct}% CI |", "| --- | ---: | --- |"]
        for m in comp:
            arrow = "↑" if m.direction == "higher" else "↓"
            lo, hi = m.candidate_ci
            lines.append(f"| {m.metric} {arrow} | {_fmt(m.candidate)} | [{_fmt(lo)}, {_fmt(hi)}] |")
    notes = [f"- {m.metric}: {m.note}" for m in comp if m.note]
    lines += ["", f"Intervals: {comp.method}, {comp.n_resamples:,} resamples, seed {comp.seed}."]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _chart_section(r: PrCheckResult) -> str:
    comp = r.comparison
    if comp is None:
        return ""
    higher = [m for m in comp if m.direction == "higher" and m.candidate is not None and math.isfinite(m.candidate)]
    if not higher:
        return ""
    series: dict[str, list[float | None]] = {"candidate": [m.candidate for m in higher]}
    legend = "bars: candidate"
    if comp.has_production:
        series["production"] = [m.production for m in higher]
        legend += ", line: production"
    chart = xychart("Candidate vs production (higher is better)", [m.metric for m in higher], series,
                    y_label="score")
    parts = ["## Chart", "", chart, "", f"_{legend}_"]
    seg = r.segments
    if seg is not None and len(seg) and {"candidate", "production"} <= set(seg.columns):
        top = seg.dropna(subset=["candidate"]).head(12)
        labels = [f"{c}={v}" for c, v in zip(top["column"], top["value"], strict=True)]
        seg_series: dict[str, list[float | None]] = {"candidate": list(top["candidate"])}
        if top["production"].notna().any():
            seg_series["production"] = [None if pd.isna(v) else float(v) for v in top["production"]]
        parts += ["", xychart(f"{r.primary_metric} by segment", labels, seg_series, y_label=r.primary_metric)]
    return "\n".join(parts) + "\n"


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
    cols = [c for c in ("column", "value", "n", "production", "candidate", "delta", "flagged") if c in seg.columns]
    lines += ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    ordered = seg.sort_values("delta") if "delta" in seg.columns else seg
    for _, row in ordered.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if c == "flagged":
                cells.append("🔴" if v else "")
            elif c == "delta":
                cells.append(_signed(None if pd.isna(v) else float(v)))
            elif isinstance(v, float):
                cells.append(_fmt(v))
            else:
                cells.append(_cell(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _contract_section(r: PrCheckResult) -> str:
    lines = ["## Data contract", ""]
    data = r.data
    if data:
        lines.append(f"- rows: {data.get('rows', '–'):,} from {data.get('batches', '–')} batches; "
                     f"manifest hash `{str(data.get('manifest_hash', ''))[:12]}`")
        if data.get("split"):
            lines.append(f"- split: {data['split']}")
    if r.contract is not None:
        passed = r.contract.passed
        n_rules = len(r.contract.rules)
        n_failed = sum(1 for rule in r.contract.rules if not rule.passed)
        lines.append(f"- contract: {'✅ passed' if passed else '❌ FAILED'} ({n_rules - n_failed}/{n_rules} rules)")
        if not passed:
            lines += ["", "| column | rule | failing | examples (row: value) |", "| --- | --- | ---: | --- |"]
            for rule in r.contract.rules:
                if rule.passed:
                    continue
                examples = ", ".join(f"{pos}: {_short(val)}" for pos, val in list(rule.examples)[:5])
                lines.append(f"| {rule.column or '–'} | {rule.rule} | {rule.failing_count:,} | {_cell(examples)} |")
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
        return ("## deepchecks\n\n⏭️ **Not run.** Not run is never a pass: a check marked `blocking` that did "
                "not run fails the `deepchecks` gate.\n")
    lines = ["## deepchecks", "", "| suite | passed | warned | failed | info | not run | error | HTML |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    problems = []
    for name, summary in r.deepchecks.items():
        counts = summary.counts
        html = getattr(summary, "html_path", None)
        html_cell = f"`{getattr(html, 'name', html)}` (artifact)" if html else "–"
        lines.append(f"| {name} | {counts.get('passed', 0)} | {counts.get('warned', 0)} | {counts.get('failed', 0)} "
                     f"| {counts.get('info', 0)} | {counts.get('not_run', 0)} | {counts.get('error', 0)} | {html_cell} |")
        for check in summary.checks:
            if check.status in ("failed", "warned", "error", "not_run"):
                detail = check.error or "; ".join(
                    f"{c[0]}: {c[2]}" if isinstance(c, tuple | list) else str(c)
                    for c in check.conditions if (c[1] if isinstance(c, tuple | list) else "") != "passed"
                )
                flag = " **(blocking)**" if check.blocks else ""
                problems.append(f"- {name} / `{check.check}`: {check.status}{flag} — {_short(detail, 300)}")
    sampled = [f"{name}: {', '.join(f'{k} {v:,} of {summary.input_sizes.get(k, v):,}' for k, v in summary.sample_sizes.items())}"
               for name, summary in r.deepchecks.items()
               if any(v < summary.input_sizes.get(k, v) for k, v in getattr(summary, "sample_sizes", {}).items())]
    if problems:
        lines += ["", *problems]
    if sampled:
        lines += ["", "Sampled (seeded, `evaluation.deepchecks.sample_size`) to keep the suites fast: "
                  + "; ".join(sampled) + " rows."]
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
    ("chart", _chart_section),
    ("segments", _segments_section),
    ("contract", _contract_section),
    ("deepchecks", _deepchecks_section),
    ("plots", _plots_section),
    ("reproducibility", _repro_section),
)
# Dropped or cut first when over budget: least important first.
TRUNCATION_ORDER = ("segments", "deepchecks", "contract", "plots", "chart", "gates", "metrics", "reproducibility")


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
