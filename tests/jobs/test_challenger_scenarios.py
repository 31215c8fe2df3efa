"""Challenger scenarios, window after window, through the code `gitops-ml simulate --scenario
challenger-better|challenger-equal` runs (`jobs.challenger_scenario`): requests logged as serving logs
them (production answers, the challenger scores in the shadow), labels arriving, the monitor's decision
and its ONE pull request on a fake GitHub with a real bare remote.

- truly better: the promote PR opens within the policy's windows, later windows update it (no second PR);
- equal: no PR in 20 windows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from gitops_ml.jobs.challenger import propose_challenger
from gitops_ml.jobs.challenger_scenario import run_challenger_scenario
from gitops_ml.jobs.config_check import load_checked_settings
from gitops_ml.registry.promote import promote_candidate
from tests.fixtures.git import git
from tests.fixtures.projects import make_git_project
from tests.forge.fake_github import FakeGitHub
from tests.jobs.test_challenger import _checked

TOKEN = "ghp_scenarioTOKEN0123456789abcdef"
REPOSITORY = "acme/churn"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GITHUB_TOKEN", "GH_TOKEN"):
        monkeypatch.delenv(var, raising=False)

    def production_and_challenger(root: Path) -> None:
        (root / "config" / "forge.yaml").write_text(yaml.safe_dump({"repository": REPOSITORY}))
        monkeypatch.chdir(root)
        settings = load_checked_settings(Path("config"))
        promote_candidate(_checked(root, "prod", settings, seed=1) / "candidate", settings.registry)
        propose_challenger(settings, _checked(root, "chal", settings, seed=2))

    root = make_git_project(
        tmp_path / "project",
        ignore=".model-store/\n.gitops-ml/\nreports/\n*.db\n",
        message="production and its challenger",
        before_commit=production_and_challenger,
    )
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "origin", "main")
    return root


def _run(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str):
    """The scenario as `gitops-ml simulate` runs it, with the PR opened on the fake GitHub."""
    settings = load_checked_settings(Path("config"))
    with FakeGitHub(
        token=TOKEN, repos=[REPOSITORY], git_remotes={REPOSITORY: tmp_path / "origin.git"}
    ) as github:
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        monkeypatch.setenv("GITHUB_API_URL", github.api_url)
        run = run_challenger_scenario(
            settings,
            scenario,
            store_url=f"sqlite:///{tmp_path / 'predictions.db'}",
            window="1D",
            open_pr=True,
            repo_dir=project,
            cache_dir=tmp_path / "cache",
        )
        pulls = github.pulls(REPOSITORY)
        comments = {p["number"]: github.comments(p["number"], REPOSITORY) for p in pulls}
    return run, [w.decision for w in run.windows], [w.pr for w in run.windows], pulls, comments


def test_a_truly_better_challenger_gets_one_promote_pr_within_the_policy_windows(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, decisions, prs, pulls, comments = _run(project, tmp_path, monkeypatch, "challenger-better")
    required = decisions[0].required_windows
    assert required == 3 and len(decisions) == required + 2
    assert run.summary().endswith(
        f"promote PR within {run.first_decided.index} windows "
        f"(decided at window {run.first_decided.index} of 5; the policy needs 3 in a row)"
    )
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
    changed = sorted(git(remote, "diff", "--name-only", "main", branch).split())
    assert changed == ["deploy/challenger.yaml", "deploy/history.yaml", "deploy/production.yaml"]
    pointer = yaml.safe_load(git(remote, "show", f"{branch}:deploy/production.yaml"))
    assert pointer["version"] == decisions[-1].challenger_version
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD") == "main", "the work tree goes back to main"
    assert (project / "deploy" / "challenger.yaml").exists()


def test_an_equal_challenger_gets_no_pr_in_20_windows(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, decisions, prs, pulls, _ = _run(project, tmp_path, monkeypatch, "challenger-equal")
    assert [d.action for d in decisions] == ["keep collecting"] * 20
    assert run.summary().endswith("no PR in 20 windows (every window: keep collecting)")
    assert prs == [None] * 20 and pulls == []
    assert any(d.latest is not None and d.latest.note for d in decisions), "the report says why it waits"


def test_simulate_runs_the_challenger_scenario_for_the_configured_project(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gitops_ml.cli import main

    assert main(["simulate", "--scenario", "challenger-better", "--windows", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("labelled pairs") == 3
    assert "challenger-better: challenger " in out and "promote PR within " in out
    assert "(no PR opened: --open-pr opens it as the monitor does)" in out
    # logged as serving logs it: the production answers with the contract's inputs, shadow scores paired
    from gitops_ml.prediction_store import PredictionStore

    (db,) = (project / "reports/simulate").glob("challenger-better-*.db")
    assert f"store: sqlite:///reports/simulate/{db.name}" in out
    store = PredictionStore(f"sqlite:///{db}")
    try:
        pairs = store.paired(labelled_only=True)
        window = store.window(pairs["created_at"].min(), pairs["created_at"].max() + pd.Timedelta("1s"))
    finally:
        store.dispose()
    assert len(pairs) == 3 * 400
    assert "tenure_months" in window.columns, "the requests carry the dataset's inputs"
    assert git(project, "branch", "--list").split() == ["*", "main"], "no PR branch without --open-pr"


def test_simulate_refuses_an_unknown_scenario_and_a_project_without_challenger(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gitops_ml.cli import main

    assert main(["simulate", "--scenario", "challenger-worse"]) == 2
    err = capsys.readouterr().err
    assert "challenger-worse" in err and "challenger-better, challenger-equal" in err
    (project / "deploy" / "challenger.yaml").unlink()
    assert main(["simulate", "--scenario", "challenger-equal"]) == 2
    err = capsys.readouterr().err
    assert "deploy/challenger.yaml: no challenger for challenger-equal: propose one first" in err


def _logged_window(tmp_path: Path, settings, scenario: str, *, classes: list | None):
    """One scenario window logged into a fresh store and read back as the monitor reads it:
    (the labelled pairs, the (production, challenger) sides, the window's start and end)."""
    from datetime import UTC, datetime, timedelta

    from gitops_ml.jobs.challenger_scenario import log_scenario_window
    from gitops_ml.monitoring.challenger import paired_sides
    from gitops_ml.prediction_store import PredictionStore

    store = PredictionStore(f"sqlite:///{tmp_path / 'store.db'}")
    start = datetime(2026, 6, 1, tzinfo=UTC)
    end = start + timedelta(days=1)
    rows = log_scenario_window(
        store, settings, scenario, index=0, start=start, end=end, versions=("p", "c"), classes=classes
    )
    pairs = store.paired(start, end, challenger_version="c", labelled_only=True)
    store.dispose()
    assert len(pairs) == rows
    sides = paired_sides(settings.dataset.task, pairs, classes=classes, positive_label=None)
    return pairs, list(sides), start, end


def _assert_judged(sides: list, start, end, metric: str, expected: str | None) -> None:
    """One window of logged pairs judged as the monitor judges it: `expected` wins (the metric is
    lower-is-better), or (None) the challenger is not judged better."""
    from gitops_ml.config import BootstrapConfig, GatesConfig
    from gitops_ml.monitoring.challenger import judge_window

    window = judge_window(
        *sides,
        start=start,
        end=end,
        metric=metric,
        min_rows=200,
        min_improvement=0.0,
        power=0.8,
        gates=GatesConfig(),
        bootstrap=BootstrapConfig(n_resamples=300, seed=0),
    )
    if expected is not None:
        assert window.outcome == expected, window.note
        assert window.delta is not None and window.delta < 0
    else:
        assert window.outcome != "better", window


@pytest.mark.parametrize(
    ("scenario", "expected"), [("challenger-better", "better"), ("challenger-equal", None)]
)
def test_a_regression_scenario_window_is_judged_on_the_logged_pairs(
    tmp_path: Path, scenario: str, expected: str | None
) -> None:
    """Regression traffic as the scenario logs it (as serving does: the value is the prediction and
    the score, which the monitor's prediction drift reads), read back paired and judged on rmse:
    the better challenger wins, the equal one does not."""
    from tests.fixtures.models import tiny_settings

    settings = tiny_settings(dataset={"task": "regression"}, evaluation={"primary_metric": "rmse"})
    pairs, sides, start, end = _logged_window(tmp_path, settings, scenario, classes=None)
    assert len(pairs) == 400
    assert pairs["label"].map(type).eq(float).all()
    for role in ("production", "challenger"):
        assert pairs[f"{role}_score"].notna().all()
        assert pairs[f"{role}_score"].tolist() == pairs[f"{role}_prediction"].astype(float).tolist()
    _assert_judged(sides, start, end, "rmse", expected)


@pytest.mark.parametrize(
    ("scenario", "expected"), [("challenger-better", "better"), ("challenger-equal", None)]
)
def test_a_multiclass_scenario_window_is_judged_on_the_logged_probabilities(
    tmp_path: Path, scenario: str, expected: str | None
) -> None:
    """String classes as serving logs them (the served class and every class's probability), read
    back paired and judged on log_loss, a metric that needs the whole probability matrix."""
    from tests.fixtures.models import tiny_settings

    classes = ["bronze", "gold", "silver"]
    settings = tiny_settings(dataset={"task": "multiclass"}, evaluation={"primary_metric": "log_loss"})
    pairs, sides, start, end = _logged_window(tmp_path, settings, scenario, classes=classes)
    assert len(pairs) == 400
    assert set(pairs["label"]) == set(classes)
    assert all(side.y_score is not None and side.y_score.shape == (400, 3) for side in sides)
    _assert_judged(sides, start, end, "log_loss", expected)


def test_a_multiclass_scenario_without_the_model_classes_is_refused_before_anything_is_logged(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime, timedelta

    from gitops_ml.jobs.challenger_scenario import ScenarioError, log_scenario_window
    from gitops_ml.prediction_store import PredictionStore
    from tests.fixtures.models import tiny_settings

    settings = tiny_settings(dataset={"task": "multiclass"}, evaluation={"primary_metric": "accuracy"})
    store = PredictionStore(f"sqlite:///{tmp_path / 's.db'}")
    start = datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(ScenarioError, match=r"needs production's classes \(3 or more\)") as info:
        log_scenario_window(
            store,
            settings,
            "challenger-better",
            index=0,
            start=start,
            end=start + timedelta(days=1),
            versions=("p", "c"),
            classes=["a", "b"],
        )
    assert info.value.exit_code == 2
    assert store.count_predictions() == 0
    store.dispose()
