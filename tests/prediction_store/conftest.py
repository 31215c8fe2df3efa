"""A prediction store per test: SQLite in tmp, and PostgreSQL when GITOPS_ML_TEST_POSTGRES_URL is set
(each test gets its own schema, dropped afterwards)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gitops_ml.prediction_store import PredictionStore
from tests.fixtures.stores import store_url_fixture  # noqa: F401  (the store_url fixture)


@pytest.fixture
def store(store_url: str) -> Iterator[PredictionStore]:
    store = PredictionStore(store_url)
    yield store
    store.dispose()
