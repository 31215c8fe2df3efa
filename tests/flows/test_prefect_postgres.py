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
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from tests.flows.processes import PrefectServer, child_env

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
        pytest.skip(
            f"{ENV_VAR} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:54329/postgres); "
            ".ci/run starts PostgreSQL and sets it"
        )
    url = make_url(raw)
    if url.get_backend_name() != "postgresql":
        pytest.skip(f"{ENV_VAR} must be a postgresql:// URL, got backend {url.get_backend_name()!r}")
    return url


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


@pytest.fixture
def prefect_server(prefect_database: URL, tmp_path: Path) -> Iterator[str]:
    """A real `prefect server start` backed by the test database; yields the API URL."""
    db_url = prefect_database.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    # PREFECT_API_DATABASE_... is the old alias
    server = PrefectServer.start(tmp_path, PREFECT_SERVER_DATABASE_CONNECTION_URL=db_url)
    try:
        server.wait_healthy(SERVER_STARTUP_TIMEOUT_S)
        yield server.api
    finally:
        server.stop()


def test_flow_run_is_recorded_in_postgres(prefect_server: str, prefect_database: URL, tmp_path: Path) -> None:
    script = tmp_path / "smoke_flow.py"
    script.write_text(FLOW_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        env=child_env(tmp_path / "client-home", PREFECT_API_URL=prefect_server),
        capture_output=True,
        text=True,
        timeout=FLOW_TIMEOUT_S,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
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
            task_states = (
                conn.execute(
                    sa.text("SELECT state_type FROM task_run WHERE flow_run_id = CAST(:id AS uuid)"),
                    {"id": run_id},
                )
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert row.state_type == "COMPLETED"
    assert row.name == body["name"]
    assert sorted(task_states) == ["COMPLETED"] * N_TASKS
    assert not list((tmp_path / "server-home").glob("*.db")), "server wrote a SQLite database"
