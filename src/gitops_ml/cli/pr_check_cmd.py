"""`gitops-ml pr-check`: the one flow run a pull request gets."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from gitops_ml.cli.options import ConfigDirOption


def register(app: typer.Typer) -> None:
    @app.command("pr-check")
    def pr_check(
        config_dir: Path = ConfigDirOption,
        out_dir: Path = typer.Option(
            Path("reports/pr"), "--out", help="report.md, summary.json, plots, HTML"
        ),
        base_ref: str = typer.Option(
            None, "--base-ref", help="git ref for the contract diff (default: merge base with main)"
        ),
        deepchecks: bool = typer.Option(
            True, "--deepchecks/--no-deepchecks", help="run the deepchecks suites"
        ),
    ) -> None:
        """Train a candidate, compare it with production on the same holdout, write ONE report.

        Exit 0: gates passed. Exit 1: gates failed (report written). Exit 2: bad input (report says what broke).
        """
        started = time.time()
        from flows.pr_check import pr_check_flow

        result = pr_check_flow(
            config_dir=str(config_dir),
            out_dir=str(out_dir),
            base_ref=base_ref,
            started_at=started,
            run_deepchecks=deepchecks,
        )
        first = (out_dir / "report.md").read_text(encoding="utf-8").splitlines()[0]
        typer.echo(first)
        typer.echo(f"report: {out_dir / 'report.md'}")
        typer.echo(f"summary: {out_dir / 'summary.json'}")
        if result.status == "error" and result.error:
            typer.echo(f"error: {result.error}", err=True)
        raise typer.Exit(result.exit_code)
