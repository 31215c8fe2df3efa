"""Fixtures for the evaluation tests (generators live in synthetic.py so tests can import them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.evaluation.synthetic import binary_pair


@pytest.fixture
def binary_models():
    return binary_pair()


@pytest.fixture
def churn_frame():
    """A tiny tabular binary problem with a categorical column, for pipeline-level helpers."""
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n).astype(float),
            "charges": rng.normal(60, 20, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    logit = -0.04 * frame["tenure"] + 0.03 * (frame["charges"] - 60) + (frame["plan"] == "basic") * 0.8
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return frame, y


@pytest.fixture
def fitted_pipeline(churn_frame):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, y = churn_frame
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["tenure", "charges"]), ("cat", OneHotEncoder(), ["plan"])]
    )
    return Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=500))]).fit(frame, y)
