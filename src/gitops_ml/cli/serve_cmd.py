"""`gitops-ml serve`: the prediction API (uvicorn) for the production model."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_ml.cli.options import ConfigDirOption
from gitops_ml.jobs.config_check import load_checked_settings


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="interface to bind (0.0.0.0 for all)"),
        port: int = typer.Option(8000, "--port", min=0, max=65535),
        config_dir: Path = ConfigDirOption,
        store_url: str | None = typer.Option(
            None, "--store-url", help="prediction store URL (default: serving.prediction_store_url)"
        ),
        pointer: Path | None = typer.Option(
            None, "--pointer", help="production pointer file (default: registry.pointer)"
        ),
        log_level: str = typer.Option("info", "--log-level"),
    ) -> None:
        """Serve /predict, /feedback, /ready, /model and /docs; reload when the pointer changes."""
        import uvicorn

        from gitops_ml.serving.app import create_app

        settings = load_checked_settings(config_dir)
        application = create_app(settings, pointer_path=pointer, store_url=store_url)
        # access_log off: every prediction is already logged in the store, and the access log
        # costs a sizeable share of a request's CPU time.
        uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)
