"""`gitops-ml monitor`: one monitoring window; a retraining PR when the policy says so."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gitops_ml.cli.options import ConfigDirOption
from gitops_ml.jobs.config_check import load_checked_settings

if TYPE_CHECKING:
    from gitops_ml.jobs.retrain import RetrainingPr


def register(app: typer.Typer) -> None:
    @app.command("monitor")
    def monitor(
        config_dir: Path = ConfigDirOption,
        out_dir: Path = typer.Option(Path("reports/monitor"), "--out", help="report.md, summary.json, plots"),
        store_url: str = typer.Option(None, "--store-url", help="prediction store (default: serving config)"),
        window: str = typer.Option(
            None, "--window", help="window length, e.g. 7D or 30min (default: config)"
        ),
        now: str = typer.Option(None, "--now", help="window end, ISO time (default: now)"),
        open_pr: bool = typer.Option(True, "--open-pr/--no-open-pr", help="open/update the retraining PR"),
        bundle: Path = typer.Option(
            None,
            "--bundle",
            help="write decision bundles (retrain/, challenger/) to this folder instead of opening PRs "
            "(no token needed; `gitops-ml decision-pr --bundle` opens them)",
        ),
    ) -> None:
        """Drift and late-label performance of production; opens a retraining PR when decayed."""
        # every problem at once, before Prefect starts; a refused challenger is the report's to say
        load_checked_settings(config_dir, check_challenger=False)
        from flows.monitor import monitor_flow

        outcome = monitor_flow(
            config_dir=str(config_dir),
            out_dir=str(out_dir),
            store_url=store_url,
            window=window,
            now=now,
            open_pr=open_pr and bundle is None,
            bundle_dir=str(bundle) if bundle is not None else None,
        )
        typer.echo(f"decision: {outcome.action} ({outcome.status}), {outcome.rows} rows")
        for reason in outcome.reasons:
            typer.echo(f"  - {reason}")
        typer.echo(f"report: {outcome.report}")
        if outcome.pr is not None:
            _echo_retraining_pr(outcome.pr)
        if outcome.bundle is not None:
            typer.echo(f"retraining bundle: {outcome.bundle}")
        if outcome.challenger is not None:
            typer.echo(f"challenger {outcome.challenger.challenger_version}: {outcome.challenger.action}")
            for reason in outcome.challenger.reasons:
                typer.echo(f"  - {reason}")
        if outcome.challenger_refused is not None:
            # production was monitored: the exit status is its decision's; the report says why
            typer.echo(f"challenger refused (not judged): {outcome.challenger_refused}", err=True)
        if outcome.challenger_bundle is not None:
            typer.echo(f"challenger bundle: {outcome.challenger_bundle}")
        if outcome.challenger_pr is not None:
            typer.echo(f"challenger PR: {outcome.challenger_pr.action} -> {outcome.challenger_pr.message}")

    @app.command("decision-pr")
    def decision_pr(
        bundle: Path = typer.Option(..., "--bundle", help="the folder `gitops-ml monitor --bundle` wrote"),
        expect_commit: str = typer.Option(
            ..., "--expect-commit", help="the commit the monitor ran on; the checkout must be at it"
        ),
        config_dir: Path = ConfigDirOption,
        store_url: str = typer.Option(
            None,
            "--store-url",
            help="prediction store to record the retraining PR in (default: not recorded)",
        ),
    ) -> None:
        """Verify the monitor's decision bundles (kinds, files, sha256, commit, against deploy/ and the
        contract at this commit) and open/update the retraining and challenger PRs."""
        settings = load_checked_settings(config_dir)
        from gitops_ml.jobs.decision_bundle import open_prs_from_bundles

        prs = open_prs_from_bundles(
            settings, bundle, repo_dir=Path("."), expect_commit=expect_commit, store_url=store_url
        )
        if prs.retrain is not None:
            _echo_retraining_pr(prs.retrain)
        if prs.challenger is not None:
            where = prs.challenger.pr_url or f"local branch {prs.challenger.branch}"
            typer.echo(f"challenger PR: {prs.challenger.action} -> {where}")


def _echo_retraining_pr(pr: RetrainingPr) -> None:
    where = pr.pr_url or f"local branch {pr.branch}"
    typer.echo(f"retraining PR: {pr.action} -> {where}")
    typer.echo(f"  {pr.export}")
    if pr.action == "local-only":
        typer.echo(f"  {pr.message}")
