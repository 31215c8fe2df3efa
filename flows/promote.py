"""`promote` flow (on merge): re-check the merged commit's candidate against the CURRENT production,
then publish it and move the pointer. A stale PR report is never trusted."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.pr_check import pr_check_flow
from gitops_ml.errors import GatesFailed, GitopsMLError
from gitops_ml.jobs.config_check import load_checked_settings
from gitops_ml.registry.promote import PointerChange, promote_candidate


@task(name="publish-and-point", cache_policy=NO_CACHE)
def publish_task(candidate_dir: Path, registry, reason: str) -> PointerChange:
    return promote_candidate(candidate_dir, registry, reason=reason)


@task(name="commit-pointer", cache_policy=NO_CACHE)
def commit_pointer_task(repo_dir: str, registry, message: str) -> str | None:
    from gitops_ml.forge.git import GitRepo

    return GitRepo(repo_dir).commit_paths([registry.pointer, registry.history], message)


@flow(name="promote")
def promote_flow(config_dir: str = "config", out_dir: str = "reports/promote", commit: bool = False,
                 repo_dir: str = ".", reason: str = "merge to main", started_at: float | None = None,
                 run_deepchecks: bool = False) -> dict:
    logger = get_run_logger()
    settings = load_checked_settings(config_dir)
    check = pr_check_flow(config_dir=config_dir, out_dir=out_dir, repo_dir=repo_dir,
                          started_at=started_at or time.time(), run_deepchecks=run_deepchecks)
    if check.status == "error":
        raise GitopsMLError(f"promotion refused, bad input: {check.error} (report: {out_dir}/report.md)")
    if check.status != "pass":
        failed = "; ".join(f"{g.name}: {g.reason}" for g in check.verdict.failures)
        raise GatesFailed(f"promotion refused, gates failed vs current production: {failed}")
    change = publish_task(Path(out_dir) / "candidate", settings.registry, reason)
    logger.info("%s %s (previous: %s)", change.action, change.version, change.previous_version)
    commit_id = None
    if commit and change.changed:
        message = (f"Promote model {change.version} to production\n\n"
                   f"Previous: {change.previous_version or 'none'}. Artifact: {change.artifact_uri}\n"
                   f"Report: {out_dir}/report.md\n\n[skip ci]")
        commit_id = commit_pointer_task(repo_dir, settings.registry, message)
    return {"action": change.action, "version": change.version, "previous_version": change.previous_version,
            "artifact_uri": change.artifact_uri, "commit": commit_id}
