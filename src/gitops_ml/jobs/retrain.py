"""The retraining use case: newly labelled window -> data batch + manifest entry -> pull request.

With no token, it still does everything locally (branch + commit + the report file) and says so.
The git and GitHub talk is forge/; the batch export and manifest are data/; this module drives them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from gitops_ml.config import Settings
from gitops_ml.errors import GitopsMLError

if TYPE_CHECKING:
    from gitops_ml.forge.git import GitRepo
    from gitops_ml.forge.github import GitHubForge

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainingPr:
    """What the retraining step did: the PR (or local branch) and the batch it added."""

    action: str  # opened | updated | ... | local-only (see forge.retrain_pr)
    branch: str
    pr_number: int | None
    pr_url: str | None
    commit: str | None
    message: str
    export: str  # the export summary (rows kept, dropped and why)
    batch: str  # path of the batch file added to the manifest


def _existing_ids(settings: Settings) -> set[str]:
    from gitops_ml.data.acquire import acquire

    if not settings.dataset.id_column:
        return set()
    frame = acquire(
        settings.dataset.manifest,
        time_column=settings.dataset.time_column,
        allowed_uri_prefixes=settings.dataset.allowed_uri_prefixes,
    ).frame
    return set(frame[settings.dataset.id_column].astype(str))


def repository_forge(settings: Settings, repo: GitRepo, what: str) -> tuple[GitHubForge | None, str | None]:
    """The repository's GitHub client and token; (None, token) in local mode (logged with why)."""
    from gitops_ml.forge.git import repository_from_remote
    from gitops_ml.forge.github import GitHubForge
    from gitops_ml.forge.github_api import api_url_for
    from gitops_ml.forge.tokens import resolve_token

    token = resolve_token(settings.forge.token_secret_block)
    repository = settings.forge.repository or repository_from_remote(repo.remote_url("origin"))
    # the repository's own API host (GITHUB_API_URL checked against the remote), never one from config
    forge = (
        GitHubForge(repository, token, api_url_for(repo.remote_url("origin")))
        if token and repository
        else None
    )
    if forge is None:
        why = (
            "no token (GITHUB_TOKEN / GH_TOKEN / forge.token_secret_block)"
            if not token
            else "no repository (forge.repository or an origin remote)"
        )
        logger.warning("%s in local mode: %s; branch and commit only", what, why)
    return forge, token


def open_retraining_pr(
    settings: Settings,
    window: pd.DataFrame,
    report: str,
    *,
    repo_dir: Path,
    window_end: datetime,
    store_url: str | None,
) -> RetrainingPr:
    """Export the window's labelled rows on the retraining branch, commit, push and open/update the PR.

    `store_url` None: the PR is not recorded in the prediction store (its cooldown then counts
    from the previous record).
    """
    from gitops_ml.data.add_batch import add_batch
    from gitops_ml.data.export import labelled_window_batch, write_batch_csv
    from gitops_ml.forge.git import GitRepo
    from gitops_ml.forge.retrain_pr import open_or_update_retraining_pr
    from gitops_ml.prediction_store import PredictionStore

    repo = GitRepo(repo_dir)
    manifest = Path(settings.dataset.manifest)
    stamp = pd.Timestamp(window_end).strftime("%Y%m%dT%H%M%S")
    batch_path = manifest.parent / "batches" / f"{settings.dataset.name}-retrain-{stamp}.csv"
    summary: dict[str, str] = {}

    def prepare(_branch: str) -> None:
        # Runs on the retraining branch: its manifest may already list batches an open PR added.
        batch = labelled_window_batch(window, settings, existing_ids=_existing_ids(settings))
        summary["export"] = batch.summary()
        if batch.rows == 0:
            raise GitopsMLError(f"retraining export: no usable labelled rows ({batch.summary()})")
        write_batch_csv(batch, batch_path)
        add_batch(manifest, batch_path)

    forge, token = repository_forge(settings, repo, "retraining PR")
    date = pd.Timestamp(window_end).date()
    outcome = open_or_update_retraining_pr(
        forge,
        repo,
        branch_prefix=settings.monitoring.retrain_branch_prefix,
        label=settings.monitoring.retrain_label,
        base=settings.forge.base_branch,
        title=f"Retrain: production model decayed ({date.isoformat()})",
        body=report,
        paths_to_commit=[batch_path, manifest],
        commit_message=f"Add labelled production window {stamp} for retraining",
        date=date,
        token=token,
        prepare=prepare,
        comment_body="The monitor found the model still decayed; new labelled data pushed.\n\n" + report,
    )
    if store_url:
        store = PredictionStore(store_url)
        try:
            store.add_retrain_pr(
                branch=outcome.branch, pr_number=outcome.pr_number, url=outcome.pr_url, action=outcome.action
            )
        finally:
            store.dispose()
    return RetrainingPr(
        action=outcome.action,
        branch=outcome.branch,
        pr_number=outcome.pr_number,
        pr_url=outcome.pr_url,
        commit=outcome.commit,
        message=outcome.message,
        export=summary.get("export", ""),
        batch=str(batch_path),
    )
