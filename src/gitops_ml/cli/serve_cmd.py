"""`gitops-ml serve`: the prediction API (uvicorn) for the production model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
        from gitops_ml.serving.workers import reuseport_supported, serve_workers

        settings = load_checked_settings(config_dir)  # fails here, once, on a bad config: not in N workers
        os.environ[ENV_WORKERS] = str(workers)  # each worker's predict threads: its share of the cores
        # access_log off: every prediction is already logged in the store, and the access log
        # costs a sizeable share of a request's CPU time. uvloop + httptools: the cheapest
        # request handling uvicorn has (both are dependencies).
        server: dict[str, Any] = {
            "host": host,
            "port": port,
            "log_level": log_level,
            "access_log": False,
            "loop": "uvloop",
            "http": "httptools",
        }
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
        uvicorn.run("gitops_ml.serving.app:app_from_environment", factory=True, workers=workers, **server)
