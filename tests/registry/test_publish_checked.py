"""The deploy's publish job trusts nothing the check job uploaded until it verified it.

`gitops-ml promote --checked DIR --expect-commit SHA`: the verdict must be a pass, the model must
load under the skops allow-list with its recorded sha256, and it must come from this commit and
this config; only then is it published and the pointer (deploy/*.yaml) moved.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from gitops_ml.config import MODEL_STORE_URL_ENV, Settings
from gitops_ml.errors import ArtifactError, GatesFailed
from gitops_ml.jobs.promote import publish_checked
from gitops_ml.registry.pointer import read_pointer
from tests.fixtures.models import tiny_settings, train_candidate

COMMIT = "1" * 40


@pytest.fixture(autouse=True)
def _model_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a store outside the repository comes from the machine, never from config
    monkeypatch.setenv(MODEL_STORE_URL_ENV, str(tmp_path / "store"))


def _settings(tmp_path: Path) -> Settings:
    return tiny_settings(
        registry={
            "pointer": str(tmp_path / "deploy/production.yaml"),
            "history": str(tmp_path / "deploy/history.yaml"),
        }
    )


def _checked(tmp_path: Path, settings: Settings, *, status: str = "pass", commit: str = COMMIT) -> Path:
    """What the check job uploads: report.md, summary.json, candidate/."""
    folder = tmp_path / "promotion-candidate"
    train_candidate(
        folder / "candidate", git_commit=commit, config_hash=settings.config_hash(), data_hash="d" * 64
    )
    (folder / "summary.json").write_text(json.dumps({"status": status}))
    (folder / "report.md").write_text("# ✅ PASS\n")
    return folder


def test_a_verified_candidate_is_published(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    outcome = publish_checked(
        _checked(tmp_path, settings), settings, expect_commit=COMMIT, reason="merge", commit=False
    )
    assert outcome.change.changed
    assert read_pointer(settings.registry.pointer).version == outcome.change.version


@pytest.mark.parametrize("status", ["fail", "error"])
def test_a_failed_verdict_is_refused(tmp_path: Path, status: str) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(GatesFailed, match="not 'pass'"):
        publish_checked(
            _checked(tmp_path, settings, status=status),
            settings,
            expect_commit=COMMIT,
            reason="merge",
            commit=False,
        )
    assert not Path(settings.registry.pointer).exists()


def test_a_replaced_model_file_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    folder = _checked(tmp_path, settings)
    (folder / "candidate" / "model.skops").write_bytes(b"something else")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        publish_checked(folder, settings, expect_commit=COMMIT, reason="merge", commit=False)
    assert not Path(settings.registry.pointer).exists()


def test_a_candidate_from_another_commit_or_config_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(ArtifactError, match="not " + COMMIT):
        publish_checked(
            _checked(tmp_path, settings, commit="2" * 40),
            settings,
            expect_commit=COMMIT,
            reason="merge",
            commit=False,
        )
    other = settings.model_copy(update={"split": settings.split.model_copy(update={"seed": 7})})
    with pytest.raises(ArtifactError, match="config hash"):
        publish_checked(
            _checked(tmp_path / "b", settings), other, expect_commit=COMMIT, reason="merge", commit=False
        )
    assert not Path(settings.registry.pointer).exists()


def test_a_missing_verdict_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    folder = _checked(tmp_path, settings)
    (folder / "summary.json").unlink()
    with pytest.raises(ArtifactError, match="verdict is missing"):
        publish_checked(folder, settings, expect_commit=COMMIT, reason="merge", commit=False)


def test_a_model_needing_types_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    import hashlib

    import skops.io as sio
    from sklearn.neighbors import KNeighborsClassifier

    settings = _settings(tmp_path)
    folder = _checked(tmp_path, settings)
    rng = np.random.default_rng(1)
    model = KNeighborsClassifier(n_neighbors=3).fit(
        rng.normal(size=(20, 2)), np.r_[np.zeros(10), np.ones(10)]
    )
    data = sio.dumps(Pipeline([("model", model)]))
    (folder / "candidate" / "model.skops").write_bytes(data)
    meta_path = folder / "candidate" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(data).hexdigest()  # a consistent, hostile candidate
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="outside registry.artifacts.TRUSTED_TYPES"):
        publish_checked(folder, settings, expect_commit=COMMIT, reason="merge", commit=False)
    assert not Path(settings.registry.pointer).exists()


def test_promotion_commits_the_model_card_and_a_rollback_brings_the_old_one_back_from_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitops_ml.forge.git import GitRepo
    from gitops_ml.jobs.promote import rollback_production

    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = _settings(tmp_path)
    versions = []
    for data_hash in ("d" * 64, "e" * 64):
        folder = _checked(tmp_path, settings)
        meta_path = folder / "candidate" / "metadata.json"
        meta = json.loads(meta_path.read_text())
        meta.update(data_hash=data_hash, version=f"v-{data_hash[0]}")
        meta_path.write_text(json.dumps(meta))
        outcome = publish_checked(
            folder, settings, expect_commit=COMMIT, reason="merge", commit=True, repo_dir=tmp_path
        )
        versions.append(outcome.change.version)
        shown = GitRepo(tmp_path).run("show", "--name-only", "--format=", "HEAD").text.split()
        assert "deploy/model-card.md" in shown
        card = (tmp_path / "deploy/model-card.md").read_text()
        assert card.startswith(f"# Model card: `{outcome.change.version}`")
        assert "not readable at promotion" in card  # the settings name a contract that is not there: said
        assert (tmp_path / "store" / outcome.change.version / "model-card.md").read_text() == card
    # a store that kept model files only (e.g. a GitHub release): the card comes from git history
    (tmp_path / "store" / versions[0] / "model-card.md").unlink()
    rolled = rollback_production(settings, to_version=None, reason="bad", commit=True, repo_dir=tmp_path)
    assert rolled.commit is not None
    assert (tmp_path / "deploy/model-card.md").read_text().startswith(f"# Model card: `{versions[0]}`")
    assert (
        "deploy/model-card.md"
        in GitRepo(tmp_path).run("show", "--name-only", "--format=", "HEAD").text.split()
    )
