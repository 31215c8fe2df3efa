"""Fixtures for forge tests: a fake GitHub server and real git repositories with a bare remote."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.git import git
from tests.forge.fake_github import FakeGitHub

TOKEN = "ghp_testTOKEN0123456789abcdefSECRET"
REPOSITORY = "acme/churn"


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, repos=[REPOSITORY]) as server:
        yield server


@pytest.fixture(autouse=True)
def _isolated_git_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tests never read or write the real ~/.gitconfig or ~/.git-credentials."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GITHUB_TOKEN", "GH_TOKEN", "GIT_CONFIG_COUNT"):
        monkeypatch.delenv(var, raising=False)
    return home


@dataclass
class RepoPair:
    work: Path
    remote: Path


@pytest.fixture
def repo_pair(tmp_path: Path) -> RepoPair:
    """A bare 'origin' and a clone with one commit on main (data/manifest.yaml, README.md)."""
    remote = tmp_path / "remote.git"
    work = tmp_path / "work"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(work)], check=True)
    (work / "data").mkdir()
    (work / "data" / "manifest.yaml").write_text("batches: []\n")
    (work / "README.md").write_text("hello\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "initial")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "--quiet", "origin", "main")
    git(work, "fetch", "--quiet", "origin")
    return RepoPair(work, remote)
