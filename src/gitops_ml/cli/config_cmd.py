"""`gitops-ml config show|check|schema`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from gitops_ml.cli.options import ConfigDirOption
from gitops_ml.config import load_settings, settings_json_schema


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Show the resolved config or its JSON schema.", no_args_is_help=True)

    @group.command("show")
    def show(config_dir: Path = ConfigDirOption) -> None:
        """Print the resolved config (defaults filled in) as YAML, and its hash."""
        settings = load_settings(config_dir)
        typer.echo(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False).rstrip())
        typer.echo(f"# config hash: {settings.config_hash()}")

    @group.command("check")
    def check(config_dir: Path = ConfigDirOption) -> None:
        """Load every config file: exit 0 when valid, 2 with each error naming file and key path."""
        settings = load_settings(config_dir)
        typer.echo(f"config ok: {config_dir} (hash {settings.config_hash()[:12]})")

    @group.command("schema")
    def schema() -> None:
        """Print the JSON schema of the config (for editors and review)."""
        typer.echo(json.dumps(settings_json_schema(), indent=2))

    app.add_typer(group, name="config")
