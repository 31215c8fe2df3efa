from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_ml.forge.git import GitError, GitRepo
from gitops_ml.forge.github import ForgeError, GitHubForge
from gitops_ml.forge.retrain_pr import open_or_update_retraining_pr
from tests.forge.conftest import REPOSITORY, TOKEN, RepoPair, git
from tests.forge.fake_github import FakeGitHub

DAY1 = dt.date(2026, 11, 27)
DAY2 = dt.date(2026, 12, 4)


@pytest.fixture
def linked_github(repo_pair: RepoPair) -> Iterator[FakeGitHub]:
    """The fake knows the bare remote, so a PR can only be opened for a branch that was pushed."""
    with FakeGitHub(token=TOKEN, repos=[REPOSITORY], git_remotes={REPOSITORY: repo_pair.remote}) as server:
        yield server


def forge_for(server: FakeGitHub, **kw) -> GitHubForge:
    kw.setdefault("backoff_factor", 0.0)
    return GitHubForge(REPOSITORY, TOKEN, server.api_url, throttle=False, **kw)


def write_batch(work: Path, name: str) -> list[str]:
    (work / "data" / f"{name}.csv").write_text(f"id,y\n{name},1\n")
    manifest = work / "data" / "manifest.yaml"
    manifest.write_text(manifest.read_text() + f"# {name}\n")
    return [f"data/{name}.csv", "data/manifest.yaml"]


def run(forge: GitHubForge | None, work: Path, paths: list[str], date: dt.date, body: str = "report", **kw):
    return open_or_update_retraining_pr(
        forge,
        GitRepo(work),
        branch_prefix="retrain/",
        label="retraining",
        base="main",
        title=f"Retrain: model decayed ({date})",
        body=body,
        paths_to_commit=paths,
        commit_message=f"data: new labelled batch ({date})",
        date=date,
        token=TOKEN,
        **kw,
    )


def test_opens_a_labelled_pr_with_the_committed_data(repo_pair: RepoPair, linked_github: FakeGitHub) -> None:
    paths = write_batch(repo_pair.work, "b1")
    out = run(forge_for(linked_github), repo_pair.work, paths, DAY1, body="## Model decayed\nPSI 0.4")

    assert out.action == "opened" and out.branch == "retrain/2026-11-27" and out.pr_number == 1
    remote_tip = git(repo_pair.remote, "rev-parse", "refs/heads/retrain/2026-11-27")
    assert out.commit == remote_tip
    assert sorted(git(repo_pair.remote, "show", "--name-only", "--format=", remote_tip).split()) == sorted(
        paths
    )
    assert (
        git(repo_pair.remote, "log", "-1", "--format=%s", remote_tip)
        == "data: new labelled batch (2026-11-27)"
    )
    assert git(repo_pair.remote, "rev-parse", f"{remote_tip}^") == git(repo_pair.remote, "rev-parse", "main")
    [pr] = linked_github.pulls()
    assert pr["head"]["ref"] == out.branch and pr["base"]["ref"] == "main"
    assert pr["head"]["sha"] == remote_tip
    assert pr["body"] == "## Model decayed\nPSI 0.4"
    assert [x["name"] for x in pr["labels"]] == ["retraining"]
    assert out.pr_url == pr["html_url"]
    # back where we were, with a clean tree; main itself is untouched
    repo = GitRepo(repo_pair.work)
    assert repo.current_branch() == "main" and not repo.is_dirty()
    assert git(repo_pair.remote, "rev-parse", "main") == repo.head_commit()
    assert TOKEN not in (repo_pair.work / ".git" / "config").read_text()


