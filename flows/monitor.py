"""`monitor` flow: drift + late-label performance on a window of logged predictions; when the
policy says so, a retraining pull request with the newly labelled data and the evidence.

Wiring only: each step is a use case of gitops_ml.jobs.monitor wrapped as a task."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import events
from gitops_ml.config import Settings, prediction_store_url
from gitops_ml.forge.git import GitRepo
from gitops_ml.forge.retrain_pr import RetrainPrOutcome
from gitops_ml.jobs import challenger as challenger_job
from gitops_ml.jobs import monitor as job
from gitops_ml.jobs.config_check import load_checked_settings
from gitops_ml.jobs.monitor import MonitorOutcome
from gitops_ml.jobs.retrain import RetrainingPr, open_retraining_pr
from gitops_ml.monitoring.challenger import ChallengerDecision
from gitops_ml.monitoring.policy import Decision, WindowRecord, WindowResult
from gitops_ml.registry.production import LoadedModel


@task(name="load-window", cache_policy=NO_CACHE)
def load_window_task(store_url: str, start: datetime, end: datetime) -> pd.DataFrame:
    return job.load_window(store_url, start, end)


@task(name="assess-window", cache_policy=NO_CACHE)
def assess_task(
    settings: Settings, production: LoadedModel, window: pd.DataFrame, start: datetime, end: datetime
) -> WindowResult:
    return job.assess(settings, production, window, start, end)


@task(name="decide", cache_policy=NO_CACHE)
def decide_task(
    settings: Settings, store_url: str, result: WindowResult, now: datetime
) -> tuple[Decision, list[WindowRecord]]:
    return job.decide_and_record(settings, store_url, result, now)


# the use case itself as the task: its signature is not copied here
report_task = task(name="report", cache_policy=NO_CACHE)(job.write_monitor_outputs)


@task(name="challenger-decision", cache_policy=NO_CACHE)
def challenger_task(
    settings: Settings, store_url: str, production: LoadedModel, end: datetime, window: str | None
) -> tuple[ChallengerDecision | None, str | None]:
    """(the decision, None), (None, None) without a challenger, (None, why) when it was refused."""
    from gitops_ml.errors import GitopsMLError

    try:
        return challenger_job.judge_challenger(settings, store_url, production, end, window=window), None
    except GitopsMLError as exc:  # a refused challenger must not stop production's monitoring
        get_run_logger().error("challenger not judged: %s", exc)
        return None, str(exc)


@task(name="challenger-pr", cache_policy=NO_CACHE, retries=0)
def challenger_pr_task(
    settings: Settings, decision: ChallengerDecision, report: str, repo_dir: str
) -> RetrainPrOutcome | None:
    return challenger_job.open_decision_pr(settings, decision, report, repo_dir=repo_dir)


@task(name="retraining-pr", cache_policy=NO_CACHE, retries=0)
def retrain_pr_task(
    settings: Settings, window: pd.DataFrame, report: str, repo_dir: str, end: datetime, store_url: str
) -> RetrainingPr:
    return open_retraining_pr(
        settings, window, report, repo_dir=Path(repo_dir), window_end=end, store_url=store_url
    )


@task(name="retraining-bundle", cache_policy=NO_CACHE, retries=0)
def retrain_bundle_task(
    settings: Settings,
    window: pd.DataFrame,
    report: str,
    bundle_dir: str,
    end: datetime,
    model_version: str,
    commit: str,
) -> str:
    from gitops_ml.jobs.decision_bundle import write_retraining_bundle

    folder = write_retraining_bundle(
        settings, window, report, Path(bundle_dir), window_end=end, model_version=model_version, commit=commit
    )
    return str(folder)


@task(name="challenger-bundle", cache_policy=NO_CACHE, retries=0)
def challenger_bundle_task(
    settings: Settings, decision: ChallengerDecision, report: str, bundle_dir: str, commit: str
) -> str:
    from gitops_ml.jobs.decision_bundle import write_challenger_bundle

    return str(write_challenger_bundle(settings, decision, report, Path(bundle_dir), commit=commit))


@flow(name="monitor")
def monitor_flow(
    config_dir: str = "config",
    out_dir: str = "reports/monitor",
    store_url: str | None = None,
    window: str | None = None,
    now: str | None = None,
    open_pr: bool = True,
    repo_dir: str = ".",
    bundle_dir: str | None = None,
) -> MonitorOutcome:
    """`bundle_dir`: write a decision bundle there (retrain/, challenger/) instead of opening a PR
    (a token-free run; `gitops-ml decision-pr --bundle` verifies it and opens the PR in a trusted job)."""
    logger = get_run_logger()
    # a malformed deploy/challenger.yaml must not blind the monitor to production: it is refused
    # (and said so in the report) by the challenger step alone
    settings = load_checked_settings(config_dir, check_challenger=False)
    from gitops_ml.monitoring.performance import check_monitor_metric

    check_monitor_metric(settings.dataset.task, settings.monitoring.performance_metric)  # before any I/O
    store_url = prediction_store_url(settings.serving, store_url)
    out = Path(out_dir)
    production = job.load_monitored_model(settings, out / ".cache")
    start, end = job.window_bounds(settings, window, now)
    if bundle_dir:
        from gitops_ml.jobs.decision_bundle import clear_bundles

        clear_bundles(Path(bundle_dir))
    logger.info("window %s .. %s, model %s", start.isoformat(), end.isoformat(), production.version)
    frame = load_window_task(store_url, start, end)
    result = assess_task(settings, production, frame, start, end)
    decision, history = decide_task(settings, store_url, result, end)
    challenger, refused = challenger_task(settings, store_url, production, end, window)
    report = report_task(result, decision, history, production.version, out, challenger, refused)
    create_markdown_artifact(key="monitor-report", markdown=report, description=f"monitor: {decision.action}")
    create_table_artifact(
        key="monitor-drift",
        table=[f.to_dict() for f in result.drift.features],
        description="per-feature drift of the latest window",
    )
    estimate = result.estimate
    if estimate is not None and estimate.warning:
        logger.warning("early warning: %s", estimate.reason)
        events.emit(
            events.EARLY_WARNING,
            dataset=settings.dataset.name,
            model_version=production.version,
            payload=_warning_payload(result),
        )
    if decision.action == "retrain":
        events.emit(
            events.DECAY,
            dataset=settings.dataset.name,
            model_version=production.version,
            payload=_decay_payload(result, decision),
        )
    challenger_pr = None
    challenger_bundle = None
    pr = None
    bundle = None
    commit = GitRepo(repo_dir).head_commit() if bundle_dir else ""
    if challenger is not None:
        events.emit(
            events.CHALLENGER_DECISION,
            dataset=settings.dataset.name,
            model_version=challenger.challenger_version,
            payload=_challenger_payload(challenger),
            related_versions={"production": production.version},
        )
        if challenger.action != "keep collecting" and bundle_dir:
            challenger_bundle = challenger_bundle_task(settings, challenger, report, bundle_dir, commit)
        elif challenger.action != "keep collecting" and open_pr:
            challenger_pr = challenger_pr_task(settings, challenger, report, repo_dir)
        elif challenger.action != "keep collecting":
            logger.warning("challenger decision %s: no PR opened (--no-open-pr)", challenger.action)
    if decision.action == "retrain" and (open_pr or bundle_dir):
        since = job.retraining_start(production, start)
        labelled = load_window_task(store_url, since, end) if since is not None else frame
        if bundle_dir:
            bundle = retrain_bundle_task(
                settings, labelled, report, bundle_dir, end, production.version, commit
            )
        else:
            pr = retrain_pr_task(settings, labelled, report, repo_dir, end, store_url)
    return MonitorOutcome(
        action=decision.action,
        status=decision.status,
        reasons=list(decision.reasons),
        rows=result.rows,
        report=str(out / "report.md"),
        pr=pr,
        bundle=bundle,
        challenger_bundle=challenger_bundle,
        challenger_refused=refused,
        early_warning=bool(estimate is not None and estimate.warning),
        challenger=challenger,
        challenger_pr=challenger_pr,
    )


def _challenger_payload(decision: ChallengerDecision) -> dict[str, object]:
    latest = decision.latest
    return {
        "action": decision.action,
        "reasons": list(decision.reasons),
        "windows": [w.outcome for w in decision.windows],
        "required_windows": decision.required_windows,
        "metric": latest.metric if latest is not None else None,
        "delta": latest.delta if latest is not None else None,
        "ci_low": latest.ci_low if latest is not None else None,
        "ci_high": latest.ci_high if latest is not None else None,
        "rows": latest.rows if latest is not None else 0,
        "rows_needed": latest.rows_needed if latest is not None else None,
    }


def _decay_payload(result: WindowResult, decision: Decision) -> dict[str, object]:
    perf = result.performance
    return {
        "window_start": result.window_start.isoformat(),
        "window_end": result.window_end.isoformat(),
        "rows": result.rows,
        "consecutive_bad": decision.consecutive_bad,
        "reasons": list(decision.reasons),
        "drifted_features": list(result.drift.drifted_features),
        "metric": perf.metric if perf is not None else None,
        "metric_value": perf.value if perf is not None else None,
        "baseline": perf.baseline if perf is not None else None,
    }


def _warning_payload(result: WindowResult) -> dict[str, object]:
    estimate = result.estimate
    assert estimate is not None
    return {
        "window_start": result.window_start.isoformat(),
        "window_end": result.window_end.isoformat(),
        "rows": result.rows,
        "metric": estimate.metric,
        "estimate": estimate.value,
        "interval": [estimate.ci_low, estimate.ci_high],
        "baseline": estimate.baseline,
        "estimated_drop": estimate.drop,
        "labelled": estimate.labelled,
        "reason": estimate.reason,
    }
