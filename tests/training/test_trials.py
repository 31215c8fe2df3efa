"""training/trials.py on its own: the search taken apart into trials gives scikit-learn's answer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import ParameterGrid, ParameterSampler

from gitops_ml.errors import ConfigError
from gitops_ml.training.pipeline import build_pipeline, prepare_features, train_model, training_target
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

GRID = {"max_depth": [2, 3], "learning_rate": [0.1, 0.3]}


def _settings(make_settings, **search):
    return make_settings(
        estimator={
            "params": {"max_iter": 10, "random_state": 0},
            "search": {"param_grid": GRID, "cv": 3, **search},
        }
    )


def _trial(mean: float, name: str) -> TrialResult:
    return TrialResult(
        params={"model__max_depth": name},
        mean_score=mean,
        std_score=0.0,
        fold_scores=(mean,),
        fit_seconds=0.0,
    )


def test_grid_trials_are_scikit_learns_candidates_in_order(make_settings):
    settings = _settings(make_settings, method="grid")
    pipeline = build_pipeline(settings)
    trials = enumerate_trials(settings, pipeline)
    expected = list(ParameterGrid({"model__max_depth": [2, 3], "model__learning_rate": [0.1, 0.3]}))
    assert trials == expected
    assert config_params(settings, pipeline, trials[0]) == {
        "max_depth": expected[0]["model__max_depth"],
        "learning_rate": expected[0]["model__learning_rate"],
    }


def test_random_trials_are_seeded_and_capped_at_the_grid(make_settings):
    settings = _settings(make_settings, method="random", n_iter=3, seed=7)
    pipeline = build_pipeline(settings)
    grid = {"model__max_depth": [2, 3], "model__learning_rate": [0.1, 0.3]}
    assert enumerate_trials(settings, pipeline) == list(ParameterSampler(grid, 3, random_state=7))
    capped = _settings(make_settings, method="random", n_iter=50, seed=7)
    assert len(enumerate_trials(capped, build_pipeline(capped))) == 4


def test_a_bad_grid_key_names_the_config_key(make_settings):
    settings = make_settings(estimator={"search": {"param_grid": {"no_such_param": [1, 2]}}})
    with pytest.raises(ConfigError, match="no_such_param"):
        enumerate_trials(settings, build_pipeline(settings))


def test_trials_pick_the_winner_and_scores_the_search_picks(frame: pd.DataFrame, make_settings):
    settings = _settings(make_settings, method="grid")
    pipeline = build_pipeline(settings)
    X, y = prepare_features(frame, settings), training_target(frame, settings)
    splits = cv_splits(settings, X, y)
    assert len(splits) == 3 and all(len(set(tr) & set(te)) == 0 for tr, te in splits)
    results = [score_trial(settings, X, y, params, splits) for params in enumerate_trials(settings, pipeline)]
    searched = train_model(frame, settings)  # GridSearchCV on the same settings
    best = best_trial(results)
    assert config_params(settings, pipeline, best.params) == searched.best_params
    ours = results_frame(settings, pipeline, results)
    theirs = searched.search_results
    assert theirs is not None
    assert ours["rank_test_score"].tolist() == theirs["rank_test_score"].tolist()
    np.testing.assert_allclose(ours["mean_test_score"], theirs["mean_test_score"], rtol=1e-9)
    np.testing.assert_allclose(ours["std_test_score"], theirs["std_test_score"], rtol=1e-9)
    refit = fit_best(settings, X, y, best.params)
    np.testing.assert_allclose(refit.predict_proba(X), searched.pipeline.predict_proba(X), rtol=1e-9)


def test_ties_go_to_the_earliest_trial_and_nan_ranks_last():
    assert (
        best_trial([_trial(0.7, "a"), _trial(0.8, "b"), _trial(0.8, "c")]).params["model__max_depth"] == "b"
    )
    assert best_trial([_trial(math.nan, "a"), _trial(0.1, "b")]).params["model__max_depth"] == "b"
    assert best_trial([_trial(math.nan, "a"), _trial(math.nan, "b")]).params["model__max_depth"] == "a"
    with pytest.raises(ConfigError, match="no candidates"):
        best_trial([])


def test_without_a_search_section_trials_refuse(make_settings):
    settings = make_settings()
    with pytest.raises(ConfigError, match="estimator.search: not configured"):
        enumerate_trials(settings, build_pipeline(settings))
