"""Fixtures for the contract tests: the committed contract and a small frame that satisfies it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from gitops_ml.contracts.model import Contract, load_contract, parse_contract
from tests.fixtures.projects import CHURN

CONTRACT_PATH = CHURN / "data_contracts" / "churn.odcs.yaml"


@pytest.fixture(scope="session")
def contract_path() -> Path:
    return CONTRACT_PATH


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract(CONTRACT_PATH)


@pytest.fixture(scope="session")
def contract_dict() -> dict[str, Any]:
    return yaml.safe_load(CONTRACT_PATH.read_text())


@pytest.fixture()
def edited(contract_dict: dict[str, Any]) -> Callable[..., Contract]:
    """edited(fn) -> a Contract parsed from a deep copy of the committed YAML after fn(copy)."""

    def make(fn: Callable[[dict[str, Any]], None]) -> Contract:
        data = copy.deepcopy(contract_dict)
        fn(data)
        return parse_contract(data, source="edited.odcs.yaml")

    return make


def prop(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The property dict of column `name` in a raw contract dict."""
    return next(p for p in data["schema"][0]["properties"] if p["name"] == name)


def make_valid_frame(n: int = 24) -> pd.DataFrame:
    """A frame as read from a CSV batch (dates as ISO text) that satisfies every contract rule."""
    i = np.arange(n)
    tenure = i % 30
    monthly = 20.0 + (i % 7) * 10.5
    return pd.DataFrame(
        {
            "customer_id": [f"CUST-{k:07d}" for k in i + 1],
            "signup_date": [f"2025-{m:02d}-{d:02d}" for m, d in zip(1 + i % 12, 1 + i % 28, strict=True)],
            "snapshot_date": ["2026-01-01" if k % 2 else "2026-02-01" for k in i],
            "tenure_months": tenure,
            "plan": np.array(["basic", "standard", "premium"], dtype=object)[i % 3],
            "contract_type": np.array(["month-to-month", "one-year", "two-year"], dtype=object)[i % 3],
            "payment_method": np.array(
                ["credit-card", "bank-transfer", "electronic-check", "mailed-check"], dtype=object
            )[i % 4],
            "region": np.array(["north", "south", "east", "west"], dtype=object)[i % 4],
            "monthly_charges": monthly,
            "total_charges": np.where(tenure == 0, np.nan, monthly * tenure),
            "support_calls": i % 5,
            "usage_minutes": 100.0 + i,
            "late_payments": i % 3,
            "churned": i % 2,
        }
    )


@pytest.fixture()
def valid_frame() -> pd.DataFrame:
    return make_valid_frame()
