"""Shared fixtures. One Prefect test harness per session: starting a server costs ~10 s."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session", autouse=True)
def _one_thread_per_library():
    """OpenMP spin-waits oversubscribe a 2-core runner (HGB fits 20x slower); tests run single-threaded."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API (SQLite) shared by every flow test in the session."""
    from prefect.logging.configuration import setup_logging
    from prefect.testing.utilities import prefect_test_harness

    # Bind Prefect's console log handler to the session's stderr now: set up lazily inside a test
    # that uses capsys, it would keep writing to that test's closed capture stream afterwards.
    setup_logging()
    with prefect_test_harness(server_startup_timeout=120):
        yield
