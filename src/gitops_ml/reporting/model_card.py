"""The model card of one model version: markdown rendered from what the PR check recorded.

Written at promotion as `deploy/model-card.md` in the same commit as the pointer, so `git log -p`
of that file is the card of every version ever promoted; the PR check writes the same card as a
preview in its artifact and links it from the report.

Rendered here rather than with skops' `skops.card.Card`: that card is built around a loaded
estimator object (its hyperparameter table and an HTML/CSS estimator diagram that GitHub shows as
raw markup) and a Hugging Face Hub YAML header, while this card is assembled in the privileged
promotion job from recorded JSON (metadata.json, summary.json) without loading the model, and must
be the same bytes for the same inputs so its git diff shows only what changed between versions.

Every value comes from a file a PR can influence, so each one is written as inert text
(`_text`): no markdown link, image, HTML or table break can be injected through it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_SEGMENT_ROWS = 40
_HEADER_NOTE = (
    "_One card per version, written at promotion with the production pointer; "
    "earlier versions' cards are in this file's git history._"
)
MAX_BATCH_ROWS = 30


@dataclass(frozen=True)
class CardInputs:
    metadata: Mapping[str, Any]  # the artifact's metadata.json
    summary: Mapping[str, Any]  # the PR check's summary.json
    contract_description: Mapping[str, Any] = field(default_factory=dict)  # purpose, usage, limitations
    contract: str | None = None  # "<path> (version ...)"
    owner: str | None = None
    positive_label: Any = None
    costs_note: str | None = None
    batches: Sequence[Mapping[str, Any]] = ()  # the manifest's batch entries
    min_segment_size: int | None = None
    monitoring: Mapping[str, Any] | None = None  # the latest monitor summary.json, when there is one


def card_title(version: Any) -> str:
    """The card's first line: how a card in git history is matched to its version."""
    return f"# Model card: {_code(version)}"


def render_model_card(inputs: CardInputs) -> str:
    meta, summary = inputs.metadata, inputs.summary
    parts = [
        card_title(meta.get("version")),
        "",
        _HEADER_NOTE,
        "",
        _intended_use(inputs),
        _training_data(inputs),
        _metrics(summary),
        _segments(summary),
        _decisions(inputs),
        _limitations(inputs),
        _lineage(meta),
    ]
    return "\n".join(p for p in parts if p is not None).rstrip() + "\n"


def _intended_use(inputs: CardInputs) -> str:
    meta, desc = inputs.metadata, inputs.contract_description
    task = str(meta.get("task"))
    what = {"binary": "binary classification", "multiclass": "multiclass classification"}.get(
        task, "regression"
    )
    target = f"{_code(meta.get('target'))}"
    if task == "binary" and inputs.positive_label is not None:
        target += f" (positive class {_code(inputs.positive_label)})"
    lines = ["## Intended use", ""]
    lines.append(f"- Purpose: {_text(desc.get('purpose')) or 'not stated (contract `description.purpose`)'}")
    if desc.get("usage"):
        lines.append(f"- Usage: {_text(desc['usage'])}")
    lines.append(f"- Owner: {_text(inputs.owner) or 'not stated (contract `team`)'}")
    lines.append(f"- Task: {what} of {target} on dataset {_code(meta.get('dataset'))}")
    lines.append(f"- Estimator: {_code(meta.get('estimator'))}")
    if meta.get("best_params"):
        params = ", ".join(f"{_text(k)}={_text(v)}" for k, v in sorted(meta["best_params"].items()))
        lines.append(f"- Search winner: {params}")
    features = meta.get("features") or []
    lines.append(f"- Features ({len(features)}): {', '.join(f'{_code(f)}' for f in features)}")
    if inputs.contract:
        lines.append(f"- Data contract: {_text(inputs.contract)}")
    return "\n".join(lines) + "\n"


