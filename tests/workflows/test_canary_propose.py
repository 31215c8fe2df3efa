"""canary.yml's `propose` step, run verbatim (its env and script) against a local bare remote.

The attack: the `lock` job runs the project's code (install + tests) and uploads the locks; the
`propose` job holds a token that can push. Before, it extracted that job's artifact into its
checkout (a crafted artifact could carry `.git/hooks/pre-push`), ran git with hooks enabled, and
put the token in `git push`'s argv. Here hooks and an fsmonitor command are planted every way git
finds them and a `git` on PATH logs its argv: none runs, the token is in no argv, output or
.git/config; an artifact holding anything but the two lock files is refused before any commit.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.git import git
from tests.workflows.conftest import (
    credential_fill,
    git_argv_logger,
    literal_env,
    plant_hooks,
    run_script,
    run_step,
    seeded_remote,
)

TOKEN = "ghs_canaryTOKEN0123456789abcdefSECRET"
LOCK = 'version = 1\nrequires-python = ">=3.11"\n\n[[package]]\nname = "numpy"\nversion = "{v}"\n'


def _push_step() -> dict[str, Any]:
    return run_step("canary.yml", "propose", "git push")


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, Any]:
    seed = tmp_path / "seed"
    (seed / "envs" / "deepchecks").mkdir(parents=True)
    (seed / "uv.lock").write_text(LOCK.format(v="2.1.0"))
    (seed / "envs" / "deepchecks" / "uv.lock").write_text(LOCK.format(v="1.26.4"))
    (seed / "src.py").write_text("print('code')\n")
    remote, clone = seeded_remote(tmp_path, seed)
    locks = tmp_path / "runner" / "upgraded-locks"
    (locks / "envs" / "deepchecks").mkdir(parents=True)
    (locks / "uv.lock").write_text(LOCK.format(v="2.2.0"))
    (locks / "envs" / "deepchecks" / "uv.lock").write_text(LOCK.format(v="1.26.4"))
    return {
        "tmp": tmp_path,
        "remote": remote,
        "clone": clone,
        "locks": locks,
        "marker": tmp_path / "hook-ran.txt",
    }


def _run(repo: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    step = _push_step()
    env = literal_env(step)
    assert step["env"]["LOCKS"] == "${{ runner.temp }}/upgraded-locks"
    bin_dir = git_argv_logger(repo["tmp"])
    env.update(
        LOCKS=str(repo["locks"]),
        PUSH_TOKEN=TOKEN,
        HOME=str(repo["tmp"] / "home"),
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        GIT_CONFIG_NOSYSTEM="1",
    )
    return run_script(step["run"], repo["clone"], env, repo["tmp"], timeout=120)


def test_planted_hooks_do_not_run_and_only_the_locks_are_pushed(repo: dict[str, Any]) -> None:
    plant_hooks(repo["clone"], repo["marker"])
    proc = _run(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not repo["marker"].exists(), repo["marker"].read_text()
    assert TOKEN not in proc.stdout + proc.stderr
    assert TOKEN not in (repo["clone"] / ".git" / "config").read_text()
    argv = (repo["tmp"] / "argv.log").read_text()
    assert "push --force origin canary/lock-update" in argv and TOKEN not in argv
    changed = git(repo["remote"], "diff", "--name-only", "main", "canary/lock-update").split()
    assert changed == ["uv.lock"]
    assert 'version = "2.2.0"' in git(repo["remote"], "show", "canary/lock-update:uv.lock")


def _refused(repo: dict[str, Any], needle: str) -> None:
    plant_hooks(repo["clone"], repo["marker"])
    proc = _run(repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert needle in proc.stdout, proc.stdout + proc.stderr
    assert git(repo["remote"], "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]
    assert not repo["marker"].exists()


def test_an_artifact_carrying_a_git_hook_is_refused(repo: dict[str, Any]) -> None:
    hook = repo["locks"] / ".git" / "hooks" / "pre-push"
    hook.parent.mkdir(parents=True)
    hook.write_text("#!/bin/sh\nexit 0\n")
    _refused(repo, "must hold exactly uv.lock and envs/deepchecks/uv.lock, found: ./.git/hooks/pre-push")


def test_an_artifact_lock_that_is_a_symlink_is_refused(repo: dict[str, Any]) -> None:
    (repo["locks"] / "uv.lock").unlink()
    (repo["locks"] / "uv.lock").symlink_to("/etc/passwd")
    _refused(repo, "uv.lock in the artifact is not a regular file")


def test_the_step_env_gives_git_the_token_through_the_credential_helper(tmp_path: Path) -> None:
    step = _push_step()
    answer = credential_fill(step, "PUSH_TOKEN", "tok-123", tmp_path)
    assert "username=x-access-token" in answer and "password=tok-123" in answer
    assert "tok-123" not in step["run"] and "PUSH_TOKEN" not in step["run"]
