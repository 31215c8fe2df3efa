"""Promotion and rollback: move the production pointer, then (when asked) commit the change to git.

Both go through `commit_pointer_change`, so a promotion and a rollback leave the same kind of
commit (pointer + history, one message) and return the same typed `PointerOutcome`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_ml.config import RegistryConfig, Settings
from gitops_ml.errors import ArtifactError, GatesFailed, GitopsMLError
from gitops_ml.io_utils import atomic_write_text
from gitops_ml.registry.promote import PointerChange, promote_candidate, rollback
from gitops_ml.reporting.pr_report import PrCheckResult

if TYPE_CHECKING:
    from gitops_ml.registry.artifacts import ArtifactMetadata


@dataclass(frozen=True)
class PointerOutcome:
    """The pointer change and the commit that recorded it (None: not asked to commit, or a no-op)."""

    change: PointerChange
    commit: str | None = None


def refuse_unless_passed(check: PrCheckResult, report_dir: str | Path) -> None:
    """A promotion goes ahead only on a passing re-check against the CURRENT production."""
    if check.status == "error":
        raise GitopsMLError(f"promotion refused, bad input: {check.error} (report: {report_dir}/report.md)")
    if check.status != "pass":
        failures = check.verdict.failures if check.verdict is not None else []
        failed = "; ".join(f"{g.name}: {g.reason}" for g in failures)
        raise GatesFailed(f"promotion refused, gates failed vs current production: {failed}")


def verify_checked_candidate(
    report_dir: str | Path, settings: Settings, *, expect_commit: str | None
) -> ArtifactMetadata:
    """What the privileged publish job checks before it publishes a candidate it did not train.

    The candidate comes from a job that ran project code with no write token; here, on a fresh
    checkout of the same commit: the check's verdict is a pass, the model file loads under the
    skops allow-list with the sha256 its metadata records, and it was trained from this commit's
    code and config. Returns the candidate's metadata; ArtifactError / GatesFailed otherwise.
    """
    from gitops_ml.registry.artifacts import load_model, read_metadata

    report_dir = Path(report_dir)
    candidate = report_dir / "candidate"
    summary_path = report_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{summary_path}: the check's verdict is missing or unreadable: {exc}") from exc
    status = summary.get("status") if isinstance(summary, dict) else None
    if status != "pass":
        raise GatesFailed(
            f"promotion refused: the check's verdict in {summary_path} is {status!r}, not 'pass'"
        )
    load_model(candidate)  # sha256 against metadata.json, then the skops allow-list; never unpickles
    meta = read_metadata(candidate)
    if expect_commit and meta.git_commit != expect_commit:
        raise ArtifactError(f"{candidate}: trained from commit {meta.git_commit!r}, not {expect_commit}")
    if meta.config_hash != settings.config_hash():
        raise ArtifactError(
            f"{candidate}: config hash {meta.config_hash[:12]} is not this checkout's "
            f"{settings.config_hash()[:12]}"
        )
    return meta


def publish_checked(
    report_dir: str | Path,
    settings: Settings,
    *,
    expect_commit: str | None,
    reason: str,
    commit: bool,
    repo_dir: str | Path = ".",
) -> PointerOutcome:
    """Verify a candidate checked by another job, publish it and move the pointer (deploy/*.yaml only)."""
    verify_checked_candidate(report_dir, settings, expect_commit=expect_commit)
    change = publish_with_card(report_dir, settings, reason, repo_dir)
    commit_id = None
    if commit and change.changed:
        commit_id = commit_pointer_change(
            repo_dir, settings.registry, promotion_message(change, report_dir), with_card=True
        )
    return PointerOutcome(change, commit_id)


def publish(candidate_dir: Path, registry: RegistryConfig, reason: str) -> PointerChange:
    return promote_candidate(candidate_dir, registry, reason=reason)


def publish_with_card(
    report_dir: str | Path, settings: Settings, reason: str, repo_dir: str | Path = "."
) -> PointerChange:
    """Publish the checked candidate with its model card and, when the pointer moved, write the
    card as deploy/model-card.md (committed with the pointer, so git keeps one per version)."""
    from gitops_ml.jobs.model_card import model_card_path, write_model_card
    from gitops_ml.registry.artifacts import MODEL_CARD_FILE

    candidate = Path(report_dir) / "candidate"
    card = write_model_card(report_dir, settings, candidate / MODEL_CARD_FILE, repo_dir)
    change = publish(candidate, settings.registry, reason)
    if change.changed:
        atomic_write_text(model_card_path(settings.registry), card.read_text(encoding="utf-8"))
    return change


def promotion_message(change: PointerChange, report_dir: str | Path) -> str:
    return (
        f"Promote model {change.version} to production\n\n"
        f"Previous: {change.previous_version or 'none'}. Artifact: {change.artifact_uri}\n"
        f"Report: {report_dir}/report.md\n\n[skip ci]"
    )


def rollback_message(change: PointerChange, reason: str) -> str:
    return f"Roll back production to {change.version}\n\nWas {change.previous_version}. Reason: {reason}"


def commit_pointer_change(
    repo_dir: str | Path, registry: RegistryConfig, message: str, *, with_card: bool = False
) -> str | None:
    """Commit the pointer and history files (and the model card of a promotion); None when there
    was nothing to commit."""
    from gitops_ml.forge.git import GitRepo
    from gitops_ml.jobs.model_card import model_card_path

    paths = [registry.pointer, registry.history, *([model_card_path(registry)] if with_card else [])]
    return GitRepo(repo_dir).commit_paths(paths, message)


def rollback_production(
    settings: Settings, *, to_version: str | None, reason: str, commit: bool, repo_dir: str | Path = "."
) -> PointerOutcome:
    """Point production back at an earlier version (default: the previous one in the history);
    deploy/model-card.md becomes that version's card when the store kept one."""
    change = rollback(settings.registry, to_version=to_version, reason=reason)
    card = _restore_card(change, settings.registry, repo_dir) if change.changed else False
    commit_id = None
    if commit and change.changed:
        commit_id = commit_pointer_change(
            repo_dir, settings.registry, rollback_message(change, reason), with_card=card
        )
    return PointerOutcome(change, commit_id)


def _restore_card(change: PointerChange, registry: RegistryConfig, repo_dir: str | Path) -> bool:
    """deploy/model-card.md becomes the card of the version now in production: the one published
    with its artifact, else the one its promotion committed (a GitHub release keeps model files
    only). False when neither exists (promoted before cards existed): the file is left alone."""
    from gitops_ml.forge.git import GitError, GitRepo
    from gitops_ml.jobs.model_card import model_card_path
    from gitops_ml.registry.artifacts import MODEL_CARD_FILE
    from gitops_ml.registry.model_store import fetch_artifact
    from gitops_ml.registry.promote import ROLLBACK_CACHE
    from gitops_ml.reporting.model_card import card_title

    target = model_card_path(registry)
    stored = fetch_artifact(change.artifact_uri, ROLLBACK_CACHE).parent / MODEL_CARD_FILE
    text = stored.read_text(encoding="utf-8") if stored.exists() else None
    if text is None:
        repo = GitRepo(repo_dir)
        try:
            path = repo.relative(target)
            commits = repo.run("log", "--format=%H", "-n", "200", "--", path).text.split()
        except GitError:
            commits = []
        for commit in commits:
            old = (repo.show_file(commit, path) or b"").decode("utf-8", "replace")
            if old.startswith(card_title(change.version)):
                text = old
                break
    if text is None:
        return False
    atomic_write_text(target, text)
    return True
