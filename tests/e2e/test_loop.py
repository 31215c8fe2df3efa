"""The whole loop, for real: PR check -> promote -> serve -> drifted traffic -> monitor ->
retraining PR on a (fake) GitHub -> PR check on the retraining branch -> promote.

Real Prefect flow runs, a real uvicorn server on loopback, a real SQLite store, real git with a
bare remote. Only GitHub's REST API is the local fake from tests/forge/fake_github.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gitops_ml.demo import run_loop
from tests.fixtures.projects import make_churn_project
from tests.flows.conftest import REPO_ROOT, update_config
from tests.forge.fake_github import FakeGitHub

TOKEN = "ghp_e2eTOKEN0123456789abcdefSECRET"
REPOSITORY = "acme/churn"


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_the_loop_closes_with_one_retraining_pr_updated_in_place(tmp_path, prefect_harness, monkeypatch):
    scratch = tmp_path / "loop"
    # the bundled example's data, regenerated (same options as data/manifest.yaml's description)
    source = make_churn_project(tmp_path / "source", months=6, rows=5000, seed=2026)
    shutil.copy(REPO_ROOT / ".gitignore", source / ".gitignore")
    bare = scratch / "origin.git"
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    with FakeGitHub(token=TOKEN, repos=[REPOSITORY], git_remotes={REPOSITORY: bare}) as github:
        # the first attempt to open the PR fails with a 500: the retry must not leave two PRs
        github.fail_next("POST", r"/repos/acme/churn/pulls$", status=500)

        # the API host comes from the environment, never from config
        monkeypatch.setenv("GITHUB_API_URL", github.api_url)

        def configure(work: Path) -> None:
            update_config(work, "forge", {"repository": REPOSITORY})
            update_config(work, "monitoring", {"cooldown_days": 0})  # let the 2nd bad window update the PR
            # the example's data at a smaller cost per fit and per evaluation (as tests/flows' mini repo):
            # every fit and evaluation of the loop, the first model and the retrained one alike
            update_config(work, "estimator", {"params": {"max_iter": 60}})
            update_config(work, "evaluation", {"bootstrap": {"n_resamples": 200}})

        result = run_loop(
            scratch, source=source, rows=(1000, 3000, 3000, 1500), deepchecks=False, configure=configure
        )
        print(result.summary())
        assert result.ok, result.summary()
        pulls = github.pulls(REPOSITORY)
        comments = github.comments(pulls[0]["number"]) if pulls else []
        creates = github.requests("POST", r"/repos/acme/churn/pulls$")

    assert len(pulls) == 1, pulls
    pr = pulls[0]
    assert pr["head"]["ref"].startswith("retrain/")
    assert [label["name"] for label in pr["labels"]] == ["retraining"]
    assert pr["body"].startswith("## Model monitor: RETRAIN")
    assert "roc_auc" in pr["body"]
    assert len(creates) == 2  # the 500, then the one that worked
    assert len(comments) == 1 and "still decayed" in comments[0]

    # the branch on the remote carries the exported batches and the manifest listing them
    branch = pr["head"]["ref"]
    files = git_out(bare, "ls-tree", "-r", "--name-only", branch).split()
    batches = [f for f in files if f.startswith("data/batches/churn-retrain-")]
    assert len(batches) == 2, files
    manifest = yaml.safe_load(git_out(bare, "show", f"{branch}:data/manifest.yaml"))
    assert {b["uri"] for b in manifest["batches"]} >= {f.removeprefix("data/") for f in batches}
    log = git_out(bare, "log", "--format=%s", branch).splitlines()
    assert sum(line.startswith("Add labelled production window") for line in log) == 2
    # ... and main has it merged (the demo's "merge the PR"), then the promotion commit on top
    main_log = git_out(bare, "log", "--format=%s", "main").splitlines()
    assert main_log[0].startswith("Promote model") and main_log[1].startswith("Merge retraining PR")

    # main moved twice: the first promotion and the retrained model's
    history = yaml.safe_load((scratch / "work/deploy/history.yaml").read_text())
    assert [e["action"] for e in history] == ["promote", "promote"]
