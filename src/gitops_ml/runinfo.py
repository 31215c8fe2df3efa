"""Facts about the run recorded for reproducibility: git commit, library versions, stage timings."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

TRACKED_PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "skops", "deepchecks", "prefect")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(repo_dir: Path | str = ".") -> str:
    """HEAD's commit, with `+dirty` when the tree has changes; "unknown" outside a git repository."""
    from gitops_ml.forge.git import GitRepo

    try:
        repo = GitRepo(repo_dir)
        commit = repo.head_commit()
        return commit + ("+dirty" if repo.is_dirty(include_untracked=False) else "")
    except Exception:  # not a repository, no commits yet, git missing: recorded, not fatal
        return "unknown"


def default_base_ref(repo_dir: Path | str = ".", base_branch: str = "main") -> str | None:
    """The merge base of HEAD with the base branch (remote first): what the PR is compared against."""
    from gitops_ml.forge.git import GitRepo

    try:
        repo = GitRepo(repo_dir)
        for candidate in (f"origin/{base_branch}", base_branch):
            if repo.rev_parse(candidate):
                return repo.merge_base("HEAD", candidate)
    except Exception:
        return None
    return None


class StageTimer:
    """Wall time per named stage, in the order they ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
