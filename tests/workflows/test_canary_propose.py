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
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.workflows.conftest import WORKFLOWS_DIR, load_workflow

TOKEN = "ghs_canaryTOKEN0123456789abcdefSECRET"
LOCK = 'version = 1\nrequires-python = ">=3.11"\n\n[[package]]\nname = "numpy"\nversion = "{v}"\n'


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


def _push_step() -> dict[str, Any]:
    steps = load_workflow(WORKFLOWS_DIR / "canary.yml")["jobs"]["propose"]["steps"]
    (step,) = [s for s in steps if "git push" in (s.get("run") or "")]
    return step


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, Any]:
    remote = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    seed = tmp_path / "seed"
    (seed / "envs" / "deepchecks").mkdir(parents=True)
    (seed / "uv.lock").write_text(LOCK.format(v="2.1.0"))
    (seed / "envs" / "deepchecks" / "uv.lock").write_text(LOCK.format(v="1.26.4"))
    (seed / "src.py").write_text("print('code')\n")
    _git(seed, "init", "-q", "-b", "main")
    _git(seed, "add", "-A")
    _git(seed, "commit", "-qm", "main")
    _git(seed, "push", "-q", str(remote), "main")
    clone = tmp_path / "checkout"
    subprocess.run(
        ["git", "clone", "-q", str(remote), str(clone)],
        check=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"},
    )
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


def _plant(repo: dict[str, Any]) -> None:
    clone, marker = repo["clone"], repo["marker"]
    script = f'#!/bin/sh\necho "$0 saw $PUSH_TOKEN" >> {marker}\nexit 0\n'
    other = clone / ".planted-hooks"
    other.mkdir()
    for folder in (clone / ".git" / "hooks", other):
        for name in (
            "pre-push",
            "pre-commit",
            "post-commit",
            "commit-msg",
            "post-checkout",
            "reference-transaction",
        ):
            (folder / name).write_text(script)
            (folder / name).chmod(0o755)
    monitor = repo["tmp"] / "fsmonitor.sh"
    monitor.write_text(script)
    monitor.chmod(0o755)
    _git(clone, "config", "core.hooksPath", str(other))
    _git(clone, "config", "core.fsmonitor", str(monitor))


def _run(repo: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    step = _push_step()
    env = {k: str(v) for k, v in step["env"].items() if not str(v).startswith("${{")}
    assert step["env"]["LOCKS"] == "${{ runner.temp }}/upgraded-locks"
    bin_dir = repo["tmp"] / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "git").write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> {repo["tmp"] / "argv.log"}\nexec {shutil.which("git")} "$@"\n'
    )
    (bin_dir / "git").chmod(0o755)
    env.update(
        LOCKS=str(repo["locks"]),
        PUSH_TOKEN=TOKEN,
        HOME=str(repo["tmp"] / "home"),
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        GIT_CONFIG_NOSYSTEM="1",
    )
    script = repo["tmp"] / "propose.sh"
    script.write_text(step["run"])
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=repo["clone"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_planted_hooks_do_not_run_and_only_the_locks_are_pushed(repo: dict[str, Any]) -> None:
    _plant(repo)
    proc = _run(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not repo["marker"].exists(), repo["marker"].read_text()
    assert TOKEN not in proc.stdout + proc.stderr
    assert TOKEN not in (repo["clone"] / ".git" / "config").read_text()
    argv = (repo["tmp"] / "argv.log").read_text()
    assert "push --force origin canary/lock-update" in argv and TOKEN not in argv
    changed = _git(repo["remote"], "diff", "--name-only", "main", "canary/lock-update").split()
    assert changed == ["uv.lock"]
    assert 'version = "2.2.0"' in _git(repo["remote"], "show", "canary/lock-update:uv.lock")


def _refused(repo: dict[str, Any], needle: str) -> None:
    _plant(repo)
    proc = _run(repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert needle in proc.stdout, proc.stdout + proc.stderr
    assert _git(repo["remote"], "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]
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
    env = {k: str(v) for k, v in step["env"].items() if not str(v).startswith("${{")}
    env.update(PUSH_TOKEN="tok-123", HOME=str(tmp_path), PATH=os.environ["PATH"], GIT_CONFIG_NOSYSTEM="1")
    proc = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=github.com\n\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=True,
    )
    assert "username=x-access-token" in proc.stdout and "password=tok-123" in proc.stdout
    assert "tok-123" not in step["run"] and "PUSH_TOKEN" not in step["run"]
