"""Fixtures for the data package tests: tiny generated batches."""

from __future__ import annotations

import pandas as pd
import pytest

from gitops_ml.data.generator import generate_batches


@pytest.fixture(scope="session")
def small_batches() -> list[pd.DataFrame]:
    """Three months x 200 rows: small, yet every category and null kind appears."""
    return generate_batches("2026-01", 3, 200, seed=7)
