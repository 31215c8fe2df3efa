"""Open, or update, THE retraining pull request: commit new data on a `retrain/<date>` branch,
push it, and open a labelled PR, or push to the open one's branch and comment on it.

Every step can be rerun after a failure without duplicating anything: an existing local or
remote branch is reused, an unchanged tree makes no new commit, pushing an up-to-date branch is a
no-op, and an open PR (labelled or not) on the branch is found before opening another.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gitops_ml.forge.git import DEFAULT_AUTHOR, GitError, GitRepo
from gitops_ml.forge.github import GitHubForge, PullRequestInfo

logger = logging.getLogger(__name__)

Action = Literal["opened", "updated", "local-only"]
LABEL_COLOR = "fbca04"
LABEL_DESCRIPTION = "Opened by the gitops-ml monitor: the production model has decayed"


@dataclass(frozen=True)
class RetrainPrOutcome:
    action: Action
    branch: str
    pr_number: int | None
    pr_url: str | None
    commit: str | None  # the branch's head after this run
    message: str


def retrain_branch_name(branch_prefix: str, date: dt.date | str) -> str:
    day = date.isoformat() if isinstance(date, dt.date) else str(date)
    return f"{branch_prefix}{day}"


def open_or_update_retraining_pr(
    forge: GitHubForge | None,
    repo: GitRepo,
    *,
    branch_prefix: str,
    label: str,
    base: str,
    title: str,
    body: str,
    paths_to_commit: Sequence[str | Path],
    commit_message: str,
    date: dt.date | str,
    token: str | None,
    remote: str = "origin",
    author: str = DEFAULT_AUTHOR,
    comment_body: str | None = None,
    prepare: Callable[[str], None] | None = None,
    restore_branch: bool = True,
) -> RetrainPrOutcome:
    """Commit `paths_to_commit` on the retraining branch and open or update its PR.

    The files are taken from the working tree as they are now and re-applied on the target branch.
    When they must be derived from that branch's content (e.g. a manifest listing the batches the
    open PR already adds), pass `prepare(branch)` instead: it runs with the target branch checked
    out and must write `paths_to_commit`.

    forge=None (no token or repository): branch and commit locally, return "local-only".
    The working tree goes back to the original branch afterwards unless restore_branch=False.
    """
    rel_paths = [_relative(repo, p) for p in paths_to_commit]
    if not rel_paths:
        raise GitError("open_or_update_retraining_pr: no paths to commit")
    if prepare is None:
        _require_files(repo, rel_paths)
    _refuse_unrelated_changes(repo, rel_paths)
    snapshot = None if prepare else _snapshot(repo, rel_paths)
    original = repo.current_branch() or repo.head_commit()

    existing: PullRequestInfo | None = None
    branch = retrain_branch_name(branch_prefix, date)
    if forge is not None:
        forge.ensure_label(label, LABEL_COLOR, LABEL_DESCRIPTION)
        existing = forge.find_open_pr(label, branch_prefix)
        if existing is None:
            # a PR opened by an earlier run that failed before labelling it
            existing = forge.find_open_pr_by_head(branch)
        if existing is not None:
            branch = existing.head_branch

    try:
        _reset_paths(repo, rel_paths)
        _switch_to(repo, branch, base=base, remote=remote, token=token, online=forge is not None)
        if prepare is not None:
            prepare(branch)
        else:
            assert snapshot is not None
            _restore_snapshot(repo, snapshot)
        new_commit = repo.commit_paths(rel_paths, commit_message, author=author)
    except BaseException:
        if snapshot is not None:
            _recover(repo, original, snapshot)
        elif restore_branch:
            _abandon(repo, original, rel_paths)
        raise
    head = repo.rev_parse(f"refs/heads/{branch}")
    what = f"committed {new_commit[:12]}" if new_commit else "no change to commit"

    try:
        if forge is None:
            return RetrainPrOutcome(
                "local-only",
                branch,
                None,
                None,
                head,
                f"No GitHub token or repository configured: {what} on local branch '{branch}'. "
                f"Push it and open a pull request labelled '{label}' by hand, or set GITHUB_TOKEN.",
            )
        repo.push(remote, branch, token=token)
        if existing is not None:
            if label.lower() not in {x.lower() for x in existing.labels}:
                forge.open_pr(branch, base, title, body, labels=[label])  # adopts it, adds the label
            forge.comment(existing.number, comment_body or body)
            return RetrainPrOutcome(
                "updated",
                branch,
                existing.number,
                existing.url,
                head,
                f"Updated retraining PR #{existing.number} ({what}, pushed '{branch}', commented).",
            )
        pr = forge.open_pr(branch, base, title, body, labels=[label])
        return RetrainPrOutcome(
            "opened",
            branch,
            pr.number,
            pr.url,
            head,
            f"Opened retraining PR #{pr.number} from '{branch}' ({what}).",
        )
    finally:
        if restore_branch and repo.current_branch() != original:
            repo.checkout(original)


def _relative(repo: GitRepo, path: str | Path) -> str:
    rel = repo.relative(path)
    if (repo.path / rel).is_dir():
        raise GitError(f"{rel}: a directory; list the files to commit")
    return rel


def _require_files(repo: GitRepo, rel_paths: list[str]) -> None:
    # a missing file would be committed as a deletion: never what a retraining run means
    missing = [p for p in rel_paths if not (repo.path / p).is_file()]
    if missing:
        raise GitError(f"{repo.path}: files to commit not found: {', '.join(missing[:5])}")


def _refuse_unrelated_changes(repo: GitRepo, rel_paths: list[str]) -> None:
    """Switching branches with other edits in the tree could fail half-way or carry them along."""
    others = [p for p in repo.dirty_paths(include_untracked=False) if p not in rel_paths]
    if others:
        shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
        raise GitError(
            f"{repo.path}: uncommitted changes outside the retraining files ({shown}); "
            "commit or discard them first"
        )


def _snapshot(repo: GitRepo, rel_paths: list[str]) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for rel in rel_paths:
        file = repo.path / rel
        out[rel] = file.read_bytes() if file.is_file() else None
    return out


def _restore_snapshot(repo: GitRepo, snapshot: dict[str, bytes | None]) -> None:
    for rel, content in snapshot.items():
        file = repo.path / rel
        if content is None:
            file.unlink(missing_ok=True)
        else:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(content)


def _reset_paths(repo: GitRepo, rel_paths: list[str]) -> None:
    """Put the paths back to HEAD (their new content is in the snapshot) so any checkout is clean."""
    tracked = [p for p in rel_paths if repo.show_file("HEAD", p) is not None]
    untracked = [p for p in rel_paths if p not in tracked]
    if tracked:
        repo.run("restore", "--source=HEAD", "--staged", "--worktree", "--", *tracked)
    if untracked:
        repo.run("rm", "--cached", "--quiet", "--ignore-unmatch", "--", *untracked)
        for rel in untracked:
            (repo.path / rel).unlink(missing_ok=True)


def _switch_to(
    repo: GitRepo, branch: str, *, base: str, remote: str, token: str | None, online: bool
) -> None:
    remote_ref = f"refs/remotes/{remote}/{branch}"
    if online:
        repo.fetch(remote, f"+refs/heads/{base}:refs/remotes/{remote}/{base}", token=token)
        if repo.remote_branch_exists(remote, branch, token=token):
            repo.fetch(remote, f"+refs/heads/{branch}:{remote_ref}", token=token)
    remote_tip = repo.rev_parse(remote_ref) if online else None
    if repo.branch_exists(branch):
        repo.checkout(branch)
        local_tip = repo.head_commit()
        if remote_tip and remote_tip != local_tip:
            if repo.is_ancestor(local_tip, remote_tip):
                repo.reset_branch_to(branch, remote_tip)  # fast-forward to what others pushed
            elif not repo.is_ancestor(remote_tip, local_tip):
                raise GitError(
                    f"branch '{branch}' has diverged from {remote}/{branch}; "
                    "reconcile it by hand (it is never force-pushed)"
                )
    elif remote_tip:
        repo.checkout_new_branch(branch, remote_tip)
    else:
        start = f"refs/remotes/{remote}/{base}"
        repo.checkout_new_branch(branch, start if repo.rev_parse(start) else base)


def _abandon(repo: GitRepo, original: str, rel_paths: list[str]) -> None:
    """After `prepare` (or the commit) failed: drop what it half-wrote and go back to the original branch."""
    try:
        _reset_paths(repo, rel_paths)
        if repo.current_branch() != original:
            repo.checkout(original)
    except GitError as exc:
        logger.warning("could not restore %s after a failure: %s", repo.path, exc)


def _recover(repo: GitRepo, original: str, snapshot: dict[str, bytes | None]) -> None:
    """After a failure, go back to the original branch with the user's files as they were."""
    try:
        _reset_paths(repo, list(snapshot))
        if repo.current_branch() != original:
            repo.checkout(original)
        _restore_snapshot(repo, snapshot)
    except GitError as exc:
        logger.warning("could not restore %s after a failure: %s", repo.path, exc)
