"""Champion vs challenger on live traffic: the PR check's paired bootstrap and gates, per window.

Each window holds the labelled requests BOTH models scored (one answered, the other scored it in
the shadow), so the comparison is paired exactly as the PR check's holdout comparison is:
`compare_models` on the same rows, `evaluate_gates` with the same `gates:` config. Gates that need
what a window does not have (the contract, deepchecks, segments) are listed as skipped, never passed.

A window is
- "insufficient": fewer than `policy.min_paired_rows` labelled pairs (not judged);
- "better": every gate passes and the lower bound of the improvement's interval on the decision
  metric exceeds `policy.min_improvement` (the PR check would promote it on these rows);
- "harmful": a `max_regression` gate fails (worse than production by more than allowed) and that
  metric's interval lies entirely on the worse side;
- "worse": the decision metric's interval lies entirely on the worse side;
- "inconclusive": anything else; the window says how many labelled pairs the observed effect
  would need (normal approximation from the bootstrap interval's width, at `policy.power`).

Decision over the newest `policy.consecutive_windows` windows: all better -> promote; the newest
harmful, or all worse -> retire; otherwise keep collecting (an insufficient window breaks a streak).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from gitops_ml.config import BootstrapConfig, CostsConfig, GatesConfig, Task
from gitops_ml.evaluation.compare import compare_models
from gitops_ml.evaluation.gates import evaluate_gates
from gitops_ml.evaluation.metrics import Predictions, applicable_metrics, direction_sign
from gitops_ml.jsonable import finite_or_none
from gitops_ml.monitoring.performance import labelled_predictions

WindowOutcome = Literal["better", "worse", "harmful", "inconclusive", "insufficient"]
ChallengerAction = Literal["promote", "retire", "keep collecting"]
_GATE_SECTIONS = ("minimums", "maximums", "max_regression", "required_improvement")


@dataclass(frozen=True)
class ChallengerWindow:
    """One window's paired comparison on the decision metric (challenger - production)."""

    start: datetime
    end: datetime
    rows: int  # labelled requests scored by both
    outcome: WindowOutcome
    metric: str
    production: float | None = None
    challenger: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    failed_gates: list[str] = field(default_factory=list)
    skipped_gates: list[str] = field(default_factory=list)
    rows_needed: int | None = None  # labelled pairs per window the observed effect needs (inconclusive)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "outcome": self.outcome,
            "metric": self.metric,
            "production": finite_or_none(self.production),
            "challenger": finite_or_none(self.challenger),
            "delta": finite_or_none(self.delta),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
            "failed_gates": list(self.failed_gates),
            "skipped_gates": list(self.skipped_gates),
            "rows_needed": self.rows_needed,
            "note": self.note,
        }


@dataclass(frozen=True)
class ChallengerDecision:
    action: ChallengerAction
    challenger_version: str
    production_version: str
    windows: list[ChallengerWindow]  # oldest first, the newest `consecutive_windows` windows
    reasons: list[str]
    required_windows: int

    @property
    def latest(self) -> ChallengerWindow | None:
        return self.windows[-1] if self.windows else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "challenger_version": self.challenger_version,
            "production_version": self.production_version,
            "required_windows": self.required_windows,
            "reasons": list(self.reasons),
            "windows": [w.to_dict() for w in self.windows],
        }


def decision_from_dict(data: Any) -> ChallengerDecision:
    """`ChallengerDecision.to_dict()` read back (a decision bundle's decision.json), strictly: types
    and vocabularies checked, and anything `to_dict` would not have written (an extra key, another
    spelling of a value) refused. ValueError naming the problems."""
    from pydantic import TypeAdapter, ValidationError

    from gitops_ml.parsing import error_lines

    try:
        decision = TypeAdapter(ChallengerDecision).validate_python(data)
    except ValidationError as exc:
        raise ValueError("; ".join(error_lines(exc))) from None
    if decision.to_dict() != data:
        raise ValueError("not as a challenger decision is written (extra keys or values in another form)")
    return decision


