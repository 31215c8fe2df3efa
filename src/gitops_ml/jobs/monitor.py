"""The monitor's use case: the window, its assessment, the decision and the report files.

flows/monitor.py wraps each step as a Prefect task; the monitoring/ package holds the pure logic
(drift, performance, policy, report) and the prediction store the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gitops_ml.config import Settings
from gitops_ml.errors import GitopsMLError

if TYPE_CHECKING:
    from gitops_ml.forge.retrain_pr import RetrainPrOutcome
    from gitops_ml.jobs.retrain import RetrainingPr
    from gitops_ml.monitoring.challenger import ChallengerDecision
    from gitops_ml.monitoring.drift import ReferenceProfile
    from gitops_ml.monitoring.estimation import EstimateResult
    from gitops_ml.monitoring.policy import Decision, WindowRecord, WindowResult
    from gitops_ml.registry.production import LoadedModel


@dataclass(frozen=True)
class MonitorOutcome:
    """What one monitor run decided, where its report is, and the retraining PR when one was opened."""

    action: str
    status: str
    reasons: list[str]
    rows: int
    report: str
    pr: RetrainingPr | None = None
    bundle: str | None = None  # the retraining bundle's folder, when one was written instead of a PR
    early_warning: bool = False
    challenger: ChallengerDecision | None = None  # None: no challenger is running
    challenger_pr: RetrainPrOutcome | None = None  # the promote/retire PR opened or updated
    challenger_bundle: str | None = None  # the promote/retire decision's bundle folder, instead of a PR
    challenger_refused: str | None = None  # why deploy/challenger.yaml was not judged (production was)


def window_bounds(
    settings: Settings, window: str | None = None, now: str | None = None
) -> tuple[datetime, datetime]:
    """[start, end) of the window: `end` is `now` (ISO; naive means UTC) or the current time."""
    end = pd.Timestamp(now).floor("us").to_pydatetime() if now else datetime.now(UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    start = end - pd.Timedelta(window or settings.monitoring.window).to_pytimedelta()
    return start, end


def load_monitored_model(settings: Settings, cache_dir: Path) -> LoadedModel:
    from gitops_ml.registry.production import load_production

    production = load_production(settings.registry, cache_dir)
    if production is None:
        raise GitopsMLError(f"{settings.registry.pointer}: no production model to monitor yet")
    return production


def load_window(store_url: str, start: datetime, end: datetime) -> pd.DataFrame:
    from gitops_ml.prediction_store import PredictionStore

    store = PredictionStore(store_url)
    try:
        return store.window(start, end)
    finally:
        store.dispose()


def answered_by_production(window: pd.DataFrame) -> pd.DataFrame:
    """The rows production answered: in canary mode the challenger answers a fraction of callers,
    and its scores and decisions must not be judged as production's (the challenger's own judgement
    reads the paired shadow scores)."""
    if "served_role" not in window.columns:
        return window
    return window[window["served_role"] == "production"].reset_index(drop=True)


def assess(
    settings: Settings, production: LoadedModel, window: pd.DataFrame, start: datetime, end: datetime
) -> WindowResult:
    from gitops_ml.monitoring.drift import read_reference
    from gitops_ml.monitoring.performance import labelled_predictions
    from gitops_ml.monitoring.policy import assess_window
    from gitops_ml.registry.artifacts import REFERENCE_FILE
    from gitops_ml.training.pipeline import prepare_features

    reference = read_reference(production.path.parent / REFERENCE_FILE)
    window = answered_by_production(window)
    model_settings = production.model_settings(settings)
    features = prepare_features(window, model_settings) if len(window) else window
    # the pointer records the holdout metrics under the registry's names: the same as the config's
    baseline = production.pointer.metrics.get(settings.monitoring.performance_metric)
    scores = window["score"].to_numpy(dtype=float) if len(window) else None
    labelled = None
    if len(window):
        # labels as stored (0/1, "yes"/"no", class names), matched to the model's classes by value
        labelled, _ = labelled_predictions(
            settings.dataset.task,
            window["label"].to_numpy(dtype=object),
            _decisions(settings, production, window, scores),
            scores,
            classes=getattr(production.pipeline, "classes_", None),
            positive_label=settings.dataset.positive_label,
        )
    return assess_window(
        reference,
        features,
        settings.monitoring,
        window_start=start,
        window_end=end,
        y_score=scores,
        labelled=labelled,
        baseline_value=baseline,
        model_version=production.version,
        estimate=early_warning(settings, production, reference, window),
    )


def early_warning(
    settings: Settings, production: LoadedModel, reference: ReferenceProfile, window: pd.DataFrame
) -> EstimateResult:
    """The window's performance estimated from the served probabilities (monitoring/estimation.py)."""
    import numpy as np

    from gitops_ml.monitoring.estimation import (
        estimate_window,
        estimation_metric,
        not_estimated,
        served_outcomes,
    )

    task, cfg = settings.dataset.task, settings.monitoring
    warn = cfg.early_warning
    if not warn.enabled:
        return not_estimated(task, "monitoring.early_warning.enabled is false", len(window))
    metric = estimation_metric(task, warn.metric, cfg.performance_metric)
    scores = window["score"].to_numpy(dtype=float) if len(window) else np.zeros(0)
    decided = mask = hit = None
    if metric is not None and len(window):
        decided, mask, hit = served_outcomes(
            task,
            window["prediction"].to_numpy(dtype=object),
            window["label"].to_numpy(dtype=object),
            np.asarray(getattr(production.pipeline, "classes_", [])),
            settings.dataset.positive_label,
        )
    baseline = production.pointer.metrics.get(metric) if metric is not None else None
    return estimate_window(
        task,
        metric,
        scores,
        decided,
        reference.calibration,
        baseline,
        labelled_mask=mask,
        labelled_hit=hit,
        max_ece=warn.max_calibration_error,
        max_drop=cfg.max_performance_drop,
        draws=warn.draws,
        min_rows=cfg.min_window_rows,
    )


