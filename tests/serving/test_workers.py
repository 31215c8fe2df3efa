"""`serving.workers`: the sockets `serve --workers N` listens on (the processes themselves are run by
tests/serving/test_serve_cmd.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from gitops_ml.serving.workers import _WORKER_ENTRY, PortUnavailable, bind_shared, reuseport_supported

pytestmark = pytest.mark.skipif(not reuseport_supported(), reason="SO_REUSEPORT balances on Linux only")


def test_workers_bind_the_same_port_and_port_0_is_one_port_for_all():
    first = bind_shared("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = bind_shared("127.0.0.1", port)
    try:
        second.listen(8)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the listening one accepts; the reserved, not listening one takes no connection
    finally:
        first.close()
        second.close()


def test_a_port_another_program_holds_is_refused_naming_it():
    other = socket.socket()
    other.bind(("127.0.0.1", 0))  # no SO_REUSEPORT: nobody may share it
    other.listen(1)
    port = other.getsockname()[1]
    try:
        with pytest.raises(PortUnavailable, match=f"cannot serve on 127.0.0.1:{port}") as caught:
            bind_shared("127.0.0.1", port)
        assert caught.value.exit_code == 2
    finally:
        other.close()


SLOW_STARTING_APP = """
import asyncio, os
from pathlib import Path


def make():
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    Path(os.environ["STARTING"]).touch()
                    while not Path(os.environ["GATE"]).exists():  # a model that takes a while to load
                        await asyncio.sleep(0.05)
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ready"})

    return app
"""


def test_a_starting_worker_takes_no_connection_until_its_app_has_started(tmp_path):
    """A worker listens only after its app's startup: a connection is not left waiting in the
    backlog of a worker still loading its model (the kernel sends it to a ready worker instead)."""
    (tmp_path / "slow_starting_app.py").write_text(SLOW_STARTING_APP)
    starting, gate = tmp_path / "starting", tmp_path / "gate"
    reserved = bind_shared("127.0.0.1", 0)  # as the supervisor holds the port
    port = reserved.getsockname()[1]
    argv = ["127.0.0.1", str(port), "warning", "slow_starting_app:make", str(tmp_path)]
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER_ENTRY, *argv],
        env={**os.environ, "STARTING": str(starting), "GATE": str(gate)},
    )
    try:
        deadline = time.monotonic() + 60
        while not starting.exists():
            assert worker.poll() is None and time.monotonic() < deadline, "the worker did not start its app"
            time.sleep(0.05)
        with pytest.raises(ConnectionRefusedError):  # bound since before the app started, not listening
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        gate.touch()
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "ready"
                break
            except httpx.ConnectError:
                assert worker.poll() is None and time.monotonic() < deadline, "the worker did not listen"
                time.sleep(0.05)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still waiting for the gate: a failed test leaves nothing running
            worker.kill()
            worker.wait()
        reserved.close()
