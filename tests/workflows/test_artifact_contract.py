"""pr.yml uploads exactly the artifact pr-report.yml reads: both take it from gitops_ml.ci_artifacts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gitops_ml import ci_artifacts as ca
from tests.workflows.conftest import Step, steps_of
from tests.workflows.test_cli_invocations import extract_invocations

OUTPUT_REF = re.compile(r"^\$\{\{\s*steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)\s*\}\}$")


def _job_steps(workflows: dict[str, Any], workflow: str, job: str) -> list[Step]:
    return [s for s in steps_of(workflows, workflow) if s.job == job]


def _layout_step(steps: list[Step]) -> Step:
    matches = [
        s
        for s in steps
        if s.run and re.fullmatch(r'\S*gitops-ml ci artifact-paths >> "\$GITHUB_OUTPUT"', s.run.strip())
    ]
    assert len(matches) == 1, "one step must write `gitops-ml ci artifact-paths` to $GITHUB_OUTPUT"
    assert matches[0].data.get("id"), f"{matches[0].where}: needs an id"
    return matches[0]


def _output(value: str, layout_id: str) -> str:
    """The layout key a `${{ steps.<layout>.outputs.<key> }}` expression names."""
    m = OUTPUT_REF.match(str(value).strip())
    assert m and m.group(1) == layout_id, f"{value!r}: expected ${{{{ steps.{layout_id}.outputs.<key> }}}}"
    return m.group(2)


def _index(steps: list[Step], pred) -> int:
    found = [i for i, s in enumerate(steps) if pred(s)]
    assert len(found) == 1, f"expected exactly one such step, found {len(found)}"
    return found[0]


def test_every_layout_output_used_exists(workflows) -> None:
    keys = set(ca.layout())
    for name in ("pr.yml", "pr-report.yml"):
        text = repr(workflows[name])
        layout_id = _layout_step(list(steps_of(workflows, name))).data["id"]
        for m in re.finditer(rf"steps\.{re.escape(layout_id)}\.outputs\.([A-Za-z0-9_-]+)", text):
            assert m.group(1) in keys, f"{name}: output {m.group(1)!r} is not in ci_artifacts.layout()"


def test_pr_yml_stages_and_uploads_the_layout(workflows) -> None:
    steps = _job_steps(workflows, "pr.yml", "pr-check")
    layout_id = _layout_step(steps).data["id"]
    check = _index(steps, lambda s: s.run and "gitops-ml pr-check" in s.run)
    stage = _index(steps, lambda s: s.run and "gitops-ml ci stage-artifact" in s.run)
    upload = _index(steps, lambda s: (s.uses or "").startswith("actions/upload-artifact@"))
    assert check < stage < upload

    (pr_check,) = extract_invocations(steps[check].run, "pr-check")
    assert "--out" not in pr_check.args, "pr-check must write to ci_artifacts.REPORT_DIR (its default)"
    (staging,) = extract_invocations(steps[stage].run, "stage")
    assert "--from" not in staging.args and "--to" not in staging.args, (
        "stage-artifact must use ci_artifacts' REPORT_DIR and STAGING_DIR (the defaults)"
    )
    for flag, env_name in (("--pr-number", "PR_NUMBER"), ("--head-sha", "HEAD_SHA")):
        assert staging.args[staging.args.index(flag) + 1] == f"${env_name}"
    env = steps[stage].data["env"]
    assert env["PR_NUMBER"] == "${{ github.event.pull_request.number }}"
    assert env["HEAD_SHA"] == "${{ github.event.pull_request.head.sha }}"

    with_ = steps[upload].data["with"]
    assert _output(with_["name"], layout_id) == "name"
    assert _output(with_["path"], layout_id) == "dir"
    assert ca.layout()["dir"] == ca.STAGING_DIR.as_posix()
    # always uploaded, whatever pr-check did; the job fails only afterwards
    for i in (stage, upload):
        assert "always()" in steps[i].data.get("if", ""), f"{steps[i].where}: needs if: always()"
    assert steps[check].data.get("continue-on-error") is True
    final = steps[-1]
    assert final.data.get("if") == f"steps.{steps[check].data['id']}.outcome != 'success'"
    assert "exit 1" in final.run


def test_pr_yml_writes_the_verdict_to_the_step_summary(workflows) -> None:
    steps = _job_steps(workflows, "pr.yml", "pr-check")
    layout_id = _layout_step(steps).data["id"]
    i = _index(steps, lambda s: s.run and "$GITHUB_STEP_SUMMARY" in s.run)
    (inv,) = extract_invocations(steps[i].run, "summary")
    assert inv.args[:2] == ("ci", "comment")
    assert _output(steps[i].data["env"][inv.args[2].lstrip("$")], layout_id) == "dir"


def test_pr_report_reads_the_same_artifact(workflows) -> None:
    (job,) = workflows["pr-report.yml"]["jobs"]
    steps = _job_steps(workflows, "pr-report.yml", job)
    layout_id = _layout_step(steps).data["id"]
    install = _index(steps, lambda s: s.run == "make install")
    cml = _index(steps, lambda s: s.run and s.run.startswith("npm ci --prefix .github/cml "))
    download = _index(steps, lambda s: (s.uses or "").startswith("actions/download-artifact@"))
    number = _index(steps, lambda s: s.run and "gitops-ml ci pr-number" in s.run)
    build = _index(steps, lambda s: s.run and "gitops-ml ci comment" in s.run)
    post = _index(steps, lambda s: s.run and "gitops-ml ci post-comment" in s.run)
    # the venv and CML exist before anything from the PR lands on disk
    assert install < cml < _layout_step(steps).index < download < number < build < post
    assert "--ignore-scripts" in steps[cml].run
    # a run that failed before staging has no artifact: the comment must still say so
    assert steps[download].data.get("continue-on-error") is True

    with_ = steps[download].data["with"]
    assert _output(with_["name"], layout_id) == "name"
    assert _output(with_["path"], layout_id) == "dir"
    assert with_["run-id"] == "${{ github.event.workflow_run.id }}"
    assert with_["github-token"] == "${{ github.token }}"

    (inv,) = extract_invocations(steps[number].run, "pr-number")
    env = steps[number].data["env"]
    assert _output(env[inv.args[2].lstrip("$")], layout_id) == "dir"
    assert (
        env[inv.args[inv.args.index("--head-sha") + 1].lstrip("$")]
        == "${{ github.event.workflow_run.head_sha }}"
    )

    (inv,) = extract_invocations(steps[build].run, "comment")
    env = steps[build].data["env"]
    assert _output(env[inv.args[2].lstrip("$")], layout_id) == "dir"
    assert _output(env[inv.args[inv.args.index("--out") + 1].lstrip("$")], layout_id) == "comment"
    # the header's facts come from GitHub's event, never from the artifact
    assert (
        env[inv.args[inv.args.index("--conclusion") + 1].lstrip("$")]
        == "${{ github.event.workflow_run.conclusion }}"
    )
    assert (
        env[inv.args[inv.args.index("--run-url") + 1].lstrip("$")]
        == "${{ github.event.workflow_run.html_url }}"
    )

    (inv,) = extract_invocations(steps[post].run, "post")
    env = steps[post].data["env"]
    assert "\n" not in steps[post].run.strip()
    assert inv.args[inv.args.index("--cml") + 1] == ".github/cml/node_modules/.bin/cml"
    assert env["PR_NUMBER"] == f"${{{{ steps.{steps[number].data['id']}.outputs.number }}}}"
    assert _output(env[inv.args[2].lstrip("$")], layout_id) == "comment"
    assert env["REPO_TOKEN"] == "${{ github.token }}"


def test_cml_is_locked_at_the_pinned_version() -> None:
    import json

    from tests.workflows.conftest import REPO_ROOT

    folder = REPO_ROOT / ".github" / "cml"
    package = json.loads((folder / "package.json").read_text())
    lock = json.loads((folder / "package-lock.json").read_text())
    assert package["dependencies"] == {"@dvcorg/cml": "0.20.6"}
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    assert lock["packages"]["node_modules/@dvcorg/cml"]["version"] == "0.20.6"
    others = {k: v for k, v in lock["packages"].items() if k not in ("", "node_modules/@dvcorg/cml")}
    assert others and all(v.get("integrity", "").startswith("sha512-") for v in others.values())


def test_pr_report_follows_pr_yml_and_never_runs_pr_code(workflows) -> None:
    trigger = workflows["pr-report.yml"]["on"]["workflow_run"]
    assert trigger["workflows"] == [workflows["pr.yml"]["name"]]
    assert trigger["types"] == ["completed"]
    ((_job_name, job),) = workflows["pr-report.yml"]["jobs"].items()
    assert "workflow_run.event == 'pull_request'" in job["if"]
    assert "conclusion != 'cancelled'" in job["if"]  # failed runs report too
    for step in steps_of(workflows, "pr-report.yml"):
        if (step.uses or "").startswith("actions/checkout@"):
            assert "ref" not in step.data.get("with", {}), "checkout must stay on the default branch"
            assert "repository" not in step.data.get("with", {})
    assert job["permissions"] == {"actions": "read", "contents": "read", "pull-requests": "write"}


def test_cli_prints_the_layout(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from gitops_ml.cli import ci_cmd

    app = typer.Typer()
    ci_cmd.register(app)
    app(args=["ci", "artifact-paths"], standalone_mode=False)
    printed = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert printed == ca.layout()
    assert {"name", "dir", "report", "pr_info", "comment", "watermark"} <= set(printed)
