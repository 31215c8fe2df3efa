"""`gitops-ml validate`: acquire -> contract -> data integrity, as one Prefect flow run."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_ml.cli.options import ConfigDirOption
from gitops_ml.errors import EXIT_BAD_INPUT, GitopsMLError
from gitops_ml.jobs.config_check import load_checked_settings


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        config_dir: Path = ConfigDirOption,
        out_dir: Path = typer.Option(
            Path("reports/validation"), "--out", help="where summary.json and HTML go"
        ),
        deepchecks: bool = typer.Option(
            True, "--deepchecks/--no-deepchecks", help="run the data integrity suite"
        ),
    ) -> None:
        """Validate the manifest's data against the contract and the data-integrity checks."""
        from gitops_ml.reporting.validation import failures_text, write_validation_error

        try:
            load_checked_settings(config_dir)  # every problem at once, before Prefect is even imported
            from flows.validate import validate_flow

            outcome = validate_flow(
                config_dir=str(config_dir), out_dir=str(out_dir), run_deepchecks=deepchecks
            )
        except GitopsMLError as exc:
            write_validation_error(out_dir, exc)
            raise
        typer.echo(f"rows: {len(outcome.acquired.frame)}  batches: {len(outcome.acquired.batches)}")
        typer.echo(f"contract: {'passed' if outcome.contract.passed else 'FAILED'}")
        if outcome.integrity is not None:
            counts = ", ".join(f"{k} {v}" for k, v in outcome.integrity.counts.items())
            typer.echo(f"data integrity: {counts}")
        typer.echo(f"summary: {out_dir / 'summary.json'}")
        if not outcome.passed:
            typer.echo(failures_text(outcome), err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
