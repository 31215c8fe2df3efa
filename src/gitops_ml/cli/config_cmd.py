"""`gitops-ml config check|show|schema`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from gitops_ml.cli.options import ConfigDirOption
from gitops_ml.config import settings_json_schema
from gitops_ml.errors import EXIT_BAD_INPUT
from gitops_ml.jobs.config_check import check_config, format_problems, load_checked_settings


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Check the config, show it resolved, or print its JSON schema.", no_args_is_help=True
    )

    @group.command("check")
    def check(config_dir: Path = ConfigDirOption) -> None:
        """Check every config file and the contract together, before any data is read (exit 0 or 2)."""
        result = check_config(config_dir)
        if not result.ok:
            typer.echo(f"error: {format_problems(result.problems)}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
        typer.echo(f"config ok: {config_dir} (config hash {result.settings.config_hash()})")  # type: ignore[union-attr]

    @group.command("show")
    def show(config_dir: Path = ConfigDirOption) -> None:
        """Print the resolved config (defaults filled in) as YAML, and its hash."""
        settings = load_checked_settings(config_dir)
        typer.echo(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False).rstrip())
        typer.echo(f"# config hash: {settings.config_hash()}")

    @group.command("schema")
    def schema(
        markdown: bool = typer.Option(False, "--markdown", help="the reference page (docs/configuration.md)"),
    ) -> None:
        """Print the JSON schema of the config (for editors and review), or the markdown reference."""
        if markdown:
            from gitops_ml.reporting.config_reference import config_reference_markdown

            typer.echo(config_reference_markdown(), nl=False)
            return
        typer.echo(json.dumps(settings_json_schema(), indent=2))

    app.add_typer(group, name="config")