def paired_predictions(
    task: Task,
    labels: Sequence[Any] | np.ndarray,
    predictions: Sequence[Any] | np.ndarray,
    scores: Sequence[float] | np.ndarray | None,
    probabilities: Sequence[Mapping[str, float] | None] | None,
    *,
    classes: Sequence[Any] | np.ndarray | None,
    positive_label: Any,
    costs: CostsConfig | None = None,
) -> Predictions:
    """One model's side of the labelled pairs as `Predictions` (labels matched to the classes by value).

    Multiclass probabilities (one {class: p} per row) become the score matrix when every row has
    them, so probability metrics can be compared too.
    """
    preds, _ = labelled_predictions(
        task,
        labels,
        predictions,
        scores if task == "binary" else None,
        classes=classes,
        positive_label=positive_label,
    )
    if task == "multiclass" and probabilities is not None and classes is not None:
        rows = [r for r in probabilities if isinstance(r, Mapping)]
        matrix = None
        if rows and len(rows) == len(preds):
            keys = [str(c) for c in np.asarray(classes).tolist()]
            try:
                matrix = np.array([[float(r[k]) for k in keys] for r in rows])
            except (KeyError, TypeError, ValueError):
                matrix = None  # probabilities not keyed by the model's classes: labels only
            if matrix is not None and matrix.shape == (len(preds), len(keys)):
                preds = replace(preds, y_score=matrix)
    return replace(preds, costs=costs) if costs is not None else preds


def paired_sides(
    task: Task,
    pairs: Any,
    *,
    classes: Sequence[Any] | np.ndarray | None,
    positive_label: Any,
    costs: CostsConfig | None = None,
) -> tuple[Predictions, Predictions]:
    """(production, challenger) `Predictions` from `PredictionStore.paired`'s frame of labelled pairs
    (label, `<role>_prediction`, `<role>_score`, `<role>_probabilities`; empty is allowed)."""

    def side(role: str) -> Predictions:
        some = len(pairs) > 0
        return paired_predictions(
            task,
            pairs["label"].to_numpy(dtype=object) if some else [],
            pairs[f"{role}_prediction"].to_numpy(dtype=object) if some else [],
            pairs[f"{role}_score"].to_numpy(dtype=float) if some and task == "binary" else None,
            list(pairs[f"{role}_probabilities"]) if some else None,
            classes=classes,
            positive_label=positive_label,
            costs=costs,
        )

    return side("production"), side("challenger")


