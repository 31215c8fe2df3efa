"""Thin wrapper over the `git` command line (explicit argv, never a shell).

Tokens: a token is handed to git only through the child's environment (GIT_CONFIG_COUNT config
entries naming a credential helper that reads $GITOPS_ML_GIT_TOKEN), so it is never written to
`.git/config`, never appears in argv, and is redacted from any captured output before an error
is raised.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_ml.errors import GitopsMLError

TOKEN_ENV = "GITOPS_ML_GIT_TOKEN"
# The helper text itself holds no secret: the shell expands the variable inside the child only.
_CREDENTIAL_HELPER = f'!f() {{ echo username=x-access-token; echo "password=${TOKEN_ENV}"; }}; f'
DEFAULT_AUTHOR = "gitops-ml bot <gitops-ml-bot@users.noreply.github.com>"
REDACTED = "***"


class GitError(GitopsMLError):
    """A git command failed; the message names the command and git's stderr, secrets redacted."""


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _token_env(token: str) -> dict[str, str]:
    """Config entries passed by environment (git >= 2.31): reset any configured helper first so a
    credential store in the user's config never receives (and saves) this token."""
    return {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": "",
        "GIT_CONFIG_KEY_1": "credential.helper",
        "GIT_CONFIG_VALUE_1": _CREDENTIAL_HELPER,
        TOKEN_ENV: token,
        # never fall back to an interactive prompt in a scheduled job
        "GIT_TERMINAL_PROMPT": "0",
    }


def parse_author(author: str) -> tuple[str, str]:
    """'Name <email>' -> (name, email)."""
    name, sep, rest = author.partition("<")
    if not sep or not rest.endswith(">") or not name.strip():
        raise GitError(f"author {author!r}: expected 'Name <email>'")
    return name.strip(), rest[:-1].strip()


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace").strip()


