"""Hyperparameter trials one by one (training.trials) and as a Prefect subflow on Dask (flows.search).

The pure tests check the trials against scikit-learn's own search; the slow ones run the
`hyperparameter-search` flow sequentially and on a 2-worker LocalCluster via prefect-dask.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

from gitops_ml.config import SearchConfig, Settings, load_settings
from gitops_ml.data.generator import generate_batches
from gitops_ml.errors import ConfigError
from gitops_ml.training.pipeline import build_pipeline, prepare_features, training_target
from gitops_ml.training.search import run_search
from gitops_ml.training.trials import (
    TrialResult,
    best_trial,
    config_params,
    cv_splits,
    enumerate_trials,
    fit_best,
    results_frame,
    score_trial,
)
from tests.fixtures.projects import CHURN

GRID = {"max_iter": [20, 40], "learning_rate": [0.05, 0.2]}


def with_search(settings: Settings, **search: Any) -> Settings:
    cfg = SearchConfig(**{"method": "grid", "param_grid": GRID, "cv": 3, **search})
    return settings.model_copy(update={"estimator": settings.estimator.model_copy(update={"search": cfg})})


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return pd.concat(generate_batches("2026-01", 3, 400, seed=1), ignore_index=True)


@pytest.fixture(scope="module")
def base_settings() -> Settings:
    return load_settings(CHURN / "config")


def xy(frame: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.Series]:
    return prepare_features(frame, settings), training_target(frame, settings)


class _FixedSplits:
    """A cv object replaying precomputed folds, so GridSearchCV scores exactly the folds cv_splits made."""

    def __init__(self, splits: list) -> None:
        self.splits = splits

    def split(self, X: Any = None, y: Any = None, groups: Any = None):
        return iter(self.splits)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return len(self.splits)


@pytest.mark.parametrize(("method", "search_cls"), [("grid", GridSearchCV), ("random", RandomizedSearchCV)])
def test_trials_are_the_candidates_scikit_learn_tries(churn, base_settings, method, search_cls) -> None:
    grid = {**GRID, "max_leaf_nodes": [4, 15]}  # 8 candidates, 3 drawn at random
    settings = with_search(base_settings, method=method, param_grid=grid, n_iter=3, seed=5)
    candidates = enumerate_trials(settings, build_pipeline(settings))
    X, y = xy(churn.iloc[:300], settings)
    cfg = settings.estimator.search
    full = {f"model__{key}": values for key, values in cfg.param_grid.items()}
    extra = {"n_iter": 3, "random_state": 5} if method == "random" else {}
    reference = search_cls(build_pipeline(settings), full, cv=2, **extra).fit(X, y)
    assert candidates == list(reference.cv_results_["params"])
    assert len(candidates) == (8 if method == "grid" else 3)


def test_random_trials_are_capped_at_the_grid_size(base_settings) -> None:
    settings = with_search(base_settings, method="random", n_iter=50)
    assert len(enumerate_trials(settings, build_pipeline(settings))) == 4


def test_trials_reproduce_run_search(churn, base_settings) -> None:
    settings = with_search(base_settings)
    X, y = xy(churn, settings)
    pipeline = build_pipeline(settings)
    splits = cv_splits(settings, X, y)
    results = [score_trial(settings, X, y, params, splits) for params in enumerate_trials(settings, pipeline)]
    best = best_trial(results)

    refit, best_params, table = run_search(build_pipeline(settings), X, y, settings)
    assert config_params(settings, pipeline, best.params) == best_params
    pd.testing.assert_frame_equal(
        results_frame(settings, pipeline, results).drop(columns="mean_fit_time"),
        table.drop(columns="mean_fit_time"),
        check_dtype=False,
        rtol=0,
        atol=1e-12,
    )
    model = fit_best(settings, X, y, best.params)
    assert np.array_equal(model.predict_proba(X), refit.predict_proba(X))
    # the folds are the seeded ones: a hand-made GridSearchCV on them scores every fold identically
    full = {f"model__{key}": values for key, values in GRID.items()}
    reference = GridSearchCV(build_pipeline(settings), full, scoring="roc_auc", cv=_FixedSplits(splits)).fit(
        X, y
    )
    for i, result in enumerate(results):
        folds = [reference.cv_results_[f"split{k}_test_score"][i] for k in range(3)]
        np.testing.assert_allclose(result.fold_scores, folds, rtol=0, atol=1e-12)
        assert result.fit_seconds > 0


def _result(mean: float, name: str) -> TrialResult:
    return TrialResult(
        params={"model__name": name}, mean_score=mean, std_score=0.0, fold_scores=(mean,), fit_seconds=0.1
    )


def test_best_trial_breaks_ties_by_trial_order() -> None:
    results = [_result(0.7, "a"), _result(0.8, "b"), _result(0.8, "c"), _result(float("nan"), "d")]
    assert best_trial(results).params == {"model__name": "b"}
    assert best_trial(list(reversed(results))).params == {"model__name": "c"}
    assert best_trial([_result(float("nan"), "x"), _result(float("nan"), "y")]).params == {"model__name": "x"}
    with pytest.raises(ConfigError, match="no candidates"):
        best_trial([])


@pytest.mark.parametrize(
    ("search", "needle"),
    [
        ({"param_grid": {"max_depthh": [2]}}, r"estimator\.search\.param_grid\.max_depthh"),
        ({"param_grid": {"learning_rate": [0.1, -5]}}, r"estimator\.search\.param_grid\.learning_rate.*-5"),
    ],
)
def test_bad_grid_is_named(base_settings, search: dict, needle: str) -> None:
    settings = with_search(base_settings, **search)
    with pytest.raises(ConfigError, match=needle):
        enumerate_trials(settings, build_pipeline(settings))


@pytest.mark.slow  # a Prefect flow run each, and a 2-process LocalCluster
def test_dask_trials_match_the_sequential_run_and_gridsearchcv(prefect_harness, churn, base_settings) -> None:
    from flows.search import run_trials

    sequential = run_trials(with_search(base_settings), churn)
    on_dask = run_trials(with_search(base_settings, parallel="dask", n_workers=2), churn)

    # the trials really ran on the cluster's two worker processes, not in the flow's process
    assert sequential.workers == [""] * 4
    assert all(w.startswith("tcp://") for w in on_dask.workers), on_dask.workers
    assert len(set(on_dask.workers)) == 2, on_dask.workers

    assert on_dask.trained.best_params == sequential.trained.best_params
    assert [t.params for t in on_dask.trials] == [t.params for t in sequential.trials]
    np.testing.assert_allclose(
        [t.mean_score for t in on_dask.trials], [t.mean_score for t in sequential.trials], rtol=0, atol=1e-12
    )
    X, y = xy(churn, base_settings)
    assert np.array_equal(
        on_dask.trained.pipeline.predict_proba(X), sequential.trained.pipeline.predict_proba(X)
    )

    # ... and the winner is GridSearchCV's (through run_search, the in-process path)
    settings = with_search(base_settings)
    refit, best_params, table = run_search(build_pipeline(settings), X, y, settings)
    assert on_dask.trained.best_params == best_params
    pd.testing.assert_frame_equal(
        on_dask.trained.search_results.drop(columns="mean_fit_time"),
        table.drop(columns="mean_fit_time"),
        check_dtype=False,
        rtol=0,
        atol=1e-12,
    )
    assert np.array_equal(on_dask.trained.pipeline.predict_proba(X), refit.predict_proba(X))


@pytest.mark.slow
def test_unreachable_dask_scheduler_is_a_config_error(
    prefect_harness, churn, base_settings, monkeypatch
) -> None:
    import dask

    from flows.search import DASK_ADDRESS_ENV, run_trials

    # the address is the machine's (environment), never the repository's
    monkeypatch.setenv(DASK_ADDRESS_ENV, "tcp://127.0.0.1:9")
    settings = with_search(base_settings, parallel="dask")
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ConfigError, match=DASK_ADDRESS_ENV),
    ):
        run_trials(settings, churn.iloc[:200])