def _training_data(inputs: CardInputs) -> str:
    meta, data = inputs.metadata, inputs.summary.get("data") or {}
    lines = ["## Training data", ""]
    if data.get("rows") is not None:
        lines.append(f"- Rows: {int(data['rows']):,} in {data.get('batches', '?')} batches")
    if data.get("split") or meta.get("split"):
        lines.append(f"- Split: {_text(data.get('split') or meta.get('split'))}")
    lines.append(f"- Manifest hash: {_code(meta.get('data_hash'))}")
    ranges = [b["time_range"] for b in inputs.batches if b.get("time_range")]
    if ranges:
        start = min(str(r.get("start")) for r in ranges)
        end = max(str(r.get("end")) for r in ranges)
        lines.append(f"- Time range: {_text(start)} to {_text(end)}")
    if inputs.batches:
        lines += ["", "| batch | rows | time range | sha256 |", "| --- | ---: | --- | --- |"]
        for b in list(inputs.batches)[:MAX_BATCH_ROWS]:
            span = b.get("time_range") or {}
            when = f"{span.get('start')} to {span.get('end')}" if span else "–"
            rows = f"{int(b['rows']):,}" if b.get("rows") is not None else "–"
            sha = str(b.get("sha256") or "–")[:16]
            lines.append(f"| {_text(b.get('name'))} | {rows} | {_text(when)} | {_code(sha)} |")
        if len(inputs.batches) > MAX_BATCH_ROWS:
            lines.append(f"| … {len(inputs.batches) - MAX_BATCH_ROWS} more | | | |")
    return "\n".join(lines) + "\n"


def _metrics(summary: Mapping[str, Any]) -> str | None:
    comp = summary.get("comparison")
    if not comp:
        return None
    pct = round(float(comp.get("confidence", 0.95)) * 100)
    lines = [
        f"## Metrics on the holdout ({int(comp.get('n_rows', 0)):,} rows)",
        "",
        f"| metric | value | {pct}% CI |",
        "| --- | ---: | --- |",
    ]
    for m in comp.get("metrics", []):
        low, high = (m.get("candidate_ci") or [None, None])[:2]
        arrow = "↑" if m.get("direction") == "higher" else "↓"
        lines.append(
            f"| {_text(m.get('metric'))} {arrow} | {_num(m.get('candidate'))} | [{_num(low)}, {_num(high)}] |"
        )
    lines += ["", f"Intervals: {_text(comp.get('method'))}, {int(comp.get('n_resamples', 0)):,} resamples."]
    return "\n".join(lines) + "\n"


