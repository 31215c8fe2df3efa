"""The contract as it was at a git ref, and its diff against the working tree's contract.

The diff itself is pure (contracts.diff); reading an old version goes through git (forge.git).
"""

from __future__ import annotations

from pathlib import Path

from gitops_ml.config import Settings
from gitops_ml.contracts.diff import ContractDiff, diff_contracts
from gitops_ml.contracts.model import Contract, load_contract, parse_contract_text
from gitops_ml.errors import ContractError
from gitops_ml.forge.git import GitError, GitRepo, default_base_ref


def load_contract_at_ref(path: str | Path, git_ref: str, repo_dir: str | Path = ".") -> Contract | None:
    """The contract as it is at `git_ref` (e.g. the PR's base branch), or None if absent there.

    Reads with git's object store, never touching the working tree. An unknown ref or a folder
    that is not a git repository raises ContractError.
    """
    repo_path = Path(repo_dir).resolve()
    rel = _repo_relative(Path(path), repo_path)
    repo = GitRepo(repo_path)
    try:
        known = repo.run("rev-parse", "--verify", "--quiet", f"{git_ref}^{{commit}}", check=False).ok
    except GitError as exc:  # git not installed
        raise ContractError(f"cannot run git: {exc}") from exc
    if not known:
        raise ContractError(f"{repo_path}: git ref {git_ref!r} not found (fetch the base branch first?)")
    spec = f"{git_ref}:{rel}"
    data = repo.show_file(git_ref, rel)
    if data is None:
        return None
    return parse_contract_text(data.decode("utf-8", "replace"), source=spec)


def _repo_relative(path: Path, repo: Path) -> str:
    if path.is_absolute():
        try:
            return path.resolve().relative_to(repo).as_posix()
        except ValueError as exc:
            raise ContractError(f"{path}: not inside the git repository {repo}") from exc
    return path.as_posix()


def contract_diff_for(
    settings: Settings, repo_dir: str | Path, base_ref: str | None
) -> tuple[ContractDiff | None, str | None]:
    """(diff, None) or (None, why there is no diff) for the contract vs the base ref."""
    ref = base_ref or default_base_ref(repo_dir, settings.forge.base_branch)
    if ref is None:
        return None, "No base ref found (not a git repository, or no main branch): diff not computed."
    repo_root = Path(repo_dir).resolve()
    contract_path = Path(settings.dataset.contract)
    rel = contract_path.resolve().relative_to(repo_root) if contract_path.is_absolute() else contract_path
    old = load_contract_at_ref(str(rel), ref, repo_root)
    if old is None:
        return None, f"`{rel}` does not exist at `{ref[:12]}`: the contract is new in this change."
    return diff_contracts(old, load_contract(contract_path)), None
