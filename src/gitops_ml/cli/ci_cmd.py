"""`gitops-ml ci ...`: the small steps the GitHub workflows call, so their logic is tested here.

artifact-paths  the PR artifact's name and paths (both pr.yml and pr-report.yml read them)
stage-artifact  build the artifact folder from pr-check's output (pr.yml, always)
pr-number       print the artifact's validated PR number (pr-report.yml)
comment         the PR comment / step summary, rebuilt from report.md by trusted code
post-comment    post it as the ONE sticky comment that is ours (CML creates; our comment is edited)
pin-report      which pinned dependency could move (nightly canary)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import typer

from gitops_ml import ci_artifacts as ca
from gitops_ml.errors import GitopsMLError

# The login GitHub shows for comments written with a workflow's GITHUB_TOKEN; a GitHub App or
# PAT token posts as its own login (set GITOPS_ML_COMMENT_AUTHOR then).
DEFAULT_COMMENT_AUTHOR = "github-actions[bot]"


def _repo_url(repository: str) -> str:
    """The repository's web URL: GitHub Actions' GITHUB_SERVER_URL, else the checkout's origin."""
    server = os.environ.get("GITHUB_SERVER_URL", "").strip().rstrip("/")
    if server:
        return f"{server}/{repository}"
    proc = subprocess.run(["git", "remote", "get-url", "origin"], capture_output=True, text=True, check=False)
    return (
        proc.stdout.strip()
        if proc.returncode == 0 and proc.stdout.strip()
        else f"https://github.com/{repository}"
    )


