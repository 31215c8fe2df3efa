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
        workers: int = typer.Option(
            1,
            "--workers",
            min=1,
            max=64,
            help="worker processes (one per core); each logs to the same prediction store",
        ),
    ) -> None:
        """Serve /predict, /feedback, /ready, /model and /docs; reload when the pointer changes."""
        import os

        import uvicorn

        from gitops_ml.serving import app as serving_app
        from gitops_ml.serving.scheduler import ENV_WORKERS
        from gitops_ml.serving.workers import (
            APP_FACTORY,
            reuseport_supported,
            serve_workers,
            uvicorn_settings,
        )

        settings = load_checked_settings(config_dir)  # fails here, once, on a bad config: not in N workers
        os.environ[ENV_WORKERS] = str(workers)  # each worker's predict threads: its share of the cores
        server = uvicorn_settings(host, port, log_level)
        if workers == 1:
            application = serving_app.create_app(settings, pointer_path=pointer, store_url=store_url)
            uvicorn.run(application, **server)
            return
        # Each worker loads the model and writes its own log batches: SQLite in WAL mode with a
        # busy timeout (or PostgreSQL) takes the concurrent writers.
        os.environ[serving_app.ENV_CONFIG_DIR] = str(Path(config_dir).resolve())
        os.environ[serving_app.ENV_POINTER] = str(pointer.resolve()) if pointer is not None else ""
        os.environ[serving_app.ENV_STORE_URL] = store_url or ""
        if reuseport_supported():  # a listening socket per worker: the kernel spreads the connections
            code = serve_workers(workers, host, port, log_level)
            if code:
                raise typer.Exit(code)
            return
        uvicorn.run(APP_FACTORY, factory=True, workers=workers, **server)