class GitRepo:
    """One working tree. Every method runs `git -C <path> ...` and raises GitError on failure."""

    def __init__(self, path: Path | str, *, timeout_s: float = 300.0):
        self.path = Path(path)
        self.timeout_s = timeout_s

    # -- plumbing -------------------------------------------------------------------------------
    def run(
        self,
        *args: str,
        token: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> GitResult:
        child_env = dict(os.environ)
        # a caller's GIT_DIR/GIT_WORK_TREE (e.g. from a git hook) would redirect us elsewhere
        for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            child_env.pop(key, None)
        child_env.setdefault("GIT_TERMINAL_PROMPT", "0")
        if env:
            child_env.update(env)
        if token:
            child_env.update(_token_env(token))
        # Hooks and an fsmonitor command are code from whoever wrote .git/hooks or .git/config:
        # they never run in our automation, where a token may be in the environment.
        argv = [
            "git",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=false",
            "-C",
            str(self.path),
            *args,
        ]
        try:
            proc = subprocess.run(  # noqa: S603 - explicit argv, no shell
                argv, env=child_env, capture_output=True, timeout=self.timeout_s, check=False
            )
        except FileNotFoundError as exc:
            raise GitError("git is not installed or not on PATH") from exc
        except subprocess.TimeoutExpired:
            raise GitError(
                f"git {redact(' '.join(args), [token])} timed out after {self.timeout_s:.0f} s"
            ) from None
        stderr = redact(proc.stderr.decode("utf-8", "replace"), [token])
        if check and proc.returncode != 0:
            command = redact(" ".join(args), [token])
            raise GitError(f"git {command} failed in {self.path} (exit {proc.returncode}): {stderr.strip()}")
        return GitResult(proc.returncode, proc.stdout, stderr)

    def _out(self, *args: str, token: str | None = None) -> str:
        return self.run(*args, token=token).text

    # -- queries --------------------------------------------------------------------------------
    def current_branch(self) -> str | None:
        """Branch name, or None on a detached HEAD."""
        name = self._out("rev-parse", "--abbrev-ref", "HEAD")
        return None if name == "HEAD" else name

    def head_commit(self) -> str:
        return self._out("rev-parse", "HEAD")

    def rev_parse(self, ref: str) -> str | None:
        """Commit id of `ref`, or None if it does not exist."""
        result = self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return result.text if result.ok and result.text else None

    def branch_exists(self, name: str) -> bool:
        return self.rev_parse(f"refs/heads/{name}") is not None

    def is_dirty(self, *, include_untracked: bool = True) -> bool:
        return bool(self.dirty_paths(include_untracked=include_untracked))

    def dirty_paths(self, *, include_untracked: bool = True) -> list[str]:
        """Paths (relative to the repo root) with uncommitted changes."""
        args = ["status", "--porcelain=v1", "-z"]
        if not include_untracked:
            args.append("--untracked-files=no")
        raw = self.run(*args).stdout.decode("utf-8", "replace")
        entries = [e for e in raw.split("\0") if e]
        paths: list[str] = []
        skip_next = False
        for entry in entries:
            if skip_next:  # the source path of a rename
                skip_next = False
                continue
            status, path = entry[:2], entry[3:]
            paths.append(path)
            if "R" in status or "C" in status:
                skip_next = True
        return paths

    def remote_url(self, name: str = "origin") -> str | None:
        result = self.run("remote", "get-url", name, check=False)
        return result.text if result.ok and result.text else None

    def merge_base(self, a: str, b: str) -> str | None:
        result = self.run("merge-base", a, b, check=False)
        return result.text if result.ok and result.text else None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False).ok

    def show_file(self, ref: str, path: str) -> bytes | None:
        """Content of `path` at `ref`, or None if the file (or ref) does not exist there."""
        result = self.run("cat-file", "blob", f"{ref}:{path}", check=False)
        return result.stdout if result.ok else None

    def remote_branch_exists(self, remote: str, branch: str, *, token: str | None = None) -> bool:
        out = self._out("ls-remote", "--heads", remote, f"refs/heads/{branch}", token=token)
        return bool(out)

    # -- changes --------------------------------------------------------------------------------
    def checkout_new_branch(self, name: str, start_point: str) -> None:
        self.run("check-ref-format", "--branch", name)
        self.run("checkout", "-b", name, start_point)

    def checkout(self, name: str) -> None:
        self.run("checkout", name)

    def reset_branch_to(self, name: str, commit: str) -> None:
        """Move the checked-out branch `name` to `commit` (a fast-forward in our use)."""
        self.run("checkout", "-B", name, commit)

    def commit_paths(
        self, paths: Sequence[str | Path], message: str, author: str = DEFAULT_AUTHOR
    ) -> str | None:
        """Commit exactly `paths` (additions, changes and deletions), nothing else that is staged.

        Returns the new commit id, or None when those paths have no change to commit (so a rerun
        after a partial failure is a no-op rather than an error).
        """
        if not paths:
            raise GitError("commit_paths: no paths given")
        rel = [self.relative(p) for p in paths]
        name, email = parse_author(author)
        # a path neither in the work tree nor in the index is already deleted: nothing to stage
        # (git refuses a pathspec that matches nothing)
        rel = [p for p in rel if (self.path / p).exists() or self.run("ls-files", "--", p).stdout.strip()]
        if not rel:
            return None
        # -A stages deletions too; only within the given pathspecs
        self.run("add", "-A", "--", *rel)
        staged = self.run("diff", "--cached", "--name-only", "--", *rel).stdout.strip()
        if not staged:
            return None
        env = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        # a pathspec commit leaves anything else that happens to be staged out of this commit
        self.run("commit", "--no-verify", "-m", message, "--", *rel, env=env)
        return self.head_commit()

    def relative(self, path: str | Path) -> str:
        """`path` as a repository-relative POSIX path; GitError when it lies outside."""
        p = Path(path)
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(self.path.resolve())
            except ValueError as exc:
                raise GitError(f"{path}: outside the repository {self.path}") from exc
        return p.as_posix()

    # -- remotes --------------------------------------------------------------------------------
    def fetch(self, remote: str = "origin", *refspecs: str, token: str | None = None) -> None:
        self.run("fetch", "--no-tags", remote, *refspecs, token=token)

    def push(self, remote: str, branch: str, *, token: str | None = None) -> None:
        """Push local `branch` to the same name on `remote` (never forced)."""
        self.run("push", remote, f"refs/heads/{branch}:refs/heads/{branch}", token=token)


def git_commit(repo_dir: Path | str = ".") -> str:
    """HEAD's commit, with `+dirty` when the tree has changes; "unknown" outside a git repository."""
    try:
        repo = GitRepo(repo_dir)
        commit = repo.head_commit()
        return commit + ("+dirty" if repo.is_dirty(include_untracked=False) else "")
    except Exception:  # not a repository, no commits yet, git missing: recorded, not fatal
        return "unknown"


def default_base_ref(repo_dir: Path | str = ".", base_branch: str = "main") -> str | None:
    """The merge base of HEAD with the base branch (remote first): what the PR is compared against."""
    try:
        repo = GitRepo(repo_dir)
        for candidate in (f"origin/{base_branch}", base_branch):
            if repo.rev_parse(candidate):
                return repo.merge_base("HEAD", candidate)
    except Exception:
        return None
    return None


def repository_from_remote(url: str | None) -> str | None:
    """owner/name from an https or ssh GitHub remote URL."""
    if not url:
        return None
    match = re.search(r"[:/]([^/:]+)/([^/]+?)(?:\.git)?/?$", url)
    return f"{match.group(1)}/{match.group(2)}" if match else None
