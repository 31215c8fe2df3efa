"""Facts about the run recorded for reproducibility: library versions and stage timings."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata

TRACKED_PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "skops", "deepchecks", "prefect")
# what a fitted model's file depends on to load and predict the same way
MODEL_PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "skops", "joblib")


def library_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Python's version and each distribution's, by distribution name ("not installed" when absent)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class StageTimer:
    """Wall time per named stage, in the order they ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
