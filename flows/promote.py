"""`promote` flow (on merge): re-check the merged commit's candidate against the CURRENT production,
then publish it and move the pointer. A stale PR report is never trusted.

Wiring only: the steps are the use cases of gitops_ml.jobs.promote wrapped as tasks."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.pr_check import pr_check_flow
from gitops_ml.config import RegistryConfig, Settings
from gitops_ml.jobs import promote as job
from gitops_ml.jobs.config_check import load_checked_settings
from gitops_ml.jobs.promote import PointerOutcome
from gitops_ml.registry.promote import PointerChange
from gitops_ml.reporting.pr_report import PrCheckResult


@task(name="publish-and-point", cache_policy=NO_CACHE)
def publish_task(report_dir: Path, settings: Settings, reason: str, repo_dir: str) -> PointerChange:
    return job.publish_with_card(report_dir, settings, reason, repo_dir)


@task(name="commit-pointer", cache_policy=NO_CACHE)
def commit_pointer_task(repo_dir: str, registry: RegistryConfig, message: str) -> str | None:
    return job.commit_pointer_change(repo_dir, registry, message, with_card=True)


@flow(name="promote-check")
def promote_check_flow(
    config_dir: str = "config",
    out_dir: str = "reports/promote",
    repo_dir: str = ".",
    started_at: float | None = None,
    run_deepchecks: bool = True,
) -> PrCheckResult:
    """The merged commit's candidate, re-checked against the CURRENT production with every check
    the PR check runs (deepchecks included); GatesFailed / GitopsMLError unless it passes."""
    check = pr_check_flow(
        config_dir=config_dir,
        out_dir=out_dir,
        repo_dir=repo_dir,
        started_at=started_at or time.time(),
        run_deepchecks=run_deepchecks,
    )
    job.refuse_unless_passed(check, out_dir)
    return check


@flow(name="promote")
def promote_flow(
    config_dir: str = "config",
    out_dir: str = "reports/promote",
    commit: bool = False,
    repo_dir: str = ".",
    reason: str = "merge to main",
    started_at: float | None = None,
    run_deepchecks: bool = True,
) -> PointerOutcome:
    logger = get_run_logger()
    settings = load_checked_settings(config_dir)
    promote_check_flow(
        config_dir=config_dir,
        out_dir=out_dir,
        repo_dir=repo_dir,
        started_at=started_at,
        run_deepchecks=run_deepchecks,
    )
    change = publish_task(Path(out_dir), settings, reason, repo_dir)
    logger.info("%s %s (previous: %s)", change.action, change.version, change.previous_version)
    commit_id = None
    if commit and change.changed:
        commit_id = commit_pointer_task(repo_dir, settings.registry, job.promotion_message(change, out_dir))
    return PointerOutcome(change, commit_id)
