"""Real background processes for the tests that need them: `prefect server start`, workers.

Each process leads its own process group, so stopping it stops what it spawned as well (a
worker's flow-run subprocess, uvicorn's children); child environments drop any PREFECT_*
setting of the test process (a session harness must not leak into a real server).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gitops_ml.processes import free_port, prefect_server_command, start_group, stop_group
from tests.flows.conftest import GIT_IDENTITY

BIN = Path(sys.executable).parent  # the venv's bin: prefect and gitops-ml live beside python


def child_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(GIT_IDENTITY)
    # one OpenMP thread: spin-waiting threads oversubscribe a loaded 2-core runner (see tests/conftest.py)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",
        **extra,
    )
    return env


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@dataclass
class PrefectServer:
    """A real `prefect server start` on a free loopback port (still starting when returned)."""

    api: str
    log: Path
    proc: subprocess.Popen

    @classmethod
    def start(cls, workdir: Path, **env: str) -> PrefectServer:
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        log = workdir / "server.log"
        proc = start_group(
            prefect_server_command(BIN, port),
            child_env(workdir / "server-home", PREFECT_API_URL=api, PREFECT_SERVER_UI_ENABLED="false", **env),
            log,
            workdir,
        )
        return cls(api, log, proc)

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"prefect server exited with {self.proc.returncode}:\n{tail(self.log)}")
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after {timeout_s} s:\n{tail(self.log)}")
            time.sleep(0.5)

    def stop(self) -> None:
        stop_group(self.proc)
