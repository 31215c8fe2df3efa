"""Background processes the demo, the benchmarks and the tests start: a server on a loopback port.

Each process leads its own process group, so stopping it stops what it spawned as well (a worker's
flow-run subprocess, uvicorn's children), and nothing outside that group is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_group(args: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start `args` as the leader of a new process group, stdout and stderr into `log_path`."""
    with log_path.open("w") as log:
        return subprocess.Popen(
            args,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )


def stop_group(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM the group, SIGKILL it if the leader outlives `timeout_s`, then kill what it left behind."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def prefect_server_command(bin_dir: Path, port: int) -> list[str]:
    """`prefect server start` on loopback `port`, API only (no UI, no analytics)."""
    return [
        str(bin_dir / "prefect"),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-ui",
        "--analytics-off",
    ]