def judge_window(
    production: Predictions,
    challenger: Predictions,
    *,
    start: datetime,
    end: datetime,
    metric: str,
    min_rows: int,
    min_improvement: float,
    power: float,
    gates: GatesConfig,
    bootstrap: BootstrapConfig,
) -> ChallengerWindow:
    """The PR check's paired comparison and gates on one window's labelled pairs."""
    rows = len(challenger)
    available = (
        set(applicable_metrics(challenger, None)) & set(applicable_metrics(production, None))
        if rows >= min_rows
        else set()
    )
    if rows < min_rows or metric not in available:
        note = (
            f"{rows} labelled pairs, the policy needs {min_rows}"
            if rows < min_rows
            else f"{metric} cannot be computed on the logged requests (needs probabilities or costs not logged)"
        )
        return ChallengerWindow(start, end, rows, "insufficient", metric, note=note)
    live_gates, not_live = _live_gates(gates, available)
    wanted = sorted({metric, *(m for s in _GATE_SECTIONS for m in getattr(live_gates, s))})
    comparison = compare_models(challenger, production, wanted, bootstrap)
    verdict = evaluate_gates(comparison, live_gates, primary_metric=metric, contract_passed=True)
    m = comparison[metric]
    failed = [f"{g.name}: {g.reason}" for g in verdict.failures]
    # contract and deepchecks judge training data, not live requests: listed, never passed
    skipped = [*not_live, "contract (checked on the request path)", "deepchecks (training data only)"]
    if gates.max_segment_regression is not None:
        skipped.append("max_segment_regression (segments are judged in the PR check)")
    sign = direction_sign(metric)
    low, high = m.ci_low, m.ci_high
    improvement_low = math.nan if low is None or high is None else (low if sign > 0 else -high)
    improvement = math.nan if m.delta is None else sign * m.delta
    # harmful: worse than allowed AND the interval shows it worse (a point estimate alone is noise
    # on a window of live requests, as it is for a segment)
    harm = [
        g
        for g in verdict.failures
        if g.name.startswith("max_regression.") and g.metric and comparison[g.metric].outcome == "worse"
    ]
    if harm:
        outcome: WindowOutcome = "harmful"
    elif m.outcome == "worse":
        outcome = "worse"
    elif verdict.passed and improvement_low > min_improvement:
        outcome = "better"
    else:
        outcome = "inconclusive"
    needed = None
    note = m.note or ""
    if outcome == "inconclusive":
        needed, why = rows_needed(
            rows,
            improvement,
            low,
            high,
            threshold=min_improvement,
            confidence=bootstrap.confidence,
            power=power,
        )
        note = "; ".join(x for x in (note, why) if x)
    return ChallengerWindow(
        start,
        end,
        rows,
        outcome,
        metric,
        production=m.production,
        challenger=m.candidate,
        delta=m.delta,
        ci_low=low,
        ci_high=high,
        failed_gates=failed,
        skipped_gates=skipped,
        rows_needed=needed,
        note=note,
    )


def _live_gates(gates: GatesConfig, available: set[str]) -> tuple[GatesConfig, list[str]]:
    """The PR check's comparison gates on the metrics live requests allow; the others named."""
    kept: dict[str, dict[str, float]] = {}
    dropped: list[str] = []
    for section in _GATE_SECTIONS:
        values: dict[str, float] = getattr(gates, section)
        kept[section] = {k: v for k, v in values.items() if k in available}
        dropped += [
            f"{section}.{k} (not computable on logged requests)" for k in values if k not in available
        ]
    live = gates.model_copy(
        update={
            **kept,
            "max_segment_regression": None,
            "fail_on_contract_violation": False,
            "fail_on_blocking_deepchecks": False,
        }
    )
    return live, dropped


def rows_needed(
    rows: int,
    improvement: float,
    ci_low: float | None,
    ci_high: float | None,
    *,
    threshold: float,
    confidence: float,
    power: float,
) -> tuple[int | None, str]:
    """Labelled pairs a window needs for the observed effect to be decided, and the sentence saying so.

    The bootstrap interval's width gives the standard error at `rows` (it shrinks as 1/sqrt(n)); the
    effect to detect is the distance from the observed improvement to the bound it must clear
    (`threshold` for better, 0 for worse).
    """
    if ci_low is None or ci_high is None or not all(map(math.isfinite, (improvement, ci_low, ci_high))):
        return None, "the effect could not be estimated on this window"
    z = NormalDist().inv_cdf((1 + confidence) / 2) + NormalDist().inv_cdf(power)
    se = (ci_high - ci_low) / (2 * NormalDist().inv_cdf((1 + confidence) / 2))
    if improvement > threshold:
        effect, side = improvement - threshold, f"better (beyond {threshold:g})"
    elif improvement < 0:
        effect, side = -improvement, "worse"
    else:
        return None, (
            f"observed improvement {improvement:+.4f} is within [0, {threshold:g}]: more rows would not "
            "show it better; the models look equal"
        )
    if se <= 0:
        return None, "the interval has no width: the two models agree on every row"
    needed = math.ceil(rows * (z * se / effect) ** 2)
    more = max(needed - rows, 0)
    return needed, (
        f"at the observed improvement {improvement:+.4f}, showing it {side} with power {power:g} needs "
        f"~{needed} labelled pairs per window ({more} more than this window's {rows})"
    )


