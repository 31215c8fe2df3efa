"""Prefect server on PostgreSQL: the scale-out setting of docs/scale-out.md, run for real.

A fresh database, a real `prefect server start` subprocess pointed at it with asyncpg, a small
flow run in another process through PREFECT_API_URL; then the run is read back twice: through
the server's REST API (state COMPLETED) and straight from PostgreSQL's `flow_run` / `task_run`
tables (so we know the server did not fall back to SQLite). Needs GITOPS_ML_TEST_POSTGRES_URL
(`.ci/run` sets it); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ENV_VAR = "GITOPS_ML_TEST_POSTGRES_URL"
# First start on an empty database runs every migration: ~30-60 s on 2 cores.
SERVER_STARTUP_TIMEOUT_S = 240
FLOW_TIMEOUT_S = 240
N_TASKS = 3

FLOW_SCRIPT = textwrap.dedent(
    f"""
    import json

    from prefect import flow, task
    from prefect.runtime import flow_run


    @task
    def add_one(x: int) -> int:
        return x + 1


    @flow(name="postgres-smoke")
    def smoke() -> dict:
        x = 0
        for _ in range({N_TASKS}):
            x = add_one(x)
        return {{"value": x, "flow_run_id": str(flow_run.id)}}


    print(json.dumps(smoke()), flush=True)
    """
)


def _admin_url() -> URL:
    raw = os.environ.get(ENV_VAR)
    if not raw:
        pytest.skip(f"{ENV_VAR} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:54329/postgres); "
                    ".ci/run starts PostgreSQL and sets it")
    url = make_url(raw)
    if url.get_backend_name() != "postgresql":
        pytest.skip(f"{ENV_VAR} must be a postgresql:// URL, got backend {url.get_backend_name()!r}")
    return url


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child_env(home: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any PREFECT_* setting (no harness leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1", **extra)
    return env


@pytest.fixture
def prefect_database() -> Iterator[URL]:
    """A new, empty database `prefect_test_<hex>`, dropped afterwards (even with the server's sessions open)."""
    admin = _admin_url()
    name = f"prefect_test_{secrets.token_hex(4)}"
    engine = sa.create_engine(admin.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        pytest.fail(f"cannot reach PostgreSQL at {admin.render_as_string(hide_password=True)}: {exc}")
    try:
        yield admin.set(database=name)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and whatever it spawned: it leads its own process group (start_new_session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@pytest.fixture
def prefect_server(prefect_database: URL, tmp_path: Path) -> Iterator[str]:
    """A real `prefect server start` on a free loopback port, backed by the test database; yields the API URL."""
    port = _free_port()
    db_url = prefect_database.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    log_path = tmp_path / "server.log"
    env = _child_env(
        tmp_path / "server-home",
        PREFECT_SERVER_DATABASE_CONNECTION_URL=db_url,  # PREFECT_API_DATABASE_... is the old alias
        PREFECT_SERVER_UI_ENABLED="false",
    )
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
             "--no-ui", "--analytics-off"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=tmp_path, start_new_session=True,
        )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + SERVER_STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after {SERVER_STARTUP_TIMEOUT_S} s:\n{_tail(log_path)}")
            time.sleep(0.5)
        yield api
    finally:
        _stop(proc)


def test_flow_run_is_recorded_in_postgres(prefect_server: str, prefect_database: URL, tmp_path: Path) -> None:
    script = tmp_path / "smoke_flow.py"
    script.write_text(FLOW_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        env=_child_env(tmp_path / "client-home", PREFECT_API_URL=prefect_server),
        capture_output=True, text=True, timeout=FLOW_TIMEOUT_S, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["value"] == N_TASKS
    run_id = out["flow_run_id"]

    # 1) the server says so
    response = httpx.get(f"{prefect_server}/flow_runs/{run_id}", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"]["type"] == "COMPLETED", body["state"]
    flow = httpx.get(f"{prefect_server}/flows/{body['flow_id']}", timeout=10).json()
    assert flow["name"] == "postgres-smoke"

    # 2) and the rows are in PostgreSQL, not in some SQLite file
    engine = sa.create_engine(prefect_database.set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT state_type, name FROM flow_run WHERE id = CAST(:id AS uuid)"), {"id": run_id}
            ).one()
            task_states = conn.execute(
                sa.text("SELECT state_type FROM task_run WHERE flow_run_id = CAST(:id AS uuid)"), {"id": run_id}
            ).scalars().all()
    finally:
        engine.dispose()
    assert row.state_type == "COMPLETED"
    assert row.name == body["name"]
    assert sorted(task_states) == ["COMPLETED"] * N_TASKS
    assert not list((tmp_path / "server-home").glob("*.db")), "server wrote a SQLite database"
