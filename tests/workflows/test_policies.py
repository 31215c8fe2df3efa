"""House rules for the workflows that the linters do not check (the CI design in docs/github-setup.md)."""

from __future__ import annotations

import re
from typing import Any

from gitops_ml.ci_artifacts import CANARY_PACKAGES
from tests.workflows.conftest import WORKFLOWS_DIR, credential_fill, steps_of

# verified release commits (each sha checked against the action's release tag): uses -> (sha, version in the comment)
PINNED = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "actions/cache": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
    "astral-sh/setup-uv": ("20cfd1bf945f4377ade1205e4dbc17946fc9a30d", "v10.0.1"),
}
EXPECTED = {"pr.yml", "pr-report.yml", "deploy.yml", "monitor.yml", "canary.yml", "ci.yml"}
PUSHES = {("deploy.yml", "publish")}  # the only job that pushes commits


def test_the_six_workflows_exist(workflows) -> None:
    assert set(workflows) == EXPECTED


def test_actions_pinned_by_verified_sha_with_version_comment() -> None:
    for path in WORKFLOWS_DIR.glob("*.yml"):
        for line in path.read_text().splitlines():
            m = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+?)@(\S+)\s*(?:#\s*(\S+))?\s*$", line)
            if not m:
                assert "uses:" not in line.split("#")[0], f"{path.name}: unparsed uses line {line!r}"
                continue
            action, ref, comment = m.groups()
            assert action in PINNED, f"{path.name}: {action} is not among the verified actions"
            assert (ref, comment) == PINNED[action], f"{path.name}: {line.strip()} != {PINNED[action]}"


def test_least_privilege_permissions(workflows) -> None:
    for name, wf in workflows.items():
        assert wf.get("permissions") == {}, f"{name}: workflow-level `permissions: {{}}` (jobs opt in)"
        for job_name, job in wf["jobs"].items():
            perms = job.get("permissions")
            assert isinstance(perms, dict) and perms, f"{name}/{job_name}: explicit job permissions"
            writes = {k for k, v in perms.items() if v == "write"}
            allowed = {
                ("deploy.yml", "publish"): {"contents"},
                ("pr-report.yml", "comment"): {"pull-requests"},
                # runs no project code: commits the tested lock files and opens the PR
                ("canary.yml", "propose"): {"contents", "pull-requests"},
            }
            assert writes <= allowed.get((name, job_name), set()), f"{name}/{job_name}: writes {writes}"


def test_no_expression_inside_run_scripts(workflows) -> None:
    for step in steps_of(workflows):
        if step.run:
            assert "${{" not in step.run, f"{step.where}: pass values through env:, not ${{{{ }}}} in run:"


def test_checkout_never_persists_credentials(workflows) -> None:
    for step in steps_of(workflows):
        if (step.uses or "").startswith("actions/checkout@"):
            assert step.data.get("with", {}).get("persist-credentials") is False, step.where


def test_pr_workflow_has_no_secrets_and_a_read_only_token(workflows) -> None:
    assert "secrets." not in repr(workflows["pr.yml"])
    for job in workflows["pr.yml"]["jobs"].values():
        assert job["permissions"] == {"contents": "read"}


def test_concurrency_groups(workflows) -> None:
    for name, wf in workflows.items():
        assert "group" in wf.get("concurrency", {}), f"{name}: concurrency group"
    assert workflows["deploy.yml"]["concurrency"] == {
        "group": "deploy-production",
        "cancel-in-progress": False,
    }
    assert workflows["monitor.yml"]["concurrency"]["cancel-in-progress"] is False


def _paths(wf: dict[str, Any], event: str) -> list[str]:
    return wf["on"][event]["paths"]


def test_trigger_paths(workflows) -> None:
    pr_paths = _paths(workflows["pr.yml"], "pull_request")
    for needed in (
        "config/**",
        "data/**",
        "data_contracts/**",
        "src/**",
        "flows/**",
        "prefect.yaml",
        "pyproject.toml",
        "deploy/**",
    ):
        assert needed in pr_paths
    deploy = workflows["deploy.yml"]
    assert deploy["on"]["push"]["branches"] == ["main"]
    # the pointer commit touches deploy/** only: it must not deploy again
    assert _paths(deploy, "push") == [p for p in pr_paths if p != "deploy/**"]
    assert workflows["ci.yml"]["on"]["push"]["branches-ignore"] == ["main"]


def test_a_merged_challenger_is_handled_like_a_merged_pointer(workflows) -> None:
    """deploy/challenger.yaml (propose / promote / retire PRs) is checked by pr.yml, never re-deployed:
    like a rollback, the serving app follows the merged file; the publish push may carry it."""
    from fnmatch import fnmatch

    pr_paths = _paths(workflows["pr.yml"], "pull_request")
    deploy_paths = _paths(workflows["deploy.yml"], "push")
    for changed in ("deploy/challenger.yaml", "deploy/production.yaml", "deploy/history.yaml"):
        assert any(fnmatch(changed, p) for p in pr_paths), changed
        assert not any(fnmatch(changed, p) for p in deploy_paths), changed
    push = next(s for s in steps_of(workflows, "deploy.yml") if s.run and "git_safe push" in s.run)
    assert "grep -Ev '^deploy/" in push.run  # the guard: the pushed commit touches deploy/ only


def _job_steps(workflows, workflow: str, job: str) -> list:
    return [s for s in steps_of(workflows, workflow) if s.job == job]


def test_deploy_is_split_by_trust(workflows) -> None:
    jobs = workflows["deploy.yml"]["jobs"]
    assert set(jobs) == {"check", "publish", "prefect"}
    check, publish, prefect = jobs["check"], jobs["publish"], jobs["prefect"]
    assert "[skip ci]" in check["if"] and "refs/heads/main" in check["if"]
    # the job that runs project code: read-only, no secrets, no environment
    assert check["permissions"] == {"contents": "read"} and "environment" not in check
    assert "secrets." not in repr(check)
    runs = "\n".join(s.run or "" for s in _job_steps(workflows, "deploy.yml", "check"))
    assert "gitops-ml promote --check-only" in runs
    # the privileged jobs: their own fresh checkout of the event's commit and a locked install
    assert publish["needs"] == "check" and prefect["needs"] == "publish"
    for name in ("publish", "prefect"):
        job = jobs[name]
        assert job["environment"] == "production"
        steps = _job_steps(workflows, "deploy.yml", name)
        checkout = next(s for s in steps if (s.uses or "").startswith("actions/checkout@"))
        assert checkout.data["with"]["ref"] == "${{ github.sha }}", "never a ref another job could write"
        assert any(s.run == "make install" for s in steps)
    assert prefect["permissions"] == {"contents": "read"}
    steps = _job_steps(workflows, "deploy.yml", "publish")
    install = next(i for i, s in enumerate(steps) if s.run == "make install")
    download = next(i for i, s in enumerate(steps) if (s.uses or "").startswith("actions/download-artifact@"))
    verify = next(i for i, s in enumerate(steps) if s.run and "gitops-ml promote --checked" in s.run)
    push = next(i for i, s in enumerate(steps) if s.run and "git_safe push" in s.run)
    assert install < download < verify < push
    assert steps[download].data["with"]["path"].startswith("${{ runner.temp }}"), (
        "the artifact lands outside the checkout"
    )
    assert '--expect-commit "$GITHUB_SHA"' in steps[verify].run
    assert steps[push].data["env"]["PUSH_TOKEN"] == "${{ secrets.DEPLOY_TOKEN || github.token }}"
    assert "PUSH_TOKEN" not in steps[push].run, "the token reaches git only through the credential helper"
    assert "core.hooksPath=/dev/null" in steps[push].run
    prefect_step = next(
        s
        for s in _job_steps(workflows, "deploy.yml", "prefect")
        if s.run and "prefect --no-prompt deploy" in s.run
    )
    assert prefect_step.data["env"]["PREFECT_API_URL"] == "${{ secrets.PREFECT_API_URL }}"
    assert 'if [ -z "$PREFECT_API_URL" ]' in prefect_step.run
    assert "PREFECT_API" not in repr([s.data for s in steps]), "Prefect secrets stay out of the publish job"


def test_privileged_jobs_install_from_the_lockfile_without_caches(workflows) -> None:
    """A job holding a secret or a write token installs with `make install` (uv.lock) and reads no cache."""
    for name, wf in workflows.items():
        for job_name, job in wf["jobs"].items():
            perms = job.get("permissions") or {}
            privileged = "environment" in job or "write" in perms.values()
            if not privileged:
                continue
            steps = [s for s in steps_of(workflows, name) if s.job == job_name]
            runs_project = any(".venv/bin/" in (s.run or "") for s in steps)
            if runs_project:
                assert any(s.run == "make install" for s in steps), f"{name}/{job_name}: make install"
            for step in steps:
                assert "cache" not in (step.data.get("with") or {}), f"{step.where}: no dependency cache"
                assert not (step.uses or "").startswith("actions/cache@"), step.where
                assert "npx" not in (step.run or ""), f"{step.where}: npm ci from a lockfile, not npx"


def test_deploy_push_credential_helper_gives_git_the_token(workflows, tmp_path) -> None:
    """The env block of the push step, run for real: git's credential lookup answers with $PUSH_TOKEN."""
    push = next(s for s in steps_of(workflows, "deploy.yml") if s.run and "git_safe push" in s.run)
    answer = credential_fill(push.data, "PUSH_TOKEN", "tok-123", tmp_path)
    assert "username=x-access-token" in answer and "password=tok-123" in answer


def test_monitor_job(workflows) -> None:
    wf = workflows["monitor.yml"]
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    assert re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", wf["on"]["schedule"][0]["cron"])
    step = next(s for s in steps_of(workflows, "monitor.yml") if s.run and "gitops-ml monitor" in s.run)
    # the trust split itself: tests/workflows/test_monitor_split.py
    assert step.data["env"] == {
        "PREDICTION_STORE_URL": "${{ secrets.PREDICTION_STORE_URL }}",
        "GITHUB_TOKEN": "${{ github.token }}",
    }
    assert '--store-url "$PREDICTION_STORE_URL"' in step.run


def test_canary_matrix_tries_each_pin_and_all_together(workflows) -> None:
    job = workflows["canary.yml"]["jobs"]["pins"]
    upgrades = job["strategy"]["matrix"]["upgrade"]
    assert set(CANARY_PACKAGES) <= set(upgrades)
    assert set(CANARY_PACKAGES) in [set(u.split()) for u in upgrades]
    assert job["strategy"]["fail-fast"] is False
    runs = "\n".join(s.run or "" for s in steps_of(workflows, "canary.yml"))
    assert "gitops-ml ci pin-report" in runs and "$GITHUB_STEP_SUMMARY" in runs
    assert "uv lock --upgrade" in runs  # the lock job proposes lock updates
    assert "deepchecks>0.19.1" in runs and "numpy>=2" in runs  # and watches for a numpy-2 deepchecks
