"""An exclusive file lock so two promotions never interleave on one machine or shared volume."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops_ml.errors import GitopsMLError


class LockTimeout(GitopsMLError):
    """Another promotion held the lock for longer than the configured timeout."""


@contextmanager
def exclusive_lock(path: Path, timeout_s: float = 60.0, poll_s: float = 0.05) -> Iterator[None]:
    """flock-based: released by the kernel if the holder dies, so a killed promotion never wedges it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{path}: another promotion holds the lock (waited {timeout_s:.0f}s)"
                    ) from None
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock
