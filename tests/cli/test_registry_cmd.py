"""`gitops-ml production` and `gitops-ml rollback` through `main(argv)`, in a real git repository.

A rollback commits the pointer and the history the way a promotion does (jobs.promote): one commit
holding both files, its message naming the versions.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

from gitops_ml.cli import main
from gitops_ml.registry.pointer import (
    HistoryEntry,
    ProductionPointer,
    append_history,
    read_pointer,
    write_pointer,
)
from tests.fixtures.projects import make_git_project


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def _publish(root: Path, version: str) -> ProductionPointer:
    """A stand-in model file in the local store; rollback checks only that its sha256 still matches."""
    path = root / ".model-store" / version / "model.skops"
    path.parent.mkdir(parents=True)
    path.write_bytes(f"model {version}".encode())
    return ProductionPointer(
        version=version, artifact_uri=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest()
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_git_project(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


def _promote_by_hand(root: Path, *versions: str) -> None:
    previous = None
    for version in versions:
        pointer = _publish(root, version)
        append_history(
            root / "deploy" / "history.yaml",
            HistoryEntry(
                action="promote",
                version=version,
                previous_version=previous,
                at="2026-01-01T00:00:00+00:00",
                pointer=pointer,
            ),
        )
        write_pointer(root / "deploy" / "production.yaml", pointer)
        previous = version
    _git(root, "add", "deploy")
    _git(root, "commit", "-q", "-m", "promotions")


def test_production_without_a_pointer_says_so(project: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["production"]) == 0
    assert "no production model yet" in capsys.readouterr().out


def test_production_prints_the_pointer(project: Path, capsys: pytest.CaptureFixture[str]):
    _promote_by_hand(project, "v-1")
    assert main(["production"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["version"] == "v-1"


def test_rollback_commits_pointer_and_history_together(project: Path, capsys: pytest.CaptureFixture[str]):
    _promote_by_hand(project, "v-1", "v-2")
    assert main(["rollback", "--commit", "--reason", "bad predictions"]) == 0
    out = capsys.readouterr().out
    assert "rolled back to v-1 (was v-2)" in out
    pointer = read_pointer(project / "deploy" / "production.yaml")
    assert pointer is not None and pointer.version == "v-1"
    head = _git(project, "rev-parse", "HEAD").strip()
    assert f"commit: {head}" in out
    assert _git(project, "log", "-1", "--format=%B").startswith(
        "Roll back production to v-1\n\nWas v-2. Reason: bad predictions"
    )
    assert set(_git(project, "show", "--name-only", "--format=", "HEAD").split()) == {
        "deploy/production.yaml",
        "deploy/history.yaml",
    }
    assert _git(project, "status", "--porcelain", "deploy") == ""

    assert main(["rollback", "--to", "v-1", "--commit"]) == 0  # already there: no new commit
    assert "nothing to do" in capsys.readouterr().out
    assert _git(project, "rev-parse", "HEAD").strip() == head


def test_rollback_without_commit_leaves_the_change_for_a_pull_request(project: Path):
    _promote_by_hand(project, "v-1", "v-2")
    head = _git(project, "rev-parse", "HEAD")
    assert main(["rollback"]) == 0
    assert _git(project, "rev-parse", "HEAD") == head
    assert "deploy/production.yaml" in _git(project, "status", "--porcelain")


def test_rollback_refuses_an_artifact_whose_bytes_changed(project: Path, capsys: pytest.CaptureFixture[str]):
    _promote_by_hand(project, "v-1", "v-2")
    (project / ".model-store" / "v-1" / "model.skops").write_bytes(b"tampered")
    assert main(["rollback"]) == 2
    assert "sha256 no longer matches" in capsys.readouterr().err
    pointer = read_pointer(project / "deploy" / "production.yaml")
    assert pointer is not None and pointer.version == "v-2"


def test_rollback_to_an_unknown_version_names_the_known_ones(
    project: Path, capsys: pytest.CaptureFixture[str]
):
    _promote_by_hand(project, "v-1", "v-2")
    assert main(["rollback", "--to", "v-9"]) == 2
    assert "v-9 is not in the history (known: v-1, v-2)" in capsys.readouterr().err
