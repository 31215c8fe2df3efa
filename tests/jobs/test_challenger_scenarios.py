"""Challenger scenarios, window after window: requests logged as serving logs them (production answers,
the challenger scores in the shadow), labels arriving, the monitor's decision and its ONE pull request
on a fake GitHub with a real bare remote.

- truly better: the promote PR opens within the policy's windows, later windows update it (no second PR);
- equal: no PR in 20 windows.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from gitops_ml.jobs.challenger import judge_challenger, open_decision_pr, propose_challenger
from gitops_ml.jobs.config_check import load_checked_settings
from gitops_ml.monitoring.challenger import render_challenger_section
from gitops_ml.prediction_store import PredictionStore
from gitops_ml.registry.challenger import read_challenger
from gitops_ml.registry.production import load_production
from gitops_ml.registry.promote import promote_candidate
from tests.fixtures.projects import make_config_project
from tests.forge.fake_github import FakeGitHub
from tests.jobs.test_challenger import _checked

TOKEN = "ghp_scenarioTOKEN0123456789abcdef"
REPOSITORY = "acme/churn"
ROWS_PER_WINDOW = 400


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GITHUB_TOKEN", "GH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    root = make_config_project(tmp_path / "project")
    forge = root / "config" / "forge.yaml"
    forge.write_text(yaml.safe_dump({"repository": REPOSITORY}))
    monkeypatch.chdir(root)
    remote = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "test@example.com")
    _git(root, "config", "user.name", "test")
    _git(root, "remote", "add", "origin", str(remote))
    (root / ".gitignore").write_text(".model-store/\n.gitops-ml/\nreports/\n*.db\n")
    settings = load_checked_settings(Path("config"))
    promote_candidate(_checked(root, "prod", settings, seed=1) / "candidate", settings.registry)
    propose_challenger(settings, _checked(root, "chal", settings, seed=2))
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "production and its challenger")
    _git(root, "push", "-q", "origin", "main")
    return root


def _log_window(
    store: PredictionStore, start: datetime, k: int, better: bool, versions: tuple[str, str]
) -> None:
    """One day of requests: P(churn) from a latent signal; production sees it blurred, the challenger
    (truly better) sees it sharply, or (equal) blurred just as much but independently."""
    rng = np.random.default_rng(1000 + k)
    n = ROWS_PER_WINDOW
    signal = rng.normal(size=n)
    truth = 1 / (1 + np.exp(-2.5 * signal))
    label = (rng.random(n) < truth).astype(int)

    def score(noise: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(2.5 * signal + rng.normal(scale=noise, size=n))))

    prod_score, chal_score = score(1.6), score(0.3 if better else 1.6)
    when = [start + timedelta(days=k, seconds=60 * (i + 1)) for i in range(n)]
    ids = [f"w{k}-r{i}" for i in range(n)]
    store.log_many(
        {
            "request_id": rid,
            "created_at": t,
            "model_version": versions[0],
            "inputs": {"a": float(s)},
            "output": {"score": float(p)},
            "score": float(p),
            "prediction": int(p > 0.5),
        }
        for rid, t, s, p in zip(ids, when, signal, prod_score, strict=True)
    )
    store.log_shadow_many(
        {
            "request_id": rid,
            "role": "challenger",
            "created_at": t,
            "model_version": versions[1],
            "output": {"score": float(p)},
            "score": float(p),
            "prediction": int(p > 0.5),
        }
        for rid, t, p in zip(ids, when, chal_score, strict=True)
    )
    store.add_labels([(rid, int(y)) for rid, y in zip(ids, label, strict=True)])


def _run(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, better: bool, windows: int):
    settings = load_checked_settings(Path("config"))
    production = load_production(settings.registry, tmp_path / "cache")
    assert production is not None
    store_url = f"sqlite:///{tmp_path / 'predictions.db'}"
    store = PredictionStore(store_url)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    decisions, prs = [], []
    with FakeGitHub(
        token=TOKEN, repos=[REPOSITORY], git_remotes={REPOSITORY: tmp_path / "origin.git"}
    ) as github:
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        monkeypatch.setenv("GITHUB_API_URL", github.api_url)
        challenger = read_challenger(project / "deploy" / "challenger.yaml")
        assert challenger is not None
        for k in range(windows):
            _log_window(store, start, k, better, (production.version, challenger.version))
            now = start + timedelta(days=k + 1)
            decision = judge_challenger(settings, store_url, production, now, window="1D")
            assert decision is not None
            decisions.append(decision)
            prs.append(
                open_decision_pr(settings, decision, render_challenger_section(decision), repo_dir=project)
            )
        pulls = github.pulls(REPOSITORY)
        comments = {p["number"]: github.comments(p["number"], REPOSITORY) for p in pulls}
    store.dispose()
    return decisions, prs, pulls, comments


def test_a_truly_better_challenger_gets_one_promote_pr_within_the_policy_windows(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decisions, prs, pulls, comments = _run(project, tmp_path, monkeypatch, better=True, windows=5)
    required = decisions[0].required_windows
    assert required == 3
    first = next(i for i, d in enumerate(decisions) if d.action == "promote")
    assert first <= required - 1, [d.action for d in decisions]
    assert all(d.action == "keep collecting" for d in decisions[:first])
    assert [p.action for p in prs if p is not None][:2] == ["opened", "updated"]
    assert len(pulls) == 1, "updated, never duplicated"
    pr = pulls[0]
    assert pr["head"]["ref"].startswith("challenger/promote-")
    assert "challenger-promote" in {label["name"] for label in pr["labels"]}
    assert "better than production in 3 consecutive window(s)" in pr["body"]
    assert len(comments[pr["number"]]) == len(decisions) - first - 1
    # the PR's change is the promotion: pointer + history, the challenger file gone
    branch = pr["head"]["ref"]
    remote = tmp_path / "origin.git"
    changed = sorted(_git(remote, "diff", "--name-only", "main", branch).split())
    assert changed == ["deploy/challenger.yaml", "deploy/history.yaml", "deploy/production.yaml"]
    pointer = yaml.safe_load(_git(remote, "show", f"{branch}:deploy/production.yaml"))
    assert pointer["version"] == decisions[-1].challenger_version
    assert _git(project, "rev-parse", "--abbrev-ref", "HEAD") == "main", "the work tree goes back to main"
    assert (project / "deploy" / "challenger.yaml").exists()


def test_an_equal_challenger_gets_no_pr_in_20_windows(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decisions, prs, pulls, _ = _run(project, tmp_path, monkeypatch, better=False, windows=20)
    assert [d.action for d in decisions] == ["keep collecting"] * 20
    assert prs == [None] * 20 and pulls == []
    assert any(d.latest is not None and d.latest.note for d in decisions), "the report says why it waits"
