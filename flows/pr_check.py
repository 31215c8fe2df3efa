"""`pr-check` flow: acquire -> validate -> train -> evaluate -> compare -> report, as ONE flow run.

Wiring only: each step is a src/ function wrapped as a task in flows/tasks.py. The report is
written whatever happens (gates failing, bad input), because a reviewer must see why.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from prefect import flow, get_run_logger

from flows.search import train_step
from flows.tasks import (
    acquire_task,
    compare_task,
    contract_task,
    decision_task,
    gates_task,
    integrity_task,
    model_evaluation_task,
    plots_task,
    score_production_task,
    score_task,
    segments_task,
    split_task,
    train_test_task,
)
from gitops_ml.errors import GitopsMLError
from gitops_ml.forge.git import git_commit
from gitops_ml.jobs.config_check import load_checked_settings
from gitops_ml.jobs.contract_diff import contract_diff_for
from gitops_ml.jobs.pr_check import (
    PrCheckRun,
    bad_input_result,
    result_from_run,
    save_candidate,
    write_pr_outputs,
)
from gitops_ml.quality.deepchecks_suites import deepchecks_session
from gitops_ml.reporting.pr_report import PrCheckResult
from gitops_ml.runinfo import StageTimer


def _finish(result: PrCheckResult, run: PrCheckRun) -> PrCheckResult:
    """Write report.md + summary.json, and the same report as a Prefect markdown artifact."""
    from prefect.artifacts import create_markdown_artifact

    markdown = write_pr_outputs(result, run)
    create_markdown_artifact(
        key="pr-check-report", markdown=markdown, description=f"PR check: {result.status}"
    )
    return result


def _flow_run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or "none")


@flow(name="pr-check")
def pr_check_flow(
    config_dir: str = "config",
    out_dir: str = "reports/pr",
    base_ref: str | None = None,
    repo_dir: str = ".",
    started_at: float | None = None,
    run_deepchecks: bool = True,
) -> PrCheckResult:
    logger = get_run_logger()
    timer = StageTimer()
    if started_at is not None:
        timer.seconds["prefect start"] = max(0.0, time.time() - started_at)
    out = Path(out_dir)
    run = PrCheckRun(out_dir=out, commit=git_commit(repo_dir), flow_run=_flow_run_id())
    deepchecks_process = contextlib.ExitStack()
    try:
        with timer.stage("config"):
            run.settings = settings = load_checked_settings(config_dir)
        if run_deepchecks and settings.evaluation.deepchecks.enabled:
            # One deepchecks process for the whole check, started now: its import overlaps the data steps.
            deepchecks_process.enter_context(deepchecks_session())
        with timer.stage("data"):
            logger.info("[1/7] acquire %s", settings.dataset.manifest)
            run.acquired = acquired = acquire_task(settings)
            logger.info("[2/7] contract %s on %d rows", settings.dataset.contract, len(acquired.frame))
            report, typed = contract_task(
                settings, acquired.frame, str(settings.dataset.manifest), acquired.origins
            )
            run.contract = report
        run.contract_diff, run.contract_diff_note = contract_diff_for(settings, repo_dir, base_ref)
        if typed is None:
            result = bad_input_result(run, "the data broke hard contract rules (table below)", timer.seconds)
            return _finish(result, run)
        with timer.stage("data"):
            run.split = split = split_task(settings, typed)
        deepchecks_on = run_deepchecks and settings.evaluation.deepchecks.enabled
        if deepchecks_on:
            with timer.stage("deepchecks"):
                logger.info("[3/7] deepchecks: data integrity, train-test validation")
                run.deepchecks["data_integrity"] = integrity_task(
                    settings, typed, out / "deepchecks" / "data_integrity.html"
                )
                run.deepchecks["train_test_validation"] = train_test_task(
                    settings, split.train, split.holdout, out / "deepchecks" / "train_test_validation.html"
                )
        with timer.stage("training"):
            logger.info("[4/7] train %s on %d rows", settings.estimator.class_path, len(split.train))
            run.trained = trained = train_step(
                settings, split.train
            )  # search: trials on Dask when configured
            # binary with costs: the threshold is chosen on a validation split of the training rows
            run.decision = decision_task(settings, trained.pipeline, split.train)
        with timer.stage("evaluation"):
            logger.info("[5/7] score candidate and production on the same %d-row holdout", len(split.holdout))
            run.candidate = candidate = score_task(settings, trained.pipeline, split.holdout, run.decision)
            # only a remote store's artifact is downloaded; a local one is read where it is
            run.production_model, run.production = score_production_task(
                settings, split.holdout, out / ".cache"
            )
            run.comparison = comparison = compare_task(settings, candidate, run.production)
            run.segments = segments_task(settings, candidate, run.production, split.holdout)
            run.plots = plots_task(
                settings, candidate, run.production, trained.pipeline, split.holdout, out / "plots"
            )
        if deepchecks_on:
            with timer.stage("deepchecks"):
                logger.info("[6/7] deepchecks: model evaluation")
                run.deepchecks["model_evaluation"] = model_evaluation_task(
                    settings,
                    split.train,
                    split.holdout,
                    trained.pipeline,
                    out / "deepchecks" / "model_evaluation.html",
                )
        with timer.stage("report"):
            logger.info("[7/7] gates, candidate artifact, report")
            # every blocking check config names must have run and held (not run is never a pass)
            run.verdict = gates_task(settings, comparison, run.segments, report, dict(run.deepchecks))
            run.candidate_artifact = save_candidate(run)
        return _finish(result_from_run(run, timer.seconds), run)
    except GitopsMLError as exc:
        if exc.exit_code != 2:
            raise
        logger.error("bad input: %s", exc)
        return _finish(bad_input_result(run, str(exc), timer.seconds), run)
    finally:
        deepchecks_process.close()
