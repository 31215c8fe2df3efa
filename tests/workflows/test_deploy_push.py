"""The deploy's push step, run verbatim (its env and script from deploy.yml) against a local bare remote.

The attack (H2): whatever ran before the push (training, a poisoned dependency) plants a git hook;
a `pre-push` hook then printed PUSH_TOKEN. Here hooks are planted every way git finds them, and
none runs; a pointer commit that touches more than deploy/*.yaml is refused before any push.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.git import git
from tests.workflows.conftest import (
    literal_env,
    plant_hooks,
    run_script,
    run_step,
    seeded_remote,
)

TOKEN = "ghs_secret-token-value-123"


def _push_step() -> dict:
    return run_step("deploy.yml", "publish", "git_safe push")


@pytest.fixture
def repo(tmp_path: Path) -> dict:
    seed = tmp_path / "seed"
    (seed / "deploy").mkdir(parents=True)
    (seed / "deploy" / "production.yaml").write_text("version: v-1\n")
    (seed / "src.py").write_text("print('code')\n")
    remote, clone = seeded_remote(tmp_path, seed, "merged PR")
    base = git(clone, "rev-parse", "HEAD")
    marker = tmp_path / "hook-ran.txt"
    return {"remote": remote, "clone": clone, "seed": seed, "base": base, "marker": marker, "tmp": tmp_path}


def _run_push_step(repo: dict) -> subprocess.CompletedProcess[str]:
    step = _push_step()
    env = literal_env(step)
    env.update(
        PUSH_TOKEN=TOKEN,
        GITHUB_SHA=repo["base"],
        GITHUB_REF_NAME="main",
        HOME=str(repo["tmp"] / "home"),
        PATH=os.environ["PATH"],
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
    )
    return run_script(step["run"], repo["clone"], env, repo["tmp"], timeout=120)


def _pointer_commit(clone: Path, *extra: str) -> str:
    (clone / "deploy" / "production.yaml").write_text("version: v-2\n")
    (clone / "deploy" / "history.yaml").write_text("- version: v-2\n")
    for name in extra:
        (clone / name).write_text("changed\n")
    git(clone, "add", "-A", "deploy", *extra)
    git(clone, "commit", "-qm", "Promote model v-2 to production\n\n[skip ci]")
    return git(clone, "rev-parse", "HEAD")


def test_a_planted_pre_push_hook_does_not_run_and_the_token_is_not_printed(repo: dict) -> None:
    head = _pointer_commit(repo["clone"])
    plant_hooks(repo["clone"], repo["marker"])
    proc = _run_push_step(repo)
    assert proc.returncode == 0, proc.stderr
    assert git(repo["remote"], "rev-parse", "refs/heads/main") == head
    assert not repo["marker"].exists(), repo["marker"].read_text()
    assert TOKEN not in proc.stdout + proc.stderr


def test_the_rebase_after_a_refused_push_runs_no_hook_either(repo: dict) -> None:
    head_before = _pointer_commit(repo["clone"])
    # main moved on meanwhile: the first push is refused, the step rebases and pushes again
    (repo["seed"] / "README").write_text("docs\n")
    git(repo["seed"], "add", "README")
    git(repo["seed"], "commit", "-qm", "docs")
    git(repo["seed"], "push", "-q", str(repo["remote"]), "main")
    plant_hooks(repo["clone"], repo["marker"])
    proc = _run_push_step(repo)
    assert proc.returncode == 0, proc.stderr
    pushed = git(repo["remote"], "rev-parse", "refs/heads/main")
    assert pushed != head_before and git(repo["remote"], "log", "-1", "--format=%s", pushed).startswith(
        "Promote"
    )
    assert not repo["marker"].exists()
    assert TOKEN not in proc.stdout + proc.stderr


def test_a_pointer_commit_touching_anything_else_is_not_pushed(repo: dict) -> None:
    _pointer_commit(repo["clone"], "src.py")
    proc = _run_push_step(repo)
    assert proc.returncode == 1
    assert "touches more than deploy/*.yaml and deploy/model-card.md: src.py" in proc.stdout
    assert git(repo["remote"], "rev-parse", "refs/heads/main") == repo["base"]


def test_the_model_card_may_ride_in_the_pointer_commit(repo: dict) -> None:
    head = _pointer_commit(repo["clone"], "deploy/model-card.md")
    proc = _run_push_step(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git(repo["remote"], "rev-parse", "refs/heads/main") == head


def test_more_than_one_commit_is_not_pushed(repo: dict) -> None:
    _pointer_commit(repo["clone"])
    (repo["clone"] / "deploy" / "production.yaml").write_text("version: v-3\n")
    git(repo["clone"], "commit", "-qam", "another")
    proc = _run_push_step(repo)
    assert proc.returncode == 1 and "exactly one pointer commit" in proc.stdout
    assert git(repo["remote"], "rev-parse", "refs/heads/main") == repo["base"]


def test_no_pointer_change_pushes_nothing(repo: dict) -> None:
    proc = _run_push_step(repo)
    assert proc.returncode == 0 and "nothing to push" in proc.stdout
