"""Options shared by several command groups (one definition, one help text)."""

from __future__ import annotations

import typer

from gitops_ml.config import DEFAULT_CONFIG_DIR

ConfigDirOption = typer.Option(DEFAULT_CONFIG_DIR, "--config-dir", "-c", help="folder of config/*.yaml")
