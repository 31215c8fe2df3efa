"""`gitops-ml init DATA --target COL --task binary|multiclass|regression`: a setup from one file."""

from __future__ import annotations

from pathlib import Path

import typer

TASKS = ("binary", "multiclass", "regression")


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        data: Path = typer.Argument(..., help="CSV or Parquet file with the whole labelled table"),
        target: str = typer.Option(..., "--target", help="the column to predict"),
        task: str = typer.Option(..., "--task", help=" | ".join(TASKS)),
        time_column: str | None = typer.Option(
            None,
            "--time-column",
            help="dates/times, or integer periods (day index, year): batches and a time split",
        ),
        id_column: str | None = typer.Option(None, "--id-column", help="row identifier (must be unique)"),
        positive_label: str | None = typer.Option(
            None,
            "--positive-label",
            help="binary: the positive class (default: 1 for 0/1 labels, else the minority)",
        ),
        name: str | None = typer.Option(None, "--name", help="dataset name (default: from the file name)"),
        force: bool = typer.Option(False, "--force", help="replace a setup other than the bundled example"),
    ) -> None:
        """Profile DATA into a first-draft contract, batches + manifest under data/, and config/*.yaml."""
        from gitops_ml.errors import ConfigError
        from gitops_ml.jobs.init import InitRequest, init_project

        if task not in TASKS:
            raise ConfigError(f"init: --task {task!r}: expected one of {', '.join(TASKS)}")
        result = init_project(
            InitRequest(
                data=data,
                target=target,
                task=task,  # type: ignore[arg-type]
                time_column=time_column,
                id_column=id_column,
                positive_label=positive_label,
                name=name,
                force=force,
            )
        )
        for note in result.notes:
            typer.echo(f"note: {note}")
        for path in result.removed:
            typer.echo(f"removed {path}")
        for path in result.written:
            typer.echo(f"wrote   {path}")
        typer.echo(f"{result.name}: {result.rows} rows. Next: {result.next_command}")