def _forge(repository: str | None):
    """A client for the repository's own API host (never one named in the repository's files)."""
    from gitops_ml.forge.github import GitHubForge
    from gitops_ml.forge.github_api import api_url_for
    from gitops_ml.forge.tokens import resolve_token

    if not repository:
        raise ca.CIArtifactError("--repository (or GITHUB_REPOSITORY) is needed to talk to GitHub")
    token = os.environ.get("REPO_TOKEN", "").strip() or resolve_token()
    if not token:
        raise ca.CIArtifactError("no token: set REPO_TOKEN or GITHUB_TOKEN")
    return GitHubForge(repository, token, api_url_for(_repo_url(repository)))


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Helpers for the GitHub workflows (artifact layout, PR comment, pin report).",
        no_args_is_help=True,
    )

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
        head_sha: str = typer.Option(
            None,
            "--head-sha",
            help="the triggering run's head commit: must match pr.json and the PR on GitHub",
        ),
        head_owner: str = typer.Option(
            None, "--head-owner", help="owner of the run's head repository (when the artifact is missing)"
        ),
        head_branch: str = typer.Option(
            None, "--head-branch", help="the run's head branch (when the artifact is missing)"
        ),
        repository: str = typer.Option(
            None, "--repository", envvar="GITHUB_REPOSITORY", help="owner/name, for the check on GitHub"
        ),
    ) -> None:
        """Print the artifact's PR number, validated as an integer (exit 2 if it is not).

        With --head-sha, the number must also name a PR whose current head on GitHub is that
        commit: an artifact cannot steer the comment to another pull request. When the run left
        no pr.json (it failed early), --head-owner/--head-branch find the open PR at --head-sha.
        """
        if not (Path(artifact_dir) / ca.PR_INFO_FILE).exists() and head_sha and head_owner and head_branch:
            number = _forge(repository).find_pr_by_head_sha(head_owner, head_branch, head_sha)
            if number is None:
                raise ca.CIArtifactError(
                    f"no artifact and no open PR from {head_owner}:{head_branch} at {head_sha}"
                )
            typer.echo(str(number))
            return
        info = ca.read_pr_info(artifact_dir)
        if head_sha:
            if info.head_sha is not None and info.head_sha != head_sha:
                raise ca.CIArtifactError(
                    f"{artifact_dir / ca.PR_INFO_FILE}: head_sha {info.head_sha} != the run's head {head_sha}"
                )
            current = _forge(repository).pull_head_sha(info.number)
            if current != head_sha:
                raise ca.CIArtifactError(
                    f"PR #{info.number} of {repository} has head {current}, not the run's head {head_sha}: "
                    "the report is stale or the artifact names another pull request; not posting it"
                )
        typer.echo(str(info.number))

    @group.command("comment")
    def comment(
        artifact_dir: Path = typer.Argument(..., help="folder holding report.md"),
        run_url: str = typer.Option(None, "--run-url", help="link to the run that holds the artifact"),
        out: str = typer.Option("-", "--out", help="file to write, or - for stdout"),
        conclusion: str = typer.Option(
            None, "--conclusion", help="the run's conclusion (from GitHub): adds the trusted header"
        ),
        head_sha: str = typer.Option(None, "--head-sha", help="the PR head commit the run checked"),
        pr_number: str = typer.Option(
            None, "--pr-number", help="with --conclusion: read the PR's changed files for the header"
        ),
        repository: str = typer.Option(None, "--repository", envvar="GITHUB_REPOSITORY", help="owner/name"),
    ) -> None:
        """report.md rebuilt as a PR comment: trusted header, local images become a pointer to the
        artifact, @mentions neutralized; fits 65,536 characters with CML's watermark."""
        from gitops_ml.io_utils import atomic_write_text

        header = conclusion is not None
        changed: bool | None = False
        if header and pr_number:
            number = ca.validate_pr_number(pr_number, "--pr-number")
            try:
                changed = ca.touches_pr_code(_forge(repository).pull_files(number))
            except GitopsMLError as exc:
                typer.echo(f"warning: {exc}", err=True)
                changed = None
        report = ca.read_report(artifact_dir, missing_ok=header)
        text = ca.comment_markdown(
            report,
            run_url=run_url,
            conclusion=conclusion,
            head_sha=head_sha,
            status=ca.read_summary_status(artifact_dir),
            pr_code_changed=changed,
            header=header,
        )
        if out == "-":
            sys.stdout.write(text)
        else:
            atomic_write_text(Path(out), text)
            typer.echo(f"comment: {out} ({len(text)} characters)")

    @group.command("post-comment")
    def post_comment(
        comment_file: Path = typer.Argument(..., help="the comment `gitops-ml ci comment` wrote"),
        pr_number: str = typer.Option(..., "--pr-number", help="the validated PR number"),
        cml: str = typer.Option(..., "--cml", help="the CML command, e.g. .github/cml/node_modules/.bin/cml"),
        sha: str = typer.Option(None, "--sha", envvar="GITHUB_SHA", help="commit for CML's watermark"),
        author: str = typer.Option(
            DEFAULT_COMMENT_AUTHOR,
            "--author",
            envvar="GITOPS_ML_COMMENT_AUTHOR",
            help="login the token posts as; only its comments are ever edited",
        ),
        repository: str = typer.Option(None, "--repository", envvar="GITHUB_REPOSITORY", help="owner/name"),
    ) -> None:
        """Create the sticky comment with CML, or edit OUR earlier one (paginated, author-checked)."""
        number = ca.validate_pr_number(pr_number, "--pr-number")
        forge = _forge(repository)
        posted = ca.post_sticky_comment(
            forge,
            number,
            comment_file,
            author=author,
            sha=sha or "",
            cml=shlex.split(cml),
            repo_url=_repo_url(forge.repository),
        )
        typer.echo(f"{posted.action} the report comment on PR #{number}: {posted.output}")

    @group.command("pin-report")
    def pin_report(
        pyproject: Path = typer.Option(Path("pyproject.toml"), "--pyproject", help="where the pins are"),
        tests_outcome: str = typer.Option(
            None, "--tests-outcome", help="the unit tests' step outcome: success, failure, cancelled, skipped"
        ),
        only: list[str] = typer.Option(None, "--only", help="report only these packages (repeatable)"),
        title: str = typer.Option("Dependency pins", "--title", help="heading of the markdown"),
    ) -> None:
        """Markdown table of pinned dependencies vs installed versions: which pins can move."""
        if tests_outcome not in (None, "", "success", "failure", "cancelled", "skipped"):
            raise ca.CIArtifactError(
                f"--tests-outcome: expected success, failure, cancelled or skipped, got {tests_outcome!r}"
            )
        rows = ca.pin_rows(pyproject, only=only or None)
        typer.echo(ca.render_pin_report(rows, tests_outcome or None, title), nl=False)

    app.add_typer(group, name="ci")
