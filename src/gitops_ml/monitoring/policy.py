"""Retraining policy: turn one window's drift and performance into a decision, with trigger hygiene.

Rules, in order:
1. A window with fewer than `min_window_rows` rows is "insufficient data": not bad, no action.
2. A window is bad when more than `max_drifted_features` features drifted, or the prediction scores
   drifted, or performance decayed (see `performance.py`).
3. Retrain when the current window and the windows just before it make `consecutive_bad_windows` bad
   windows in a row, and we are not in the cool-down after the last retraining PR.
   Counting the streak, past windows with insufficient data are skipped (they neither count nor break
   it), and a window scored for a different model version breaks it: a newly promoted model starts
   with a clean slate.

`WindowRecord` is the JSON-able summary of one monitor run, stored by the caller (the `monitor_runs`
table) and passed back as `history` next time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from gitops_ml.config import MonitoringConfig
from gitops_ml.evaluation.metrics import Predictions
from gitops_ml.jsonable import finite_or_none
from gitops_ml.monitoring.drift import DriftResult, ReferenceProfile, compute_drift
from gitops_ml.monitoring.estimation import EstimateResult
from gitops_ml.monitoring.performance import PerformanceResult, window_performance

Action = Literal["none", "retrain"]
Status = Literal["ok", "bad", "insufficient data"]


def as_utc(value: datetime | str) -> datetime:
    """Aware UTC datetime; naive values are taken as UTC."""
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@dataclass(frozen=True)
class WindowResult:
    """Everything measured on one monitoring window."""

    window_start: datetime
    window_end: datetime
    rows: int
    drift: DriftResult
    performance: PerformanceResult | None  # None when no labels were looked up at all
    model_version: str = ""
    estimate: EstimateResult | None = None  # the early warning (None = not computed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_start": as_utc(self.window_start).isoformat(),
            "window_end": as_utc(self.window_end).isoformat(),
            "rows": self.rows,
            "model_version": self.model_version,
            "drift": self.drift.to_dict(),
            "performance": self.performance.to_dict() if self.performance is not None else None,
            "estimate": self.estimate.to_dict() if self.estimate is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowResult:
        perf = data.get("performance")
        estimate = data.get("estimate")
        return cls(
            window_start=as_utc(data["window_start"]),
            window_end=as_utc(data["window_end"]),
            rows=int(data["rows"]),
            drift=DriftResult.from_dict(data["drift"]),
            performance=PerformanceResult.from_dict(perf) if perf is not None else None,
            model_version=str(data.get("model_version", "")),
            estimate=EstimateResult.from_dict(estimate) if estimate is not None else None,
        )


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: list[str]
    bad_window: bool
    consecutive_bad: int
    in_cooldown: bool
    status: Status = "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reasons": list(self.reasons),
            "bad_window": self.bad_window,
            "consecutive_bad": self.consecutive_bad,
            "in_cooldown": self.in_cooldown,
            "status": self.status,
        }


@dataclass(frozen=True)
class WindowRecord:
    """One row of the `monitor_runs` table (`to_dict()` is its JSON shape; times are ISO-8601 UTC)."""

    window_start: datetime
    window_end: datetime
    rows: int
    labelled: int
    drifted_features: list[str]
    max_psi: float | None
    prediction_psi: float | None
    metric: str
    metric_value: float | None
    metric_ci_low: float | None
    metric_ci_high: float | None
    decayed: bool
    status: Status
    bad: bool
    action: Action
    created_at: datetime
    model_version: str = ""
    reasons: list[str] = field(default_factory=list)
    early_warning: bool = False
    estimated_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_start": as_utc(self.window_start).isoformat(),
            "window_end": as_utc(self.window_end).isoformat(),
            "rows": self.rows,
            "labelled": self.labelled,
            "drifted_features": list(self.drifted_features),
            "max_psi": finite_or_none(self.max_psi),
            "prediction_psi": finite_or_none(self.prediction_psi),
            "metric": self.metric,
            "metric_value": finite_or_none(self.metric_value),
            "metric_ci_low": finite_or_none(self.metric_ci_low),
            "metric_ci_high": finite_or_none(self.metric_ci_high),
            "decayed": self.decayed,
            "status": self.status,
            "bad": self.bad,
            "action": self.action,
            "created_at": as_utc(self.created_at).isoformat(),
            "model_version": self.model_version,
            "reasons": list(self.reasons),
            "early_warning": self.early_warning,
            "estimated_value": finite_or_none(self.estimated_value),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowRecord:
        def opt(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            window_start=as_utc(data["window_start"]),
            window_end=as_utc(data["window_end"]),
            rows=int(data["rows"]),
            labelled=int(data.get("labelled", 0)),
            drifted_features=[str(f) for f in data.get("drifted_features", [])],
            max_psi=opt("max_psi"),
            prediction_psi=opt("prediction_psi"),
            metric=str(data.get("metric", "")),
            metric_value=opt("metric_value"),
            metric_ci_low=opt("metric_ci_low"),
            metric_ci_high=opt("metric_ci_high"),
            decayed=bool(data.get("decayed", False)),
            status=data.get("status", "bad" if data.get("bad") else "ok"),
            bad=bool(data["bad"]),
            action=data.get("action", "none"),
            created_at=as_utc(data["created_at"]),
            model_version=str(data.get("model_version", "")),
            reasons=[str(r) for r in data.get("reasons", [])],
            early_warning=bool(data.get("early_warning", False)),
            estimated_value=opt("estimated_value"),
        )


def _window_problems(current: WindowResult, max_drifted: int, warning_is_bad: bool = False) -> list[str]:
    problems = []
    drifted = current.drift.drifted_features
    if len(drifted) > max_drifted:
        names = ", ".join(drifted[:10]) + (f" and {len(drifted) - 10} more" if len(drifted) > 10 else "")
        problems.append(f"{len(drifted)} drifted features > max_drifted_features {max_drifted}: {names}")
    if current.drift.prediction_drifted and current.drift.prediction is not None:
        problems.append(f"prediction drift: {current.drift.prediction.reason}")
    perf = current.performance
    if perf is not None and perf.decayed:
        problems.append(f"performance decayed: {perf.reason}")
    estimate = current.estimate
    if warning_is_bad and estimate is not None and estimate.warning:
        problems.append(f"early warning (monitoring.early_warning.retrain is on): {estimate.reason}")
    return problems


def decide(
    history: Sequence[WindowRecord],
    current: WindowResult,
    cfg: MonitoringConfig,
    now: datetime,
    last_retrain_pr_at: datetime | None,
) -> Decision:
    """Apply the policy (module docstring) to the current window given past windows' records.

    `cfg` is a `config.MonitoringConfig`. `last_retrain_pr_at` is when the last retraining PR was opened
    or updated (from the forge); retrain actions in `history` count as well, whichever is later.
    """
    now = as_utc(now)
    start, end = as_utc(current.window_start), as_utc(current.window_end)
    reasons: list[str] = []

    # cool-down: since the later of the forge's last PR and the last retrain this monitor decided
    last = as_utc(last_retrain_pr_at) if last_retrain_pr_at is not None else None
    for rec in history:
        if rec.action == "retrain" and (last is None or as_utc(rec.created_at) > last):
            last = as_utc(rec.created_at)
    in_cooldown = last is not None and now - last < timedelta(days=cfg.cooldown_days)

    if current.rows < cfg.min_window_rows:
        return Decision(
            "none",
            [f"insufficient data: {current.rows} rows < min_window_rows {cfg.min_window_rows}"],
            bad_window=False,
            consecutive_bad=0,
            in_cooldown=in_cooldown,
            status="insufficient data",
        )

    problems = _window_problems(current, cfg.max_drifted_features, cfg.early_warning.retrain)
    bad = bool(problems)
    perf = current.performance
    if perf is not None and perf.status == "insufficient labels":
        reasons.append(f"performance not assessed: {perf.reason}")
    estimate = current.estimate
    if estimate is not None and estimate.warning and not cfg.early_warning.retrain:
        reasons.append(f"early warning (a warning, not a retrain trigger): {estimate.reason}")
    if not bad:
        n_drifted = len(current.drift.drifted_features)
        reasons.insert(
            0,
            f"window ok: {n_drifted} drifted features <= {cfg.max_drifted_features}, "
            "no prediction drift, no performance decay",
        )
        return Decision(
            "none", reasons, bad_window=False, consecutive_bad=0, in_cooldown=in_cooldown, status="ok"
        )

    # streak of bad windows ending with the current one (the current window's own record, if already
    # stored by an earlier run, is not counted twice)
    earlier = sorted(
        (
            r
            for r in history
            if as_utc(r.window_end) <= end and (as_utc(r.window_start), as_utc(r.window_end)) != (start, end)
        ),
        key=lambda r: as_utc(r.window_end),
        reverse=True,
    )
    streak = 1
    for rec in earlier:
        if current.model_version and rec.model_version and rec.model_version != current.model_version:
            break
        if rec.status == "insufficient data":
            continue
        if not rec.bad:
            break
        streak += 1

    reasons = problems + reasons
    needed = cfg.consecutive_bad_windows
    if streak < needed:
        reasons.append(f"bad window {streak} of {needed} consecutive needed: no retrain yet")
        return Decision(
            "none", reasons, bad_window=True, consecutive_bad=streak, in_cooldown=in_cooldown, status="bad"
        )
    if in_cooldown and last is not None:
        until = last + timedelta(days=cfg.cooldown_days)
        reasons.append(
            f"{streak} consecutive bad windows, but in cool-down until {until.isoformat()} "
            f"(last retraining PR {last.isoformat()}, cooldown_days {cfg.cooldown_days:g})"
        )
        return Decision(
            "none", reasons, bad_window=True, consecutive_bad=streak, in_cooldown=True, status="bad"
        )
    reasons.append(f"{streak} consecutive bad windows >= consecutive_bad_windows {needed}: retrain")
    return Decision(
        "retrain", reasons, bad_window=True, consecutive_bad=streak, in_cooldown=False, status="bad"
    )


def make_record(current: WindowResult, decision: Decision, *, created_at: datetime) -> WindowRecord:
    """The `monitor_runs` row for this run."""
    perf = current.performance
    prediction = current.drift.prediction
    return WindowRecord(
        window_start=as_utc(current.window_start),
        window_end=as_utc(current.window_end),
        rows=current.rows,
        labelled=perf.labelled if perf is not None else 0,
        drifted_features=current.drift.drifted_features,
        max_psi=finite_or_none(current.drift.max_psi),
        prediction_psi=finite_or_none(prediction.psi) if prediction is not None else None,
        metric=perf.metric if perf is not None else "",
        metric_value=finite_or_none(perf.value) if perf is not None else None,
        metric_ci_low=finite_or_none(perf.ci_low) if perf is not None else None,
        metric_ci_high=finite_or_none(perf.ci_high) if perf is not None else None,
        decayed=bool(perf is not None and perf.decayed),
        status=decision.status,
        bad=decision.bad_window,
        action=decision.action,
        created_at=as_utc(created_at),
        model_version=current.model_version,
        reasons=list(decision.reasons),
        early_warning=bool(current.estimate is not None and current.estimate.warning),
        estimated_value=finite_or_none(current.estimate.value) if current.estimate is not None else None,
    )


def assess_window(
    reference: ReferenceProfile,
    window_df: pd.DataFrame,
    cfg: MonitoringConfig,
    *,
    window_start: datetime,
    window_end: datetime,
    y_score: Sequence[float] | np.ndarray | None = None,
    labelled: Predictions | None = None,
    baseline_value: float | None = None,
    model_version: str = "",
    estimate: EstimateResult | None = None,
    n_resamples: int = 500,
    seed: int = 0,
) -> WindowResult:
    """Drift (features + scores) and performance of one window, with the thresholds of `cfg`
    (a `config.MonitoringConfig`). `y_score` is the served score per row (prediction drift);
    `labelled` the window's labelled rows (`performance.labelled_predictions`), None = no labels."""
    drift = compute_drift(reference, window_df, cfg.thresholds, prediction_scores=y_score)
    perf = None
    if labelled is not None:
        perf = window_performance(
            labelled,
            cfg.performance_metric,
            baseline_value,
            rows=len(window_df),
            n_resamples=n_resamples,
            seed=seed,
            max_drop=cfg.max_performance_drop,
            min_labelled=cfg.min_labelled_rows,
        )
    return WindowResult(
        window_start=window_start,
        window_end=window_end,
        rows=len(window_df),
        drift=drift,
        performance=perf,
        model_version=model_version,
        estimate=estimate,
    )
