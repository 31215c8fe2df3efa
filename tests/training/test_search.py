from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gitops_ml.errors import ConfigError
from gitops_ml.training.pipeline import prepare_features, train_model
from gitops_ml.training.search import default_scoring

GRID = {"max_depth": [2, 4], "learning_rate": [0.05, 0.2]}


def _search_settings(make_settings, **search):
    return make_settings(
        estimator={"params": {"max_iter": 20, "random_state": 0}, "search": {"param_grid": GRID, **search}}
    )


def test_grid_search_reports_every_candidate(frame: pd.DataFrame, make_settings) -> None:
    settings = _search_settings(make_settings, method="grid", cv=3)
    model = train_model(frame, settings)
    results = model.search_results
    assert results is not None and len(results) == 4
    assert set(model.best_params) == {"max_depth", "learning_rate"}  # keyed as in config
    assert results["rank_test_score"].tolist() == sorted(results["rank_test_score"])
    top = results.iloc[0]
    assert {"max_depth": top["max_depth"], "learning_rate": top["learning_rate"]} == model.best_params
    assert results["mean_test_score"].between(0, 1).all()  # roc_auc by default for binary
    # the returned pipeline is refitted with the winners
    assert model.pipeline.named_steps["model"].max_depth == model.best_params["max_depth"]


def test_random_search_is_seeded_and_capped(frame: pd.DataFrame, make_settings) -> None:
    settings = _search_settings(make_settings, method="random", n_iter=50, seed=3)
    first = train_model(frame, settings)
    second = train_model(frame, settings)
    assert len(first.search_results) == 4  # n_iter capped to the grid size
    pd.testing.assert_frame_equal(
        first.search_results.drop(columns="mean_fit_time"),
        second.search_results.drop(columns="mean_fit_time"),
    )
    X = prepare_features(frame, settings)
    assert np.array_equal(first.pipeline.predict_proba(X), second.pipeline.predict_proba(X))


def test_grid_key_can_address_preprocessing(frame: pd.DataFrame, make_settings) -> None:
    settings = make_settings(
        estimator={
            "search": {
                "method": "grid",
                "param_grid": {"preprocess__numeric__imputer__strategy": ["mean", "median"]},
            }
        }
    )
    model = train_model(frame, settings)
    assert model.best_params["preprocess__numeric__imputer__strategy"] in {"mean", "median"}


@pytest.mark.parametrize(
    ("search", "needle"),
    [
        ({"param_grid": {"max_depthh": [2]}}, r"estimator\.search\.param_grid\.max_depthh"),
        ({"param_grid": {"learning_rate": [0.1, -5]}}, r"estimator\.search\.param_grid\.learning_rate.*-5"),
        (
            {"param_grid": {"max_depth": [2]}, "scoring": "accuracyy"},
            r"estimator\.search\.scoring.*accuracyy",
        ),
    ],
)
def test_bad_search_config_is_named(frame: pd.DataFrame, make_settings, search: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        train_model(frame, make_settings(estimator={"search": search}))


def test_default_scoring_per_task() -> None:
    assert default_scoring("binary") == "roc_auc"
    assert default_scoring("multiclass") == "f1_macro"
    assert default_scoring("regression") == "neg_root_mean_squared_error"


def test_regression_search_uses_rmse(frame: pd.DataFrame, make_settings) -> None:
    settings = make_settings(
        dataset={"task": "regression", "target": "total_charges"},
        features={"numeric": ["tenure_months", "monthly_charges"]},
        split={"strategy": "random"},
        estimator={
            "class_path": "sklearn.linear_model.Ridge",
            "params": {},
            "search": {"method": "grid", "param_grid": {"alpha": [0.1, 10.0]}},
        },
    )
    model = train_model(frame.dropna(subset=["total_charges"]), settings)
    assert (model.search_results["mean_test_score"] < 0).all()  # negated RMSE