def _decisions(settings: Settings, production: LoadedModel, window: pd.DataFrame, scores: Any) -> Any:
    """Binary: the production model's decisions from the logged P(positive), through the same
    `decide` serving uses (its stored threshold; rows logged before it had one are decided with it
    too). Other tasks: the served predictions (the store keeps no multiclass probability vector)."""
    served = window["prediction"].to_numpy(dtype=object)
    classes = getattr(production.pipeline, "classes_", None)
    if settings.dataset.task != "binary" or classes is None or scores is None or np.isnan(scores).any():
        return served
    from gitops_ml.evaluation.decision import decide_binary
    from gitops_ml.evaluation.metrics import positive_class

    positive = classes[positive_class(np.asarray(classes), settings.dataset.positive_label)]
    return decide_binary(scores, classes, positive, production.decision)


def decide_and_record(
    settings: Settings, store_url: str, result: WindowResult, now: datetime
) -> tuple[Decision, list[WindowRecord]]:
    """The policy's decision given the stored history; the new record is stored and appended."""
    from gitops_ml.monitoring.policy import WindowRecord, decide, make_record
    from gitops_ml.prediction_store import PredictionStore

    store = PredictionStore(store_url)
    try:
        history = [WindowRecord.from_dict(r["payload"]) for r in reversed(store.monitor_runs(limit=50))]
        last_pr = store.last_retrain_pr()
        decision = decide(
            history, result, settings.monitoring, now, last_pr["created_at"] if last_pr else None
        )
        record = make_record(result, decision, created_at=now)
        store.add_monitor_run(record.to_dict())
        return decision, [*history, record]
    finally:
        store.dispose()


def write_monitor_outputs(
    result: WindowResult,
    decision: Decision,
    history: list[WindowRecord],
    model_version: str,
    out_dir: Path,
    challenger: ChallengerDecision | None = None,
    challenger_refused: str | None = None,
) -> str:
    """report.md (with plots) and summary.json, each written atomically; returns the markdown.

    `challenger_refused`: why deploy/challenger.yaml was not judged (production still was)."""
    from gitops_ml.io_utils import atomic_write_json, atomic_write_text
    from gitops_ml.monitoring.report import render_monitor_report, write_monitor_plots

    markdown = render_monitor_report(result, decision, history, model_version=model_version)
    if challenger is not None:
        from gitops_ml.monitoring.challenger import render_challenger_section

        markdown += "\n" + render_challenger_section(challenger)
    if challenger_refused is not None:
        from gitops_ml.monitoring.challenger import render_refused_section

        markdown += "\n" + render_refused_section(challenger_refused)
    plots = write_monitor_plots(result, history, out_dir / "plots")
    if plots:
        markdown += "\n## Plots\n\n" + "\n".join(f"![{k}](plots/{p.name})" for k, p in plots.items()) + "\n"
    atomic_write_text(out_dir / "report.md", markdown)
    atomic_write_json(
        out_dir / "summary.json",
        {
            "decision": decision.to_dict(),
            "window": result.to_dict(),
            "model_version": model_version,
            "challenger": challenger.to_dict() if challenger is not None else None,
            "challenger_refused": challenger_refused,
        },
    )
    return markdown


def retraining_start(production: LoadedModel, start: datetime) -> datetime | None:
    """Where the retraining data starts: everything labelled since the model went live, not only the
    last window. None when it went live inside the window (the window is then the new data)."""
    since: datetime = pd.Timestamp(production.pointer.promoted_at).to_pydatetime()
    return since if since < start else None
