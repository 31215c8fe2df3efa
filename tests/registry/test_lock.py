"""registry/lock.py on its own: one promotion at a time, and a dead holder never wedges the lock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitops_ml.registry.lock import LockTimeout, exclusive_lock

HOLD = """
import sys, time
from gitops_ml.registry.lock import exclusive_lock
with exclusive_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_is_reentered_after_release_and_records_the_holder(tmp_path: Path):
    path = tmp_path / "deploy" / ".promote.lock"
    with exclusive_lock(path, timeout_s=1):
        assert path.read_text().strip().isdigit()
    with exclusive_lock(path, timeout_s=1):
        pass


def test_a_second_promotion_waits_then_gives_up_naming_the_lock(tmp_path: Path):
    path = tmp_path / ".promote.lock"
    holder = _holder(path)
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeout, match=r"\.promote\.lock"), exclusive_lock(path, timeout_s=0.3):
            pass
        assert time.monotonic() - started >= 0.3
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_releases_the_lock(tmp_path: Path):
    path = tmp_path / ".promote.lock"
    holder = _holder(path)
    holder.kill()
    holder.wait()
    with exclusive_lock(path, timeout_s=5):
        pass
