"""Git and GitHub for the retraining step: local git commands, a PyGithub client, token lookup.

PyGithub and Prefect are imported inside the functions that need them, so importing this package
is cheap and has no side effects.
"""

from __future__ import annotations

from gitops_ml.forge.git import GitError, GitRepo
from gitops_ml.forge.github import ForgeError, GitHubForge, PullRequestInfo, truncate_body
from gitops_ml.forge.retrain_pr import RetrainPrOutcome, open_or_update_retraining_pr, retrain_branch_name
from gitops_ml.forge.tokens import resolve_token

__all__ = [
    "ForgeError",
    "GitError",
    "GitHubForge",
    "GitRepo",
    "PullRequestInfo",
    "RetrainPrOutcome",
    "open_or_update_retraining_pr",
    "resolve_token",
    "retrain_branch_name",
    "truncate_body",
]
