"""`gitops-ml promote`, `gitops-ml rollback`, `gitops-ml production`: the production pointer."""

from __future__ import annotations

import time
from pathlib import Path

import typer
import yaml

from gitops_ml.cli.options import ConfigDirOption
from gitops_ml.errors import GitopsMLError
from gitops_ml.jobs.config_check import load_checked_settings


def register(app: typer.Typer) -> None:
    @app.command("promote")
    def promote(
        config_dir: Path = ConfigDirOption,
        out_dir: Path = typer.Option(Path("reports/promote"), "--out", help="re-evaluation report folder"),
        commit: bool = typer.Option(False, "--commit", help="commit the pointer change to git"),
        reason: str = typer.Option("merge to main", "--reason", help="recorded in deploy/history.yaml"),
        deepchecks: bool = typer.Option(
            True,
            "--deepchecks/--no-deepchecks",
            help="run the deepchecks suites as the PR check does; without them a "
            "blocking check has not run, which refuses the promotion",
        ),
        check_only: bool = typer.Option(
            False,
            "--check-only",
            help="train and check only (the unprivileged job): report + candidate "
            "in --out, nothing published",
        ),
        checked: Path = typer.Option(
            None,
            "--checked",
            help="publish the candidate a --check-only run left in this folder, after "
            "verifying it (verdict, sha256, skops allow-list, commit, config)",
        ),
        expect_commit: str = typer.Option(
            None, "--expect-commit", help="with --checked: the commit the candidate must come from"
        ),
    ) -> None:
        """Re-evaluate HEAD's candidate vs the CURRENT production; publish and move the pointer if gates pass."""
        started = time.time()
        if check_only and checked is not None:
            raise GitopsMLError("--check-only and --checked are the two halves of a promotion: use one")
        settings = load_checked_settings(config_dir)  # every problem at once, before Prefect starts
        if checked is not None:
            from gitops_ml.jobs.promote import publish_checked

            outcome = publish_checked(
                checked, settings, expect_commit=expect_commit, reason=reason, commit=commit
            )
        elif check_only:
            from flows.promote import promote_check_flow

            check = promote_check_flow(
                config_dir=str(config_dir),
                out_dir=str(out_dir),
                started_at=started,
                run_deepchecks=deepchecks,
            )
            typer.echo(f"candidate checked: {check.status}; report and candidate in {out_dir}")
            return
        else:
            from flows.promote import promote_flow

            outcome = promote_flow(
                config_dir=str(config_dir),
                out_dir=str(out_dir),
                commit=commit,
                reason=reason,
                started_at=started,
                run_deepchecks=deepchecks,
            )
        change = outcome.change
        if not change.changed:
            typer.echo(f"production is already {change.version}: nothing to do")
        else:
            typer.echo(f"promoted {change.version} (previous: {change.previous_version or 'none'})")
            typer.echo(f"artifact: {change.artifact_uri}")
        if outcome.commit:
            typer.echo(f"commit: {outcome.commit}")

    @app.command("rollback")
    def rollback_cmd(
        config_dir: Path = ConfigDirOption,
        to: str = typer.Option(
            None, "--to", help="version to restore (default: the previous one in history)"
        ),
        commit: bool = typer.Option(False, "--commit", help="commit the pointer change to git"),
        reason: str = typer.Option("rollback", "--reason", help="recorded in deploy/history.yaml"),
    ) -> None:
        """Move the production pointer back to an earlier version (a commit: in GitHub, a normal PR)."""
        from gitops_ml.jobs.promote import rollback_production

        settings = load_checked_settings(config_dir)
        outcome = rollback_production(settings, to_version=to, reason=reason, commit=commit)
        change = outcome.change
        if not change.changed:
            typer.echo(f"production is already {change.version}: nothing to do")
            return
        typer.echo(f"rolled back to {change.version} (was {change.previous_version})")
        if commit:
            typer.echo(f"commit: {outcome.commit}")

    @app.command("production")
    def production(config_dir: Path = ConfigDirOption) -> None:
        """Show the production pointer (or that there is none yet)."""
        from gitops_ml.registry.pointer import read_pointer

        settings = load_checked_settings(config_dir)
        pointer = read_pointer(settings.registry.pointer)
        if pointer is None:
            typer.echo(f"no production model yet ({settings.registry.pointer} does not exist)")
            return
        typer.echo(yaml.safe_dump(pointer.model_dump(mode="json"), sort_keys=False).rstrip())
