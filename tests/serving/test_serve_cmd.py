"""`gitops-ml serve` as a user runs it: a subprocess, a real port, SIGTERM flushes the log."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
import sqlalchemy as sa

from tests.fixtures.projects import make_config_project
from tests.serving.conftest import free_port, records_of, synth_churn


@pytest.mark.slow
def test_serve_command_serves_and_flushes_on_sigterm(tmp_path, model_store):
    model_store.point_to("v1")
    port = free_port()
    db = tmp_path / "served.db"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from gitops_ml.cli import run; run()",
            "serve",
            "--port",
            str(port),
            "--pointer",
            str(model_store.pointer_path),
            "--store-url",
            f"sqlite:///{db}",
            "--log-level",
            "warning",
        ],
        cwd=make_config_project(tmp_path / "project"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"server not ready (exit {process.poll()}):\n{output}")
            time.sleep(0.2)
        rows = records_of(synth_churn(3, seed=4))
        response = httpx.post(f"http://127.0.0.1:{port}/predict", json={"records": rows}, timeout=30)
        assert response.status_code == 200 and response.json()["model_version"] == "v1"
    finally:
        process.terminate()
        process.wait(timeout=60)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM predictions").scalar_one() == 3
    engine.dispose()
