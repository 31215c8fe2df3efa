"""`monitor` flow: drift + late-label performance on a window of logged predictions; when the
policy says so, a retraining pull request with the newly labelled data and the evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from gitops_ml.config import Settings
from gitops_ml.errors import GitopsMLError
from gitops_ml.jobs.config_check import load_checked_settings


@task(name="load-window", cache_policy=NO_CACHE)
def load_window_task(store_url: str, start: datetime, end: datetime) -> pd.DataFrame:
    from gitops_ml.store.predictions import PredictionStore

    store = PredictionStore(store_url)
    try:
        return store.window(start, end)
    finally:
        store.dispose()


@task(name="assess-window", cache_policy=NO_CACHE)
def assess_task(settings: Settings, production, window: pd.DataFrame, start: datetime, end: datetime):
    from gitops_ml.monitoring.drift import read_reference
    from gitops_ml.monitoring.performance import baseline_value
    from gitops_ml.monitoring.policy import assess_window
    from gitops_ml.registry.production import model_features
    from gitops_ml.training.pipeline import prepare_features

    reference = read_reference(production.path.parent / "reference.json")
    model_settings = model_features(production.metadata, settings)
    features = prepare_features(window, model_settings) if len(window) else window
    metric = settings.monitoring.performance_metric
    baseline = baseline_value(production.pointer.metrics, metric)
    labels = pd.to_numeric(window["label"], errors="coerce").to_numpy() if len(window) else None
    scores = window["score"].to_numpy(dtype=float) if len(window) else None
    return assess_window(reference, features, settings.monitoring, window_start=start, window_end=end,
                         y_true=labels, y_score=scores, baseline_value=baseline,
                         model_version=production.version)


@task(name="decide", cache_policy=NO_CACHE)
def decide_task(settings: Settings, store_url: str, result, now: datetime):
    from gitops_ml.monitoring.policy import WindowRecord, decide, make_record
    from gitops_ml.store.predictions import PredictionStore

    store = PredictionStore(store_url)
    try:
        history = [WindowRecord.from_dict(r["payload"]) for r in reversed(store.monitor_runs(limit=50))]
        last_pr = store.last_retrain_pr()
        decision = decide(history, result, settings.monitoring, now, last_pr["created_at"] if last_pr else None)
        record = make_record(result, decision, created_at=now)
        store.add_monitor_run(record.to_dict())
        return decision, [*history, record]
    finally:
        store.dispose()


@task(name="report", cache_policy=NO_CACHE)
def report_task(result, decision, history, model_version: str, out_dir: Path) -> str:
    from gitops_ml.io_utils import atomic_write_json, atomic_write_text
    from gitops_ml.monitoring.report import render_monitor_report, write_monitor_plots

    markdown = render_monitor_report(result, decision, history, model_version=model_version)
    plots = write_monitor_plots(result, history, out_dir / "plots")
    if plots:
        markdown += "\n## Plots\n\n" + "\n".join(f"![{k}](plots/{p.name})" for k, p in plots.items()) + "\n"
    atomic_write_text(out_dir / "report.md", markdown)
    atomic_write_json(out_dir / "summary.json", {"decision": decision.to_dict(), "window": result.to_dict(),
                                                 "model_version": model_version})
    return markdown


@task(name="retraining-pr", cache_policy=NO_CACHE, retries=0)
def retrain_pr_task(settings: Settings, window: pd.DataFrame, report: str, repo_dir: str, end: datetime,
                    store_url: str):
    from gitops_ml.forge.retraining import open_retraining_pr

    return open_retraining_pr(settings, window, report, repo_dir=Path(repo_dir), window_end=end,
                              store_url=store_url)


@flow(name="monitor")
def monitor_flow(config_dir: str = "config", out_dir: str = "reports/monitor", store_url: str | None = None,
                 window: str | None = None, now: str | None = None, open_pr: bool = True,
                 repo_dir: str = ".") -> dict:
    logger = get_run_logger()
    settings = load_checked_settings(config_dir)
    store_url = store_url or settings.serving.prediction_store_url
    from gitops_ml.registry.production import load_production

    production = load_production(settings.registry, Path(out_dir) / ".cache")
    if production is None:
        raise GitopsMLError(f"{settings.registry.pointer}: no production model to monitor yet")
    end = pd.Timestamp(now).floor("us").to_pydatetime() if now else datetime.now(UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    start = end - pd.Timedelta(window or settings.monitoring.window).to_pytimedelta()
    logger.info("window %s .. %s, model %s", start.isoformat(), end.isoformat(), production.version)
    frame = load_window_task(store_url, start, end)
    result = assess_task(settings, production, frame, start, end)
    decision, history = decide_task(settings, store_url, result, end)
    out = Path(out_dir)
    report = report_task(result, decision, history, production.version, out)
    create_markdown_artifact(key="monitor-report", markdown=report, description=f"monitor: {decision.action}")
    create_table_artifact(key="monitor-drift", table=[f.to_dict() for f in result.drift.features],
                          description="per-feature drift of the latest window")
    outcome = {"action": decision.action, "status": decision.status, "reasons": decision.reasons,
               "rows": result.rows, "report": str(out / "report.md"), "pr": None}
    if decision.action == "retrain" and open_pr:
        # Everything labelled since this model went live, not only the last window: the new data.
        since = pd.Timestamp(production.pointer.promoted_at).to_pydatetime()
        labelled = load_window_task(store_url, min(since, start), end) if since < start else frame
        pr = retrain_pr_task(settings, labelled, report, repo_dir, end, store_url)
        outcome["pr"] = pr
    return outcome