def test_second_run_updates_the_open_pr_instead_of_opening_another(
    repo_pair: RepoPair, linked_github: FakeGitHub
) -> None:
    forge = forge_for(linked_github)
    first = run(forge, repo_pair.work, write_batch(repo_pair.work, "b1"), DAY1)
    second = run(forge, repo_pair.work, write_batch(repo_pair.work, "b2"), DAY2, body="report 2")

    assert second.action == "updated"
    assert (second.branch, second.pr_number) == (first.branch, first.pr_number)
    assert len(linked_github.pulls()) == 1
    assert linked_github.comments(first.pr_number) == ["report 2"]
    tip = git(repo_pair.remote, "rev-parse", f"refs/heads/{first.branch}")
    assert second.commit == tip and git(repo_pair.remote, "rev-parse", f"{tip}^") == first.commit
    assert git(repo_pair.remote, "ls-tree", "--name-only", tip, "data/").split() == [
        "data/b1.csv",
        "data/b2.csv",
        "data/manifest.yaml",
    ]
    assert git(repo_pair.remote, "for-each-ref", "--format=%(refname)", "refs/heads/retrain/").split() == [
        "refs/heads/retrain/2026-11-27"
    ]


def test_without_forge_commits_on_a_local_branch_only(repo_pair: RepoPair) -> None:
    out = run(None, repo_pair.work, write_batch(repo_pair.work, "b1"), DAY1, restore_branch=False)

    assert out.action == "local-only" and out.pr_number is None and out.pr_url is None
    assert "No GitHub token" in out.message and "retrain/2026-11-27" in out.message
    repo = GitRepo(repo_pair.work)
    assert repo.current_branch() == "retrain/2026-11-27" and repo.head_commit() == out.commit
    assert not repo.remote_branch_exists("origin", "retrain/2026-11-27")
    # a rerun the same day reuses the branch and makes no empty commit
    again = run(None, repo_pair.work, ["data/b1.csv", "data/manifest.yaml"], DAY1)  # files still there
    assert again.commit == out.commit and "no change to commit" in again.message


def test_pr_creation_failing_after_push_is_finished_by_the_next_run(
    repo_pair: RepoPair, linked_github: FakeGitHub
) -> None:
    paths = write_batch(repo_pair.work, "b1")
    linked_github.fail_next("POST", r"/pulls$", status=500, times=10)
    with pytest.raises(ForgeError, match="could not open a pull request"):
        run(forge_for(linked_github, max_retries=1), repo_pair.work, paths, DAY1)
    pushed = git(repo_pair.remote, "rev-parse", "refs/heads/retrain/2026-11-27")
    assert linked_github.pulls() == []
    assert GitRepo(repo_pair.work).current_branch() == "main"

    linked_github._rules.clear()
    assert not (repo_pair.work / "data" / "b1.csv").exists()  # committed on the branch, not on main
    with pytest.raises(GitError, match="files to commit not found: data/b1.csv"):
        run(forge_for(linked_github), repo_pair.work, paths, DAY1)  # would commit a deletion
    # the monitor reruns and writes the same batch again
    out = run(forge_for(linked_github), repo_pair.work, write_batch(repo_pair.work, "b1"), DAY1)

    assert out.action == "opened" and len(linked_github.pulls()) == 1
    assert out.commit == pushed  # branch reused, nothing recommitted


def test_pr_opened_but_not_labelled_is_adopted_not_duplicated(
    repo_pair: RepoPair, linked_github: FakeGitHub
) -> None:
    paths = write_batch(repo_pair.work, "b1")
    linked_github.fail_next("POST", r"/issues/\d+/labels$", status=422, times=1)
    with pytest.raises(ForgeError, match="label PR #1"):
        run(forge_for(linked_github), repo_pair.work, paths, DAY1)

    out = run(forge_for(linked_github), repo_pair.work, write_batch(repo_pair.work, "b2"), DAY1, body="r2")

    assert out.action == "updated" and out.pr_number == 1
    [pr] = linked_github.pulls()
    assert [x["name"] for x in pr["labels"]] == ["retraining"]
    assert linked_github.comments(1) == ["r2"]


