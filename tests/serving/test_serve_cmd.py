"""`gitops-ml serve` as a user runs it: a subprocess, a real port, SIGTERM flushes the log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from tests.fixtures.projects import make_config_project
from tests.fixtures.stores import store_url_fixture  # noqa: F401  (the store_url fixture)
from tests.serving.conftest import free_port, records_of, synth_churn


def _serve(model_store, port: int, store_url: str, cwd, *extra: str) -> subprocess.Popen:
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
            store_url,
            "--log-level",
            "warning",
            *extra,
        ],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: a failed start kills the workers too
    )
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)  # workers hold the pipe: kill them before reading it
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"server not ready (exit {process.poll()}):\n{output}")
        time.sleep(0.2)


@pytest.mark.slow
def test_serve_command_serves_and_flushes_on_sigterm(tmp_path, model_store):
    model_store.point_to("v1")
    port = free_port()
    db = tmp_path / "served.db"
    process = _serve(model_store, port, f"sqlite:///{db}", make_config_project(tmp_path / "project"))
    try:
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


@pytest.mark.slow
def test_two_workers_log_exactly_the_predictions_they_served(tmp_path, model_store, store_url):
    """`serve --workers 2`: two processes write one store (SQLite in WAL mode, PostgreSQL); every
    served prediction is logged exactly once, whichever worker served it."""
    model_store.point_to("v1")
    port = free_port()
    process = _serve(
        model_store, port, store_url, make_config_project(tmp_path / "project"), "--workers", "2"
    )
    rows = records_of(synth_churn(40, seed=6))
    served: set[str] = set()
    try:

        def client_run(offset: int) -> list[str]:
            ids = []
            with httpx.Client(timeout=60) as client:
                for i, row in enumerate(rows):
                    body = (
                        {**row, "request_id": f"w-{offset}-{i}"}
                        if i % 2
                        else {"records": [{**row, "request_id": f"w-{offset}-{i}-{k}"} for k in range(3)]}
                    )
                    response = client.post(f"http://127.0.0.1:{port}/predict", json=body)
                    assert response.status_code == 200, response.text
                    data = response.json()
                    ids += (
                        [p["request_id"] for p in data["predictions"]]
                        if "predictions" in data
                        else [data["request_id"]]
                    )
            return ids

        with ThreadPoolExecutor(max_workers=8) as pool:
            for ids in pool.map(client_run, range(8)):
                served.update(ids)
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) >= 2, children  # the worker processes
        # each worker listens on its own socket: new connections spread over the processes (which
        # one answered: its log worker's pid); 32 connections on one of two sockets: p = 2**-31
        readiness = [httpx.get(f"http://127.0.0.1:{port}/ready", timeout=30).json() for _ in range(32)]
        answered = {ready["prediction_log"]["log_worker"]["pid"] for ready in readiness}
        assert len(answered) == 2, answered
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        logged = [r[0] for r in conn.exec_driver_sql("SELECT request_id FROM predictions")]
    engine.dispose()
    assert len(served) == 8 * (20 * 1 + 20 * 3)
    assert len(logged) == len(set(logged)) == len(served) and set(logged) == served


def test_workers_on_a_port_in_use_exit_2_naming_it(tmp_path, model_store):
    """`serve --workers 2` binds the port once, before any worker starts: a clear error, no traceback."""
    model_store.point_to("v1")
    other = socket.socket()  # another program's port, not shared
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    port = other.getsockname()[1]
    try:
        command = ["serve", "--port", str(port), "--workers", "2", "--pointer", str(model_store.pointer_path)]
        result = subprocess.run(
            [sys.executable, "-c", "from gitops_ml.cli import run; run()", *command],
            cwd=make_config_project(tmp_path / "project"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        other.close()
    assert result.returncode == 2, result.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
