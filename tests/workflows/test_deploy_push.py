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

from tests.workflows.conftest import WORKFLOWS_DIR, load_workflow

TOKEN = "ghs_secret-token-value-123"
IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _push_step() -> dict:
    workflow = load_workflow(WORKFLOWS_DIR / "deploy.yml")
    (step,) = [s for s in workflow["jobs"]["publish"]["steps"] if "git_safe push" in (s.get("run") or "")]
    return step


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


def _plant_hooks(clone: Path, marker: Path) -> None:
    """Hooks that would leak the token, in .git/hooks and in a configured core.hooksPath."""
    script = f'#!/bin/sh\necho "hook $0 saw $PUSH_TOKEN"\necho "$0 $PUSH_TOKEN" >> {marker}\nexit 0\n'
    other = clone / ".planted-hooks"
    other.mkdir()
    for folder in (clone / ".git" / "hooks", other):
        for name in (
            "pre-push",
            "pre-rebase",
            "post-rewrite",
            "post-checkout",
            "reference-transaction",
            "post-merge",
            "pre-commit",
            "post-commit",
        ):
            path = folder / name
            path.write_text(script)
            path.chmod(0o755)
    _git(clone, "config", "core.hooksPath", str(other))


@pytest.fixture
def repo(tmp_path: Path) -> dict:
    remote = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    clone = tmp_path / "checkout"
    seed = tmp_path / "seed"
    seed.mkdir()
    _git(seed, "init", "-q", "-b", "main")
    (seed / "deploy").mkdir()
    (seed / "deploy" / "production.yaml").write_text("version: v-1\n")
    (seed / "src.py").write_text("print('code')\n")
    _git(seed, "add", "-A")
    _git(seed, "commit", "-qm", "merged PR")
    _git(seed, "push", "-q", str(remote), "main")
    subprocess.run(
        ["git", "clone", "-q", str(remote), str(clone)],
        check=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"},
    )
    base = _git(clone, "rev-parse", "HEAD")
    marker = tmp_path / "hook-ran.txt"
    return {"remote": remote, "clone": clone, "seed": seed, "base": base, "marker": marker, "tmp": tmp_path}


def _run_push_step(repo: dict) -> subprocess.CompletedProcess[str]:
    step = _push_step()
    env = {k: str(v) for k, v in step["env"].items() if not str(v).startswith("${{")}
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
    script = repo["tmp"] / "push-step.sh"
    script.write_text(step["run"])
    # the shell GitHub Actions uses for `run:` on Linux
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=repo["clone"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _pointer_commit(clone: Path, *extra: str) -> str:
    (clone / "deploy" / "production.yaml").write_text("version: v-2\n")
    (clone / "deploy" / "history.yaml").write_text("- version: v-2\n")
    for name in extra:
        (clone / name).write_text("changed\n")
    _git(clone, "add", "-A", "deploy", *extra)
    _git(clone, "commit", "-qm", "Promote model v-2 to production\n\n[skip ci]")
    return _git(clone, "rev-parse", "HEAD")


def test_a_planted_pre_push_hook_does_not_run_and_the_token_is_not_printed(repo: dict) -> None:
    head = _pointer_commit(repo["clone"])
    _plant_hooks(repo["clone"], repo["marker"])
    proc = _run_push_step(repo)
    assert proc.returncode == 0, proc.stderr
    assert _git(repo["remote"], "rev-parse", "refs/heads/main") == head
    assert not repo["marker"].exists(), repo["marker"].read_text()
    assert TOKEN not in proc.stdout + proc.stderr


def test_the_rebase_after_a_refused_push_runs_no_hook_either(repo: dict) -> None:
    head_before = _pointer_commit(repo["clone"])
    # main moved on meanwhile: the first push is refused, the step rebases and pushes again
    (repo["seed"] / "README").write_text("docs\n")
    _git(repo["seed"], "add", "README")
    _git(repo["seed"], "commit", "-qm", "docs")
    _git(repo["seed"], "push", "-q", str(repo["remote"]), "main")
    _plant_hooks(repo["clone"], repo["marker"])
    proc = _run_push_step(repo)
    assert proc.returncode == 0, proc.stderr
    pushed = _git(repo["remote"], "rev-parse", "refs/heads/main")
    assert pushed != head_before and _git(repo["remote"], "log", "-1", "--format=%s", pushed).startswith(
        "Promote"
    )
    assert not repo["marker"].exists()
    assert TOKEN not in proc.stdout + proc.stderr


def test_a_pointer_commit_touching_anything_else_is_not_pushed(repo: dict) -> None:
    _pointer_commit(repo["clone"], "src.py")
    proc = _run_push_step(repo)
    assert proc.returncode == 1
    assert "touches more than deploy/*.yaml and deploy/model-card.md: src.py" in proc.stdout
    assert _git(repo["remote"], "rev-parse", "refs/heads/main") == repo["base"]


def test_the_model_card_may_ride_in_the_pointer_commit(repo: dict) -> None:
    head = _pointer_commit(repo["clone"], "deploy/model-card.md")
    proc = _run_push_step(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _git(repo["remote"], "rev-parse", "refs/heads/main") == head


def test_more_than_one_commit_is_not_pushed(repo: dict) -> None:
    _pointer_commit(repo["clone"])
    (repo["clone"] / "deploy" / "production.yaml").write_text("version: v-3\n")
    _git(repo["clone"], "commit", "-qam", "another")
    proc = _run_push_step(repo)
    assert proc.returncode == 1 and "exactly one pointer commit" in proc.stdout
    assert _git(repo["remote"], "rev-parse", "refs/heads/main") == repo["base"]


def test_no_pointer_change_pushes_nothing(repo: dict) -> None:
    proc = _run_push_step(repo)
    assert proc.returncode == 0 and "nothing to push" in proc.stdout
