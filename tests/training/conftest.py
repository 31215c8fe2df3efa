"""Small churn-like frames and a Settings factory for the training tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from gitops_ml.config import Settings
from gitops_ml.data.generator import CATEGORICAL_FEATURES, NUMERIC_FEATURES

NUMERIC = list(NUMERIC_FEATURES)
CATEGORICAL = list(CATEGORICAL_FEATURES)


def _churn_frame(n: int = 600, seed: int = 0, months: int = 3) -> pd.DataFrame:
    """Columns of the churn table with a learnable label and the table's null patterns."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 121, n)
    charges = rng.uniform(10, 200, n).round(2)
    calls = rng.poisson(2, n)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n, p=[0.5, 0.3, 0.2])
    late = rng.poisson(1, n)
    logit = -2.0 + 1.0 * calls + 1.0 * late - 0.04 * tenure + 2.0 * (contract == "month-to-month")
    churned = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    snapshot = pd.to_datetime([f"2026-{1 + i % months:02d}-01" for i in range(n)])
    df = pd.DataFrame(
        {
            "customer_id": [f"CUST-{i:07d}" for i in range(n)],
            "signup_date": (snapshot - pd.to_timedelta(tenure * 30, unit="D")).strftime("%Y-%m-%d"),
            "snapshot_date": snapshot.strftime("%Y-%m-%d"),
            "tenure_months": tenure,
            "plan": rng.choice(["basic", "standard", "premium"], n),
            "contract_type": contract,
            "payment_method": rng.choice(
                ["credit-card", "bank-transfer", "electronic-check", "mailed-check"], n
            ),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "monthly_charges": charges,
            "total_charges": np.where(tenure == 0, np.nan, charges * tenure),
            "support_calls": calls,
            "usage_minutes": rng.uniform(0, 2000, n).round(1),
            "late_payments": late,
            "churned": churned,
        }
    )
    df.loc[rng.uniform(size=n) < 0.03, "usage_minutes"] = np.nan
    df.loc[rng.uniform(size=n) < 0.02, "payment_method"] = None
    return df


REPLACED_KEYS = {"params", "param_grid"}  # a test's estimator params replace the defaults, not extend them


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict) and key not in REPLACED_KEYS
        out[key] = _merge(out[key], value) if nested else value
    return out


def _make_settings(**sections: dict[str, Any]) -> Settings:
    """Settings for the churn frame; keyword sections are deep-merged over the defaults."""
    base: dict[str, Any] = {
        "dataset": {
            "name": "churn",
            "contract": "data_contracts/churn.odcs.yaml",
            "manifest": "data/manifest.yaml",
            "target": "churned",
            "id_column": "customer_id",
            "time_column": "snapshot_date",
            "task": "binary",
        },
        "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
        "split": {"strategy": "time"},
        "estimator": {
            "class_path": "sklearn.ensemble.HistGradientBoostingClassifier",
            "params": {"max_iter": 30, "random_state": 0},
        },
    }
    return Settings.model_validate(_merge(base, sections))


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    return _churn_frame()


@pytest.fixture(scope="session")
def churn_frame():
    """`churn_frame(n=600, seed=0, months=3)`: a fresh churn-like frame."""
    return _churn_frame


@pytest.fixture(scope="session")
def make_settings():
    """`make_settings(**sections)`: churn Settings with sections deep-merged over the defaults."""
    return _make_settings


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Tiny fits gain nothing from OpenMP threads, and on a busy 2-core machine HGB's thread
    # pool oversubscribes badly (a 600-row fit took 40 s instead of 1 s).
    with threadpool_limits(limits=1):
        yield
