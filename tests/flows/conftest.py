"""A small, real gitops-ml repository in a temp folder: config, contract, generated data, git."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import chdir
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from gitops_ml.cli import main
from tests.fixtures.git import GIT_IDENTITY, git
from tests.fixtures.projects import CHURN

REPO_ROOT = Path(__file__).resolve().parents[2]


def update_config(root: Path, section: str, changes: dict) -> None:
    """Deep-merge `changes` into config/<section>.yaml (None deletes a key)."""
    path = root / "config" / f"{section}.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else {}

    def merge(into: dict, new: dict) -> None:
        for key, value in new.items():
            if value is None:
                into.pop(key, None)
            elif isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(data, changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def make_mini_repo(root: Path, *, months: int = 4, rows: int = 700, seed: int = 7) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(CHURN / "config", root / "config")
    shutil.copytree(CHURN / "data_contracts", root / "data_contracts")
    (root / ".gitignore").write_text("reports/\n.model-store/\n*.db\n*.db-*\n")
    assert (
        main(
            [
                "data",
                "generate",
                "--out",
                str(root / "data"),
                "--months",
                str(months),
                "--rows",
                str(rows),
                "--seed",
                str(seed),
            ]
        )
        == 0
    )
    # small and fast: fewer boosting rounds, bootstrap resamples and deepchecks rows
    update_config(root, "estimator", {"params": {"max_iter": 60}})
    update_config(
        root,
        "evaluation",
        {"bootstrap": {"n_resamples": 200}, "min_segment_size": 30, "deepchecks": {"sample_size": 1000}},
    )
    # the flow tests run without deepchecks (`--no-deepchecks`, for speed): a blocking check that
    # did not run fails the gate, so this fixture repository waives that gate explicitly
    update_config(root, "gates", {"fail_on_blocking_deepchecks": False})
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(root)], check=True)
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "initial")
    return root


@pytest.fixture
def mini_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness) -> Path:
    """Paths in config are relative to the repository root, like in a real checkout: chdir there."""
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)
    root = make_mini_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def make_challenger_repo(root: Path, *, months: int = 2, rows: int = 400) -> Path:
    """A mini repository with production promoted and a second candidate proposed as its shadow
    challenger, each step a commit: what the monitor judges champion vs challenger on.

    Gates are waived (the two models are alike: the loop, not the model, is under test); the
    challenger differs by its boosting rounds, committed before its check so its config hash is
    this checkout's. Needs the Prefect harness (the PR checks are flows)."""
    make_mini_repo(root, months=months, rows=rows)
    update_config(
        root,
        "gates",
        {"minimums": {}, "maximums": {}, "max_regression": {}, "max_segment_regression": None},
    )
    with chdir(root):
        git(root, "commit", "-qam", "gates waived for the fixture")
        assert main(["promote", "--no-deepchecks", "--commit"]) == 0
        update_config(root, "estimator", {"params": {"max_iter": 30}})
        git(root, "commit", "-qam", "the challenger's config")
        assert main(["pr-check", "--no-deepchecks", "--out", "reports/pr-challenger"]) == 0
        assert main(["challenger", "propose", "--from", "reports/pr-challenger", "--commit"]) == 0
    return root


def log_better_windows(root: Path, store_url: str, *, days: int = 3, rows: int = 300) -> tuple[datetime, str]:
    """`days` one-day windows in which the challenger in `root`'s deploy/ is truly better, ending at
    the returned time (after the challenger started), logged with the dataset's generated inputs;
    returns (end, the challenger's version)."""
    from gitops_ml.config import load_settings
    from gitops_ml.data.generator import generate_records
    from gitops_ml.jobs.challenger import load_deployed
    from gitops_ml.jobs.challenger_scenario import log_scenario_window
    from gitops_ml.prediction_store import PredictionStore

    settings = load_settings(root / "config")
    with chdir(root):
        challenger, production, _ = load_deployed(settings, root / ".cache", missing="none")
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days, minutes=1)
    records = generate_records(days * rows, seed=3, start_time=end - timedelta(days=days), end_time=end)
    store = PredictionStore(store_url)
    try:
        for k in range(days):
            log_scenario_window(
                store,
                settings,
                "challenger-better",
                index=k,
                start=end - timedelta(days=days - k),
                end=end - timedelta(days=days - k - 1),
                versions=(production.version, challenger.version),
                classes=list(production.pipeline.classes_),
                rows=rows,
                inputs=records[settings.features.all],
            )
    finally:
        store.dispose()
    return end, challenger.version
