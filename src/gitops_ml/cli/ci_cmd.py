"""`gitops-ml ci ...`: the small steps the GitHub workflows call, so their logic is tested here.

artifact-paths  the PR artifact's name and paths (both pr.yml and pr-report.yml read them)
stage-artifact  build the artifact folder from pr-check's output (pr.yml, always)
pr-number       print the artifact's validated PR number (pr-report.yml)
comment         the PR comment / step summary, rebuilt from report.md
pin-report      which pinned dependency could move (nightly canary)
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gitops_ml import ci_artifacts as ca


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Helpers for the GitHub workflows (artifact layout, PR comment, pin report).",
                        no_args_is_help=True)

    @group.command("artifact-paths")
    def artifact_paths(
        staging_dir: Path = typer.Option(ca.STAGING_DIR, "--dir", help="folder the artifact is staged in"),
    ) -> None:
        """Print `key=value` lines (name, dir, report, ...) for `>> "$GITHUB_OUTPUT"`."""
        for key, value in ca.layout(staging_dir).items():
            typer.echo(f"{key}={value}")

    @group.command("stage-artifact")
    def stage_artifact(
        pr_number: str = typer.Option(..., "--pr-number", help="the pull request's number"),
        report_dir: Path = typer.Option(ca.REPORT_DIR, "--from", help="pr-check's --out folder"),
        staging_dir: Path = typer.Option(ca.STAGING_DIR, "--to", help="folder to upload as the artifact"),
        head_sha: str = typer.Option(None, "--head-sha", help="the PR's head commit"),
        base_sha: str = typer.Option(None, "--base-sha", help="the PR's base commit"),
    ) -> None:
        """Copy report.md, summary.json, plots/, deepchecks/ and write pr.json (a fallback report if none)."""
        info = ca.PrInfo(ca.validate_pr_number(pr_number, "--pr-number"), head_sha or None, base_sha or None)
        staged = ca.stage_pr_artifact(report_dir, staging_dir, info)
        typer.echo(f"staged {len(staged)} files in {staging_dir}")

    @group.command("pr-number")
    def pr_number(
        artifact_dir: Path = typer.Argument(..., help="the downloaded artifact folder"),
        head_sha: str = typer.Option(None, "--head-sha",
                                     help="the triggering run's head commit: must match pr.json and the PR on GitHub"),
        repository: str = typer.Option(None, "--repository", envvar="GITHUB_REPOSITORY",
                                       help="owner/name, for the check on GitHub"),
    ) -> None:
        """Print the artifact's PR number, validated as an integer (exit 2 if it is not).

        With --head-sha, the number must also name a PR whose current head on GitHub is that
        commit: an artifact cannot steer the comment to another pull request.
        """
        info = ca.read_pr_info(artifact_dir)
        if head_sha:
            if info.head_sha is not None and info.head_sha != head_sha:
                raise ca.CIArtifactError(
                    f"{artifact_dir / ca.PR_INFO_FILE}: head_sha {info.head_sha} != the run's head {head_sha}")
            if not repository:
                raise ca.CIArtifactError("--head-sha needs --repository (or GITHUB_REPOSITORY)")
            from gitops_ml.forge.tokens import resolve_token

            current = ca.pr_head_sha(repository, info.number, resolve_token())
            if current != head_sha:
                raise ca.CIArtifactError(
                    f"PR #{info.number} of {repository} has head {current}, not the run's head {head_sha}: "
                    "the report is stale or the artifact names another pull request; not posting it")
        typer.echo(str(info.number))

    @group.command("comment")
    def comment(
        artifact_dir: Path = typer.Argument(..., help="folder holding report.md"),
        run_url: str = typer.Option(None, "--run-url", help="link to the run that holds the artifact"),
        out: str = typer.Option("-", "--out", help="file to write, or - for stdout"),
    ) -> None:
        """report.md rebuilt as a PR comment: local images become a pointer to the artifact; 65,536 chars max."""
        from gitops_ml.io_utils import atomic_write_text

        text = ca.comment_markdown(ca.read_report(artifact_dir), run_url=run_url)
        if out == "-":
            sys.stdout.write(text)
        else:
            atomic_write_text(Path(out), text)
            typer.echo(f"comment: {out} ({len(text)} characters)")

    @group.command("pin-report")
    def pin_report(
        pyproject: Path = typer.Option(Path("pyproject.toml"), "--pyproject", help="where the pins are"),
        tests_outcome: str = typer.Option(None, "--tests-outcome",
                                          help="the unit tests' step outcome: success, failure, cancelled, skipped"),
        only: list[str] = typer.Option(None, "--only", help="report only these packages (repeatable)"),
        title: str = typer.Option("Dependency pins", "--title", help="heading of the markdown"),
    ) -> None:
        """Markdown table of pinned dependencies vs installed versions: which pins can move."""
        if tests_outcome not in (None, "", "success", "failure", "cancelled", "skipped"):
            raise ca.CIArtifactError(f"--tests-outcome: expected success, failure, cancelled or skipped, "
                                     f"got {tests_outcome!r}")
        rows = ca.pin_rows(pyproject, only=only or None)
        typer.echo(ca.render_pin_report(rows, tests_outcome or None, title), nl=False)

    app.add_typer(group, name="ci")
