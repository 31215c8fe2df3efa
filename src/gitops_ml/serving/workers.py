"""`gitops-ml serve --workers N`: N server processes, each listening on its own socket bound to the
same port (SO_REUSEPORT), so that the kernel spreads new connections over them.

Why not uvicorn's own workers: they share one listening socket, and the process that wakes first
accepts every connection waiting on it. Measured (docs/benchmarks.md): with a batch client's
connections opened together on an idle server, every connection went to one process in 6 of 8
runs, and the other core served nothing. With a socket per process, Linux picks the socket of each
new connection by a hash of its addresses: a few connections may still share a process, many
connections spread evenly.

The supervisor binds the port first (a port in use fails here, once, with exit code 2; port 0
picks one free port that every worker then shares), starts the workers, restarts one that dies,
and on SIGINT or SIGTERM sends SIGTERM to each and waits: each worker's shutdown writes its
prediction log before it exits.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from gitops_ml.errors import GitopsMLError

log = logging.getLogger(__name__)

# a worker that exits within this long of its start is failing to start: stop, do not loop
START_GRACE_S = 20.0
STOP_TIMEOUT_S = 120.0
_WORKER_ENTRY = (
    "import sys; from gitops_ml.serving.workers import worker_main; sys.exit(worker_main(sys.argv[1:]))"
)


class PortUnavailable(GitopsMLError):
    """The address to serve on cannot be bound."""


def reuseport_supported() -> bool:
    """SO_REUSEPORT spreads connections over the sockets on Linux only (BSD and macOS do not balance)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_shared(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) that other sockets of this user may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortUnavailable(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return sock


APP_FACTORY = "gitops_ml.serving.app:app_from_environment"


def uvicorn_settings(host: str, port: int, log_level: str) -> dict[str, Any]:
    """The one set of uvicorn settings `serve` uses, with one worker or N. access_log off: every
    prediction is already logged in the store, and the access log costs a sizeable share of a
    request's CPU time. uvloop + httptools: the cheapest request handling uvicorn has (both are
    dependencies)."""
    return {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
    }


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    log_level: str
    app: str = APP_FACTORY  # the import string of an app factory (a benchmark serves its own)
    app_dir: str = ""  # put first on sys.path to import `app` from there, as uvicorn's app_dir


def worker_main(argv: list[str]) -> int:
    """One worker process: its own socket on the shared port, the app from the environment."""
    import uvicorn

    host, port, log_level, app, app_dir = argv[0], int(argv[1]), argv[2], argv[3], argv[4]
    if app_dir:
        sys.path.insert(0, app_dir)
    # bound, not listening: the kernel gives a socket connections once it listens, which uvicorn
    # does after the app's startup (the model loaded). A worker (re)starting takes no connections
    # into a backlog it would answer only seconds later: measured, a 1.5 s p99 on a cold start.
    sock = bind_shared(host, port)
    config = uvicorn.Config(app, factory=True, **uvicorn_settings(host, port, log_level))
    uvicorn.Server(config).run(sockets=[sock])
    return 0


class Supervisor:
    """Starts and keeps `workers` worker processes; `run` returns when they have all stopped."""

    def __init__(self, workers: int, options: ServerOptions):
        self.workers = workers
        self.options = options
        self._stopping = False
        self._children: list[tuple[subprocess.Popen[bytes], float]] = []

    def _spawn(self, port: int) -> tuple[subprocess.Popen[bytes], float]:
        options = self.options
        argv = [options.host, str(port), options.log_level, options.app, options.app_dir]
        return subprocess.Popen([sys.executable, "-c", _WORKER_ENTRY, *argv]), time.monotonic()

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True
        for child, _ in self._children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        reserved = bind_shared(self.options.host, self.options.port)  # the port, held until the end
        port = reserved.getsockname()[1]
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
        code = 0
        try:
            self._children = [self._spawn(port) for _ in range(self.workers)]
            log.info("serving on %s:%s with %s worker processes", self.options.host, port, self.workers)
            while not self._stopping:
                time.sleep(0.2)
                for index, (child, started) in enumerate(self._children):
                    exit_code = child.poll()
                    if exit_code is None or self._stopping:
                        continue
                    if time.monotonic() - started < START_GRACE_S:
                        log.error(
                            "worker %s exited with code %s while starting; stopping", child.pid, exit_code
                        )
                        code = exit_code or 1
                        self._stop(signal.SIGTERM, None)
                        break
                    log.error("worker %s exited with code %s; starting another", child.pid, exit_code)
                    self._children[index] = self._spawn(port)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for child, _ in self._children:
                try:
                    child.wait(max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    log.error("worker %s did not stop within %ss; killing it", child.pid, STOP_TIMEOUT_S)
                    child.kill()
                    child.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            reserved.close()
        return code


def serve_workers(workers: int, host: str, port: int, log_level: str) -> int:
    """Serve with `workers` processes (the app's settings come from the environment, as
    `app.app_from_environment` reads them); the exit code."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(message)s")
    return Supervisor(workers, ServerOptions(host, port, log_level)).run()