def _segments(summary: Mapping[str, Any]) -> str | None:
    rows = summary.get("segments") or []
    if not rows:
        return None
    lines = [
        "## By segment",
        "",
        "| segment | rows | metric | value | note |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for r in rows[:MAX_SEGMENT_ROWS]:
        lines.append(
            f"| {_text(r.get('column'))} = {_text(r.get('value'))} | {int(r.get('n') or 0):,} | "
            f"{_text(r.get('metric'))} | {_num(r.get('candidate'))} | {_text(r.get('note')) or ''} |"
        )
    if len(rows) > MAX_SEGMENT_ROWS:
        lines.append(f"\n_{len(rows) - MAX_SEGMENT_ROWS} more segments in the check's summary.json._")
    return "\n".join(lines) + "\n"


def _decisions(inputs: CardInputs) -> str:
    meta = inputs.metadata
    lines = ["## Decision threshold and costs", ""]
    rule = meta.get("decision")
    if meta.get("task") == "regression":
        lines.append("- Decisions: none (regression: the prediction is the served value)")
    elif not rule:
        lines.append("- Decides: the most probable class")
    elif rule.get("kind") == "threshold":
        line = f"- Decides: P({_text(rule.get('positive_label'))}) >= {_num(rule.get('threshold'), 3)}"
        if rule.get("validation_rows"):
            line += (
                f", chosen by cost on {int(rule['validation_rows']):,} validation rows carved from the training "
                f"data (cost per 1,000 there {_num(rule.get('validation_cost'), 1)}; "
                f"{_num(rule.get('default_cost'), 1)} at 0.5)"
            )
        lines.append(line)
    else:
        lines.append("- Decides: the class of minimum expected cost under the cost matrix")
    lines.append(f"- Costs: {_text(inputs.costs_note) or 'none configured (`evaluation.costs`)'}")
    return "\n".join(lines) + "\n"


def _limitations(inputs: CardInputs) -> str:
    items: list[str] = []
    if inputs.contract_description.get("limitations"):
        items.append(f"From the data contract: {_text(inputs.contract_description['limitations'])}")
    items += [_text(w) for w in inputs.summary.get("decision_warnings") or []]
    items += _deepchecks_findings(inputs.summary.get("deepchecks"))
    small = [
        r
        for r in inputs.summary.get("segments") or []
        if inputs.min_segment_size is not None and int(r.get("n") or 0) < inputs.min_segment_size
    ]
    if small:
        named = ", ".join(
            f"{_text(r.get('column'))} = {_text(r.get('value'))} ({int(r.get('n') or 0)})" for r in small[:10]
        )
        items.append(f"Segments too small to judge (< {inputs.min_segment_size} holdout rows): {named}")
    items.append(_drift_line(inputs.monitoring))
    return "\n".join(["## Known limitations", "", *(f"- {i}" for i in items)]) + "\n"


def _deepchecks_findings(deepchecks: Mapping[str, Any] | None) -> list[str]:
    if not deepchecks:
        return ["deepchecks: not run for this version (not run is never a pass)"]
    found = []
    for suite, data in deepchecks.items():
        if data.get("skipped"):
            found.append(f"deepchecks {_text(suite)}: skipped")
            continue
        for check in data.get("checks") or []:
            if check.get("status") in ("failed", "error", "errored", "fail"):
                why = f": {_text(check.get('error'))}" if check.get("error") else ""
                found.append(
                    f"deepchecks {_text(suite)}/{_text(check.get('check'))}: {_text(check.get('status'))}{why}"
                )
    return found or ["deepchecks: every check ran and passed its conditions"]


def _drift_line(monitoring: Mapping[str, Any] | None) -> str:
    if not monitoring:
        return "Drift seen in monitoring: no monitoring window was available at promotion"
    window = monitoring.get("window") or {}
    drift = window.get("drift") or {}
    drifted = [f for f in drift.get("features") or [] if f.get("drifted")]
    where = f"window {_text(window.get('window_start'))} to {_text(window.get('window_end'))} of model {_code(monitoring.get('model_version'))}"
    if not drifted:
        return f"Drift seen in monitoring: none ({where})"
    names = ", ".join(f"{_code(f.get('feature'))}" for f in drifted[:15])
    return f"Drift seen in monitoring ({where}): {names}"


def _lineage(meta: Mapping[str, Any]) -> str:
    libs = meta.get("library_versions") or {}
    lines = [
        "## Lineage",
        "",
        "```text",
        f"version          {_text(meta.get('version'))}",
        f"model sha256     {_text(meta.get('sha256'))}",
        f"git commit       {_text(meta.get('git_commit'))}",
        f"config hash      {_text(meta.get('config_hash'))}",
        f"data hash        {_text(meta.get('data_hash'))}",
        f"trained at       {_text(meta.get('created_at'))}",
        f"libraries        {', '.join(f'{_text(k)} {_text(v)}' for k, v in sorted(libs.items()))}",
        "```",
    ]
    return "\n".join(lines) + "\n"


def _num(value: Any, digits: int = 4) -> str:
    if (
        value is None
        or isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        return "–"
    return f"{value:.{digits}f}"


# links, images, HTML and table cells are what a value could inject; emphasis is harmless
_INERT = str.maketrans({c: f"&#{ord(c)};" for c in "<>[]|`!\\"})


def _code(value: Any) -> str:
    """A value as an inline code span (inert by itself; a backtick or pipe could still end it)."""
    return "`" + " ".join(str(value).split()).replace("`", "'").replace("|", "\\|") + "`"


def _text(value: Any) -> str:
    """A value as one line of inert text (markup characters as entities)."""
    if value is None:
        return ""
    return " ".join(str(value).split()).translate(_INERT)