def test_push_failure_opens_nothing_and_the_rerun_reuses_the_local_commit(
    repo_pair: RepoPair, linked_github: FakeGitHub
) -> None:
    paths = write_batch(repo_pair.work, "b1")
    git(repo_pair.work, "remote", "set-url", "--push", "origin", str(repo_pair.work / "no-such-remote"))
    with pytest.raises(GitError, match="git push origin"):
        run(forge_for(linked_github), repo_pair.work, paths, DAY1)
    assert linked_github.pulls() == []
    repo = GitRepo(repo_pair.work)
    assert repo.current_branch() == "main"
    local = repo.rev_parse("refs/heads/retrain/2026-11-27")
    assert local is not None and repo.show_file(local, "data/b1.csv") == b"id,y\nb1,1\n"
    git(repo_pair.work, "remote", "set-url", "--push", "origin", str(repo_pair.remote))

    out = run(forge_for(linked_github), repo_pair.work, write_batch(repo_pair.work, "b1"), DAY1)
    assert out.action == "opened" and len(linked_github.pulls()) == 1
    assert out.commit == local == git(repo_pair.remote, "rev-parse", "refs/heads/retrain/2026-11-27")


def test_refuses_unrelated_uncommitted_changes(repo_pair: RepoPair, linked_github: FakeGitHub) -> None:
    paths = write_batch(repo_pair.work, "b1")
    (repo_pair.work / "README.md").write_text("half-done edit\n")
    with pytest.raises(GitError, match=r"uncommitted changes outside the retraining files \(README.md\)"):
        run(forge_for(linked_github), repo_pair.work, paths, DAY1)
    assert linked_github.request_log == []
    assert (repo_pair.work / "data" / "b1.csv").exists()


def test_prepare_writes_files_on_the_target_branch(repo_pair: RepoPair, linked_github: FakeGitHub) -> None:
    forge = forge_for(linked_github)
    run(forge, repo_pair.work, write_batch(repo_pair.work, "b1"), DAY1)
    seen = []

    def prepare(branch: str) -> None:
        # the manifest on the PR branch already lists b1: append b2 to THAT one
        seen.append((branch, GitRepo(repo_pair.work).current_branch()))
        write_batch(repo_pair.work, "b2")

    out = run(forge, repo_pair.work, ["data/b2.csv", "data/manifest.yaml"], DAY2, prepare=prepare)
    assert seen == [("retrain/2026-11-27", "retrain/2026-11-27")]
    manifest = GitRepo(repo_pair.work).show_file(out.branch, "data/manifest.yaml")
    assert manifest == b"batches: []\n# b1\n# b2\n"


def test_a_failing_prepare_leaves_the_original_branch_checked_out_and_clean(repo_pair: RepoPair) -> None:
    def prepare(_branch: str) -> None:
        write_batch(repo_pair.work, "b1")  # half-written, then the export gives up
        raise RuntimeError("no usable labelled rows")

    with pytest.raises(RuntimeError, match="no usable labelled rows"):
        run(None, repo_pair.work, ["data/b1.csv", "data/manifest.yaml"], DAY1, prepare=prepare)
    repo = GitRepo(repo_pair.work)
    assert repo.current_branch() == "main"
    assert repo.dirty_paths() == []


def test_over_https_the_token_authenticates_every_git_call_and_is_stored_nowhere(
    repo_pair: RepoPair, linked_github: FakeGitHub, tmp_path: Path, _isolated_git_home: Path
) -> None:
    from tests.forge.git_http import GitHttpServer

    with GitHttpServer(tmp_path, TOKEN) as server:
        git(repo_pair.work, "remote", "set-url", "origin", server.url("remote.git"))
        out = run(forge_for(linked_github), repo_pair.work, write_batch(repo_pair.work, "b1"), DAY1)
        second = run(forge_for(linked_github), repo_pair.work, write_batch(repo_pair.work, "b2"), DAY2)

    assert (out.action, second.action) == ("opened", "updated")
    assert git(repo_pair.remote, "rev-parse", "refs/heads/retrain/2026-11-27") == second.commit
    assert server.auth_seen and set(server.auth_seen) == {server.expected}
    leaks = [
        p
        for root in (repo_pair.work / ".git", _isolated_git_home)
        for p in root.rglob("*")
        if p.is_file() and TOKEN.encode() in p.read_bytes()
    ]
    assert leaks == []