def decide(
    windows: Sequence[ChallengerWindow],
    *,
    consecutive: int,
    challenger_version: str,
    production_version: str,
) -> ChallengerDecision:
    """Promote after `consecutive` better windows in a row, retire on harm or `consecutive` worse ones."""
    recent = list(windows)[-consecutive:]
    outcomes = [w.outcome for w in recent]
    reasons: list[str] = []
    action: ChallengerAction = "keep collecting"
    if recent and recent[-1].outcome == "harmful":
        action = "retire"
        reasons.append(f"the newest window is harmful: {'; '.join(recent[-1].failed_gates)}")
    elif len(recent) == consecutive and all(o == "better" for o in outcomes):
        action = "promote"
        reasons.append(f"better than production in {consecutive} consecutive window(s)")
    elif len(recent) == consecutive and all(o in ("worse", "harmful") for o in outcomes):
        action = "retire"
        reasons.append(f"worse than production in {consecutive} consecutive window(s)")
    else:
        streak = _streak(outcomes)
        reasons.append(
            f"windows (oldest first): {', '.join(outcomes) or 'none yet'}; "
            f"{consecutive} in a row decide ({streak[1]} {streak[0]} in a row now)"
        )
        latest = recent[-1] if recent else None
        if latest is not None and latest.note:
            reasons.append(latest.note)
    return ChallengerDecision(
        action, challenger_version, production_version, list(windows), reasons, consecutive
    )


def _streak(outcomes: Sequence[str]) -> tuple[str, int]:
    if not outcomes:
        return "judged", 0
    last, count = outcomes[-1], 0
    for o in reversed(outcomes):
        if o != last:
            break
        count += 1
    return last, count


def render_challenger_section(decision: ChallengerDecision) -> str:
    """Markdown: the decision first, then one row per window, then what the gates could not judge."""
    icon = {"promote": "⬆️", "retire": "🛑", "keep collecting": "⏳"}[decision.action]
    lines = [
        "## Challenger",
        "",
        (
            f"{icon} **{decision.action}**: challenger `{decision.challenger_version}` vs production "
            f"`{decision.production_version}`"
        ),
        "",
        *(f"- {r}" for r in decision.reasons),
        "",
        "| window | pairs | metric | production | challenger | delta [CI] | outcome |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for w in decision.windows:
        ci = (
            f"{_num(w.delta, '+')} [{_num(w.ci_low, '+')}, {_num(w.ci_high, '+')}]"
            if w.delta is not None
            else "–"
        )
        lines.append(
            f"| {w.start:%Y-%m-%d %H:%M} → {w.end:%Y-%m-%d %H:%M} | {w.rows} | {w.metric} | "
            f"{_num(w.production)} | {_num(w.challenger)} | {ci} | {w.outcome} |"
        )
    failed = [g for w in decision.windows for g in w.failed_gates]
    if failed:
        lines += ["", "Failed gates: " + "; ".join(dict.fromkeys(failed))]
    skipped = decision.latest.skipped_gates if decision.latest is not None else []
    if skipped:
        lines += ["", "Not judged on live requests (skipped, not passed): " + "; ".join(skipped)]
    lines.append("")
    lines.append(
        "Same paired percentile bootstrap and gates as the PR check, on labelled requests scored by both models."
    )
    return "\n".join(lines) + "\n"


def render_refused_section(reason: str) -> str:
    """Markdown: the challenger file was refused, so nothing was judged for it (production was)."""
    return (
        "## Challenger\n\n"
        "🛑 **refused**: the challenger was not judged; production was monitored as usual.\n\n"
        f"- {reason}\n\n"
        "Fix or retire it (`gitops-ml challenger retire` removes even an unreadable file).\n"
    )


def _num(value: float | None, sign: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:{sign}.4f}"
