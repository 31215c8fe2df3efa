"""`gitops-ml challenger propose | promote | retire` through `main(argv)`, in a real git repository.

Each is one commit of deploy/*.yaml (so on GitHub a reviewed PR); a refusal exits 2 (or 1 for a
failed verdict) and leaves the pointer files, the store and git as they were.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitops_ml.cli import main
from gitops_ml.config import Settings
from gitops_ml.errors import GitopsMLError
from gitops_ml.jobs.challenger import judge_challenger
from gitops_ml.jobs.config_check import load_checked_settings
from gitops_ml.monitoring.challenger import ChallengerDecision
from gitops_ml.registry.challenger import read_challenger, write_challenger
from gitops_ml.registry.pointer import read_history, read_pointer
from gitops_ml.registry.production import load_production
from gitops_ml.registry.promote import promote_candidate
from tests.fixtures.models import train_candidate
from tests.fixtures.projects import make_git_project

CHALLENGER = Path("deploy/challenger.yaml")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def _checked(
    root: Path,
    name: str,
    settings: Settings,
    *,
    seed: int,
    features: tuple[str, ...] = ("a", "b"),
    status: str = "pass",
) -> Path:
    """What a PR check leaves in --out: summary.json and candidate/ (a real skops model)."""
    folder = root / "reports" / name
    train_candidate(
        folder / "candidate",
        features=features,
        seed=seed,
        target="churned",
        config_hash=settings.config_hash(),
    )
    (folder / "summary.json").write_text(json.dumps({"status": status}))
    return folder


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def production(root: Path) -> None:
        monkeypatch.chdir(root)
        settings = load_checked_settings(Path("config"))
        promote_candidate(_checked(root, "prod", settings, seed=1) / "candidate", settings.registry)

    return make_git_project(
        tmp_path / "project",
        ignore=".model-store/\n.gitops-ml/\nreports/\n",
        message="project with production",
        before_commit=production,
    )


def _store_versions(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".model-store").iterdir() if not p.name.startswith("."))


def _last_commit_files(root: Path) -> list[str]:
    return sorted(_git(root, "show", "--name-only", "--format=", "HEAD").split())


def _propose(root: Path, name: str = "cand", *extra: str, **kw: object) -> int:
    settings = load_checked_settings(Path("config"))
    checked = _checked(root, name, settings, seed=kw.pop("seed", 2), **kw)
    return main(["challenger", "propose", "--from", str(checked), *extra])


def test_propose_publishes_the_artifact_and_commits_only_the_challenger(project: Path, capsys) -> None:
    assert (
        _propose(
            project,
            "cand",
            "--mode",
            "canary",
            "--fraction",
            "0.2",
            "--sticky-field",
            "customer_id",
            "--commit",
        )
        == 0
    )
    challenger = read_challenger(project / CHALLENGER)
    production = read_pointer(project / "deploy/production.yaml")
    assert challenger is not None and production is not None
    assert (challenger.mode, challenger.fraction, challenger.sticky_field) == ("canary", 0.2, "customer_id")
    assert challenger.production_version == production.version != challenger.version
    assert challenger.version in _store_versions(project), "published to the store as promotion does"
    assert Path(challenger.artifact_uri).is_file()
    assert _last_commit_files(project) == ["deploy/challenger.yaml"]
    assert "Propose challenger" in _git(project, "log", "-1", "--format=%s")
    assert "commit:" in capsys.readouterr().out


def test_promote_moves_the_pointer_and_removes_the_challenger_in_one_commit(project: Path) -> None:
    assert _propose(project, "cand", "--commit") == 0
    challenger = read_challenger(project / CHALLENGER)
    assert challenger is not None
    assert main(["challenger", "promote", "--reason", "better for 3 windows", "--commit"]) == 0
    production = read_pointer(project / "deploy/production.yaml")
    assert production is not None and production.version == challenger.version
    assert production.sha256 == challenger.sha256
    history = read_history(project / "deploy/history.yaml")
    assert (history[-1].version, history[-1].reason) == (challenger.version, "better for 3 windows")
    assert not (project / CHALLENGER).exists()
    assert _last_commit_files(project) == [
        "deploy/challenger.yaml",
        "deploy/history.yaml",
        "deploy/production.yaml",
    ]
    assert not _git(project, "status", "--porcelain")


def test_retire_removes_the_challenger_and_leaves_production(project: Path) -> None:
    before = (project / "deploy/production.yaml").read_bytes()
    assert _propose(project, "cand", "--commit") == 0
    assert main(["challenger", "retire", "--reason", "worse", "--commit"]) == 0
    assert not (project / CHALLENGER).exists()
    assert (project / "deploy/production.yaml").read_bytes() == before
    assert _last_commit_files(project) == ["deploy/challenger.yaml"]
    assert main(["challenger", "retire"]) == 0, "nothing to retire is a no-op"


def _untouched(project: Path, head: str, store: list[str]) -> None:
    assert not (project / CHALLENGER).exists(), "nothing half-written"
    assert _git(project, "rev-parse", "HEAD") == head
    assert _store_versions(project) == store, "a refusal publishes nothing"


def test_fraction_outside_the_interval_is_refused_before_anything_is_published(project: Path, capsys) -> None:
    head, store = _git(project, "rev-parse", "HEAD"), _store_versions(project)
    assert _propose(project, "cand", "--mode", "canary", "--fraction", "1.5", "--commit") == 2
    assert "fraction" in capsys.readouterr().err
    _untouched(project, head, store)


def test_a_breaking_contract_difference_is_refused(project: Path, capsys) -> None:
    head, store = _git(project, "rev-parse", "HEAD"), _store_versions(project)
    assert _propose(project, "cand", "--commit", features=("a", "b", "tenure")) == 2
    err = capsys.readouterr().err
    assert "breaking" in err and "'tenure'" in err
    _untouched(project, head, store)


def test_the_production_version_is_refused(project: Path, capsys) -> None:
    head, store = _git(project, "rev-parse", "HEAD"), _store_versions(project)
    assert _propose(project, "again", "--commit", seed=1) == 2
    assert "is the production version" in capsys.readouterr().err
    _untouched(project, head, store)


def test_a_failed_verdict_is_refused_as_a_verdict(project: Path, capsys) -> None:
    head, store = _git(project, "rev-parse", "HEAD"), _store_versions(project)
    assert _propose(project, "cand", "--commit", status="fail") == 1
    assert "not 'pass'" in capsys.readouterr().err
    _untouched(project, head, store)


def test_a_tampered_challenger_is_not_promoted(project: Path, capsys) -> None:
    assert _propose(project, "cand", "--commit") == 0
    challenger = read_challenger(project / CHALLENGER)
    assert challenger is not None
    pointer_before = (project / "deploy/production.yaml").read_bytes()
    stored = Path(challenger.artifact_uri)
    stored.write_bytes(stored.read_bytes() + b"x")
    head = _git(project, "rev-parse", "HEAD")
    assert main(["challenger", "promote", "--commit"]) == 2
    assert "sha256 mismatch" in capsys.readouterr().err
    assert (project / "deploy/production.yaml").read_bytes() == pointer_before
    assert (project / CHALLENGER).exists() and _git(project, "rev-parse", "HEAD") == head


def test_a_second_challenger_while_one_runs_is_refused(project: Path, capsys) -> None:
    assert _propose(project, "cand", "--commit") == 0
    before = (project / CHALLENGER).read_bytes()
    assert _propose(project, "other", "--commit", seed=3) == 2
    assert "still running" in capsys.readouterr().err
    assert (project / CHALLENGER).read_bytes() == before


def test_show_and_a_bad_mode(project: Path, capsys) -> None:
    assert main(["challenger", "show"]) == 0
    assert "no challenger" in capsys.readouterr().out
    assert _propose(project, "cand", "--mode", "mirror") == 2
    assert "--mode" in capsys.readouterr().err


def test_an_unknown_policy_metric_is_refused_naming_its_key_path(project: Path) -> None:
    assert _propose(project, "cand") == 0
    path = project / CHALLENGER
    challenger = read_challenger(path)
    assert challenger is not None
    write_challenger(
        path, challenger.model_copy(update={"policy": challenger.policy.model_copy(update={"metric": "auc"})})
    )
    settings = load_checked_settings(Path("config"))
    production = load_production(settings.registry, project / ".gitops-ml" / "cache")
    assert production is not None
    with pytest.raises(GitopsMLError, match=r"policy\.metric: 'auc' is not a binary metric"):
        judge_challenger(
            settings, f"sqlite:///{project / 'p.db'}", production, datetime.now(UTC), window="1D"
        )


def _judged(challenger: str, production: str) -> ChallengerDecision:
    return ChallengerDecision("promote", challenger, production, [], ["better for 3 windows"], 3)


def test_a_judged_promotion_writes_the_pointer_from_the_challenger_file_without_its_artifact(
    project: Path,
) -> None:
    """The trusted job's promotion: the artifacts are gone and it is still written, the same change
    as `challenger promote` (pointer from the challenger's fields, history entry, file removed)."""
    import hashlib
    import shutil

    from gitops_ml.jobs.challenger import promote_judged

    assert _propose(project, "cand", "--commit") == 0
    challenger = read_challenger(project / CHALLENGER)
    production = read_pointer(project / "deploy/production.yaml")
    assert challenger is not None and production is not None
    judged_sha = hashlib.sha256((project / CHALLENGER).read_bytes()).hexdigest()
    shutil.rmtree(project / ".model-store")
    settings = load_checked_settings(Path("config"))
    outcome = promote_judged(
        settings, _judged(challenger.version, production.version), pointer_sha256=judged_sha
    )
    assert (outcome.action, outcome.version, outcome.production_version) == (
        "promoted",
        challenger.version,
        production.version,
    )
    promoted = read_pointer(project / "deploy/production.yaml")
    assert promoted is not None
    assert promoted.model_dump(exclude={"promoted_at"}) == challenger.as_pointer().model_dump(
        exclude={"promoted_at"}
    )
    assert read_history(project / "deploy/history.yaml")[-1].version == challenger.version
    assert not (project / CHALLENGER).exists()


@pytest.mark.parametrize("who", ["challenger", "production", "sha256"])
def test_a_judged_promotion_of_what_deploy_does_not_hold_is_refused_and_writes_nothing(
    project: Path, who: str
) -> None:
    import hashlib

    from gitops_ml.jobs.challenger import promote_judged

    assert _propose(project, "cand", "--commit") == 0
    challenger = read_challenger(project / CHALLENGER)
    production = read_pointer(project / "deploy/production.yaml")
    assert challenger is not None and production is not None
    judged = {
        "challenger": challenger.version if who != "challenger" else "v-other",
        "production": production.version if who != "production" else "v-older",
    }
    sha = hashlib.sha256((project / CHALLENGER).read_bytes()).hexdigest() if who != "sha256" else "0" * 64
    before = {
        p: (project / p).read_bytes() for p in ("deploy/production.yaml", "deploy/history.yaml", CHALLENGER)
    }
    with pytest.raises(GitopsMLError) as info:
        promote_judged(
            load_checked_settings(Path("config")),
            _judged(judged["challenger"], judged["production"]),
            pointer_sha256=sha,
        )
    needle = {
        "challenger": "the monitor judged challenger 'v-other'",
        "production": "the monitor judged production 'v-older'",
        "sha256": "is not the judged file's 000000000000",
    }[who]
    assert needle in str(info.value) and "nothing promoted" in str(info.value)
    assert {p: (project / p).read_bytes() for p in before} == before, "nothing written"
