"""Shared fixtures. One Prefect test harness per session: starting a server costs ~10 s.

Also the fork guard: no test outside tests/project (the dataset-agnostic project suite) may read
what a fork replaces, the repository's config/, data/, data_contracts/ and production pointer. An
audit hook watches every file this process opens or lists, and every gitops-ml subprocess started
in the repository's root (it would read config/ there); a test that does either fails, naming the
path. So every run of the suite proves the product's tests pass in any fork, and the fork test
(tests/e2e/test_fork.py) need not re-run them in one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_SUITE = REPO_ROOT / "tests" / "project"
# what `gitops-ml init` replaces in a fork (jobs/init.py): its config, batches, contract, pointer
FORK_REPLACED_DIRS = ("config", "data", "data_contracts")
FORK_REPLACED_FILES = ("deploy/production.yaml", "deploy/history.yaml")


class ForkGuard:
    """Records reads of what a fork replaces while a test (or a module's collection) is running."""

    def __init__(self, root: Path) -> None:
        base = os.path.normcase(str(root))
        self.root = base
        self.prefixes = tuple(os.path.join(base, d) + os.sep for d in FORK_REPLACED_DIRS)
        self.exact = frozenset(
            {os.path.join(base, d) for d in FORK_REPLACED_DIRS}
            | {os.path.join(base, *f.split("/")) for f in FORK_REPLACED_FILES}
        )
        self.active = False
        self.seen: list[str] = []

    def forbidden(self, path: Any) -> str | None:
        """The path relative to the repository when it is one a fork replaces, else None."""
        if isinstance(path, int) or path is None:
            return None  # a file descriptor: its open was already seen
        try:
            text = os.path.normcase(os.path.abspath(os.fsdecode(path)))
        except (TypeError, ValueError, OSError):
            return None
        if text in self.exact or text.startswith(self.prefixes):
            return os.path.relpath(text, self.root)
        return None

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        # called for every audit event of the process: the cheap tests come first
        if not self.active:
            return
        if event in ("open", "os.listdir", "os.scandir"):
            if args and (found := self.forbidden(args[0])):
                self.seen.append(f"{event} {found}")
        elif event == "subprocess.Popen":
            _executable, argv, cwd, _env = args
            words = [os.fsdecode(a) for a in argv] if isinstance(argv, list | tuple) else [os.fsdecode(argv)]
            named = [found for w in words if os.path.isabs(w) and (found := self.forbidden(w))]
            where = os.path.normcase(os.path.abspath(os.fsdecode(cwd) if cwd is not None else os.getcwd()))
            in_root = where == self.root and any(w == "gitops_ml" or w.endswith("gitops-ml") for w in words)
            if named or in_root:
                what = f"names {', '.join(named)}" if named else "runs gitops-ml in the repository root"
                self.seen.append(f"a subprocess that {what}: {' '.join(words)}")

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


GUARD = ForkGuard(REPO_ROOT)
if os.environ.get("GITOPS_ML_FORK_GUARD", "1") != "0":  # "0" only for the guard's own overhead benchmark
    sys.addaudithook(GUARD.audit)  # an audit hook cannot be removed: `active` switches it per test


def _message(what: str, seen: list[str]) -> str:
    shown = "; ".join(dict.fromkeys(seen))  # each path once, in order, on one line (pytest's -r summary)
    return (
        f"{what} read what a fork replaces: {shown} (only tests/project may, see tests/conftest.py; "
        "use a fixture project, tests/fixtures/projects.py, or a temporary copy)"
    )


def _guarded(item: pytest.Item) -> bool:
    return not item.path.is_relative_to(PROJECT_SUITE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _watch(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _watch(item, "test"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    return (yield from _watch(item, "teardown"))


def _watch(item: pytest.Item, phase: str):
    if not _guarded(item):
        return (yield)
    GUARD.take()
    GUARD.active = True
    try:
        result = yield
    finally:
        GUARD.active = False
    seen = GUARD.take()
    if seen:
        pytest.fail(_message(f"{item.nodeid} ({phase})", seen), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[pytest.CollectReport]:
    """A test module that reads them at import time fails its collection."""
    guarded = isinstance(collector, pytest.Module) and not collector.path.is_relative_to(PROJECT_SUITE)
    if guarded:
        GUARD.take()
        GUARD.active = True
    try:
        report = yield
    finally:
        GUARD.active = False
    seen = GUARD.take() if guarded else []
    if seen and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = _message(f"collecting {collector.nodeid}", seen)
    return report


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
