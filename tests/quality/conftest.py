"""Small synthetic churn-like frames and a fitted pipeline for the deepchecks tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]
CATEGORICAL = ["plan", "region"]
FEATURES = [*NUMERIC, *CATEGORICAL]
LABEL = "churned"


def make_frame(n: int, seed: int) -> pd.DataFrame:
    """Churn-like rows whose label depends on the features, so a model learns something."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 121, n)
    charges = rng.uniform(10, 200, n).round(2)
    calls = rng.poisson(2, n)
    plan = rng.choice(["basic", "standard", "premium"], n)
    region = rng.choice(["north", "south", "east", "west"], n)
    logit = -1.0 - tenure / 40 + calls * 0.6 + (plan == "basic") * 0.8
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"CUST-{seed:02d}{i:05d}" for i in range(n)],
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "plan": plan,
            "region": region,
            LABEL: churned,
        }
    )


def make_pipeline_model(estimator: object | None = None) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), NUMERIC),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                CATEGORICAL,
            ),
        ]
    )
    if estimator is None:  # not `or`: an unfitted ensemble has no len()
        estimator = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    return Pipeline([("pre", pre), ("model", estimator)])


@pytest.fixture(scope="session")
def columns() -> dict[str, object]:
    """Keyword arguments naming the label and features, as the runners take them."""
    return {"label": LABEL, "features": FEATURES, "cat_features": CATEGORICAL}


@pytest.fixture(scope="session")
def frame_factory() -> object:
    return make_frame


@pytest.fixture(scope="session")
def model_factory() -> object:
    return make_pipeline_model


@pytest.fixture(scope="session")
def train_df() -> pd.DataFrame:
    return make_frame(300, seed=1)


@pytest.fixture(scope="session")
def test_df() -> pd.DataFrame:
    return make_frame(200, seed=2)


@pytest.fixture(scope="session")
def fitted_model(train_df: pd.DataFrame) -> Pipeline:
    return make_pipeline_model().fit(train_df[FEATURES], train_df[LABEL])
