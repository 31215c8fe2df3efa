from __future__ import annotations

from pathlib import Path

import pytest

from gitops_ml.forge.git import GitError, GitRepo, redact
from tests.forge.conftest import TOKEN, RepoPair, git
from tests.forge.git_http import GitHttpServer


def test_queries_on_a_fresh_clone(repo_pair: RepoPair) -> None:
    repo = GitRepo(repo_pair.work)
    assert repo.current_branch() == "main"
    assert repo.head_commit() == git(repo_pair.work, "rev-parse", "HEAD")
    assert not repo.is_dirty()
    assert repo.remote_url("origin") == str(repo_pair.remote)
    assert repo.remote_url("nope") is None
    assert repo.show_file("HEAD", "README.md") == b"hello\n"
    assert repo.show_file("HEAD", "missing.txt") is None
    assert repo.show_file("no-such-ref", "README.md") is None
    (repo_pair.work / "new.txt").write_text("x")
    assert repo.is_dirty()
    assert not repo.is_dirty(include_untracked=False)


def test_commit_paths_commits_only_those_paths(repo_pair: RepoPair) -> None:
    repo = GitRepo(repo_pair.work)
    (repo_pair.work / "README.md").write_text("changed and staged, not ours\n")
    git(repo_pair.work, "add", "README.md")
    (repo_pair.work / "data" / "batch1.csv").write_text("a,b\n1,2\n")
    (repo_pair.work / "data" / "manifest.yaml").write_text("batches: [batch1.csv]\n")
    before = repo.head_commit()

    commit = repo.commit_paths(
        ["data/batch1.csv", repo_pair.work / "data" / "manifest.yaml"],
        "add batch 1",
        author="Bot <bot@x.org>",
    )

    assert commit is not None and commit != before
    files = git(repo_pair.work, "show", "--name-only", "--format=", commit).splitlines()
    assert sorted(files) == ["data/batch1.csv", "data/manifest.yaml"]
    assert git(repo_pair.work, "log", "-1", "--format=%an <%ae>|%s") == "Bot <bot@x.org>|add batch 1"
    assert repo.dirty_paths() == ["README.md"]  # still staged, untouched
    # nothing changed in those paths: no empty commit
    assert repo.commit_paths(["data/batch1.csv"], "again") is None
    assert repo.head_commit() == commit


def test_commit_paths_rejects_a_path_outside_the_repo(repo_pair: RepoPair, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="outside the repository"):
        GitRepo(repo_pair.work).commit_paths([tmp_path / "elsewhere.txt"], "x")


def test_branches_merge_base_and_push_to_bare_remote(repo_pair: RepoPair) -> None:
    repo = GitRepo(repo_pair.work)
    main = repo.head_commit()
    repo.checkout_new_branch("retrain/2026-11-27", "main")
    assert repo.current_branch() == "retrain/2026-11-27"
    (repo_pair.work / "x.txt").write_text("x")
    tip = repo.commit_paths(["x.txt"], "x")
    assert repo.merge_base("main", "retrain/2026-11-27") == main

    repo.push("origin", "retrain/2026-11-27")

    assert git(repo_pair.remote, "rev-parse", "refs/heads/retrain/2026-11-27") == tip
    assert repo.remote_branch_exists("origin", "retrain/2026-11-27")
    assert not repo.remote_branch_exists("origin", "retrain/never")
    repo.checkout("main")
    assert repo.current_branch() == "main"
    with pytest.raises(GitError, match="check-ref-format"):
        repo.checkout_new_branch("bad..name", "main")


def test_fetch_sees_a_branch_pushed_by_someone_else(repo_pair: RepoPair, tmp_path: Path) -> None:
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(repo_pair.remote), str(other))
    git(other, "checkout", "--quiet", "-b", "feature")
    (other / "f.txt").write_text("f")
    git(other, "add", "f.txt")
    git(other, "commit", "--quiet", "-m", "f")
    git(other, "push", "--quiet", "origin", "feature")
    repo = GitRepo(repo_pair.work)
    assert repo.rev_parse("origin/feature") is None
    repo.fetch("origin")
    assert repo.rev_parse("origin/feature") == git(other, "rev-parse", "HEAD")


def test_https_push_with_token_authenticates_and_stores_it_nowhere(
    repo_pair: RepoPair, tmp_path: Path, _isolated_git_home: Path
) -> None:
    # a user whose config saves credentials: our token must still not be written anywhere
    (_isolated_git_home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    repo = GitRepo(repo_pair.work)
    with GitHttpServer(tmp_path, TOKEN) as server:
        git(repo_pair.work, "remote", "add", "web", server.url("remote.git"))
        repo.checkout_new_branch("retrain/2026-11-27", "main")
        (repo_pair.work / "x.txt").write_text("x")
        tip = repo.commit_paths(["x.txt"], "x")

        repo.push("web", "retrain/2026-11-27", token=TOKEN)
        repo.fetch("web", token=TOKEN)

        assert server.auth_seen and server.auth_seen[-1] == server.expected
        with pytest.raises(GitError) as info:
            repo.push("web", "retrain/2026-11-27", token="wrong-" + TOKEN)

    assert git(repo_pair.remote, "rev-parse", "refs/heads/retrain/2026-11-27") == tip
    assert TOKEN not in str(info.value)
    assert TOKEN not in (repo_pair.work / ".git" / "config").read_text()
    stored = [
        p for p in _isolated_git_home.rglob("*") if p.is_file() and TOKEN in p.read_text(errors="replace")
    ]
    assert stored == []


def test_push_without_token_to_an_authenticated_remote_fails_fast(
    repo_pair: RepoPair, tmp_path: Path
) -> None:
    repo = GitRepo(repo_pair.work, timeout_s=30)
    with GitHttpServer(tmp_path, TOKEN) as server:
        git(repo_pair.work, "remote", "add", "web", server.url("remote.git"))
        with pytest.raises(GitError, match="git push web"):
            repo.push("web", "main")  # no prompt: GIT_TERMINAL_PROMPT=0


def test_token_in_git_output_is_redacted(repo_pair: RepoPair) -> None:
    repo = GitRepo(repo_pair.work)
    branch = f"leak-{TOKEN}"  # git echoes the refspec, and so the token, in its error
    with pytest.raises(GitError) as info:
        repo.push("origin", branch, token=TOKEN)
    text = str(info.value)
    assert TOKEN not in text and "***" in text
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_redact_replaces_every_secret() -> None:
    assert redact("a S1 b S2 S1", ["S1", None, "", "S2"]) == "a *** b *** ***"
