"""Hyperparameter trials one at a time: the pieces of scikit-learn's search, taken apart.

`search.run_search` hands the whole search to GridSearchCV/RandomizedSearchCV. Here the same
search is split into independent trials (one candidate parameter set scored on every CV fold)
so an orchestrator can run them anywhere (e.g. Dask workers through prefect-dask) and gather
the results. Every choice reproduces scikit-learn's: the same candidates in the same order
(ParameterGrid / seeded ParameterSampler), the same seeded folds, the same scorer, the same
winner (highest mean score, ties to the earliest candidate, as `best_params_` picks by
`rank_test_score`) and the same refit. So the winner and its predictions do not depend on
where the trials ran.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, ParameterGrid, ParameterSampler, StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from gitops_ml.config import SearchConfig, Settings
from gitops_ml.errors import ConfigError
from gitops_ml.training.pipeline import build_pipeline
from gitops_ml.training.search import RESULT_COLUMNS, check_param_values, default_scoring, resolve_param_grid

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class TrialResult:
    """One candidate scored on every fold. `params` are pipeline paths (`model__max_depth`)."""

    params: dict[str, Any]
    mean_score: float
    std_score: float
    fold_scores: tuple[float, ...]
    fit_seconds: float  # summed over the folds


def search_config(settings: Settings) -> SearchConfig:
    cfg = settings.estimator.search
    if cfg is None:
        raise ConfigError("estimator.search: not configured")
    return cfg


def search_scoring(settings: Settings) -> str:
    """The scorer name search.py uses; ConfigError naming the key when scikit-learn does not know it."""
    scoring = search_config(settings).scoring or default_scoring(settings.dataset.task)
    try:
        get_scorer(scoring)
    except ValueError as exc:
        raise ConfigError(f"estimator.search.scoring: unknown scorer '{scoring}'") from exc
    return scoring


def _pipeline_grid(settings: Settings, pipeline: Pipeline) -> tuple[dict[str, list[Any]], dict[str, str]]:
    cfg = search_config(settings)
    mapping = resolve_param_grid(pipeline, cfg.param_grid)
    check_param_values(pipeline, cfg.param_grid, mapping)
    # Same dict, same key order as run_search builds: ParameterSampler's draws depend on it.
    return {mapping[key]: values for key, values in cfg.param_grid.items()}, mapping


def enumerate_trials(settings: Settings, pipeline: Pipeline) -> list[dict[str, Any]]:
    """The candidates GridSearchCV/RandomizedSearchCV would try, in their order, keyed by pipeline path.

    Grid: every combination. Random: `n_iter` seeded draws, capped at the grid size (as
    run_search does; sampling more than the grid would only warn). Bad keys, empty lists and
    invalid values raise ConfigError naming `estimator.search.param_grid.<key>`.
    """
    cfg = search_config(settings)
    grid, _ = _pipeline_grid(settings, pipeline)
    candidates = ParameterGrid(grid)
    if cfg.method == "grid":
        return list(candidates)
    return list(ParameterSampler(grid, min(cfg.n_iter, len(candidates)), random_state=cfg.seed))


def config_params(settings: Settings, pipeline: Pipeline, params: dict[str, Any]) -> dict[str, Any]:
    """Pipeline-path params back to the keys written in config (`model__max_depth` -> `max_depth`)."""
    _, mapping = _pipeline_grid(settings, pipeline)
    reverse = {full: key for key, full in mapping.items()}
    return {reverse[name]: value for name, value in params.items()}


def cv_splits(settings: Settings, X: pd.DataFrame, y: pd.Series) -> list[Split]:
    """The seeded folds run_search uses (stratified for classification), as index arrays."""
    cfg = search_config(settings)
    splitter_cls = KFold if settings.dataset.task == "regression" else StratifiedKFold
    splitter = splitter_cls(n_splits=cfg.cv, shuffle=True, random_state=cfg.seed)
    return list(splitter.split(X, y))


def _thread_limit(settings: Settings) -> contextlib.AbstractContextManager[Any]:
    threads = settings.estimator.threads
    return threadpool_limits(limits=threads) if threads is not None else contextlib.nullcontext()


def _candidate(settings: Settings, params: dict[str, Any]) -> Pipeline:
    # As scikit-learn's _fit_and_score: a fresh clone per fit, parameter values cloned too.
    return build_pipeline(settings).set_params(**clone(params, safe=False))


def score_trial(
    settings: Settings, X: pd.DataFrame, y: pd.Series, params: dict[str, Any], splits: Sequence[Split]
) -> TrialResult:
    """Fit `params` on each fold's training part and score its test part with the search scorer."""
    scorer = get_scorer(search_scoring(settings))
    scores: list[float] = []
    fit_seconds = 0.0
    with _thread_limit(settings):
        for train_idx, test_idx in splits:
            model = _candidate(settings, params)
            started = time.perf_counter()
            model.fit(X.iloc[train_idx], y.iloc[train_idx])
            fit_seconds += time.perf_counter() - started
            scores.append(float(scorer(model, X.iloc[test_idx], y.iloc[test_idx])))
    # np.average/np.std over the fold axis, as GridSearchCV's cv_results_ computes them.
    fold = np.asarray(scores)
    return TrialResult(
        params=dict(params),
        mean_score=float(np.average(fold)),
        std_score=float(np.sqrt(np.average((fold - np.average(fold)) ** 2))),
        fold_scores=tuple(scores),
        fit_seconds=fit_seconds,
    )


def _ranks(results: Sequence[TrialResult]) -> np.ndarray:
    means = np.array([r.mean_score for r in results], dtype=float)
    if np.isnan(means).all():
        return np.ones(len(means), dtype=np.int32)
    # NaN ranks last, equal means share the lowest rank: scikit-learn's rank_test_score.
    means = np.nan_to_num(means, nan=np.nanmin(means) - 1)
    return rankdata(-means, method="min").astype(np.int32)


def best_trial(results: Sequence[TrialResult]) -> TrialResult:
    """Highest mean score; ties go to the earliest trial (GridSearchCV: argmin of rank_test_score)."""
    if not results:
        raise ConfigError("estimator.search: no candidates to choose from")
    return results[int(np.argmin(_ranks(results)))]


def results_frame(settings: Settings, pipeline: Pipeline, results: Sequence[TrialResult]) -> pd.DataFrame:
    """One row per trial, sorted by rank, with the columns run_search reports (params keyed as in config)."""
    n_folds = search_config(settings).cv
    frame = pd.DataFrame(
        {
            "rank_test_score": _ranks(results),
            "mean_test_score": [r.mean_score for r in results],
            "std_test_score": [r.std_score for r in results],
            "mean_fit_time": [r.fit_seconds / n_folds for r in results],
        }
    )[RESULT_COLUMNS]
    keyed = [config_params(settings, pipeline, r.params) for r in results]
    for key in search_config(settings).param_grid:
        frame[key] = [params[key] for params in keyed]
    frame = frame.sort_values(["rank_test_score", "mean_test_score"], ascending=[True, False], kind="stable")
    return frame.reset_index(drop=True)


def fit_best(settings: Settings, X: pd.DataFrame, y: pd.Series, params: dict[str, Any]) -> Pipeline:
    """The refit GridSearchCV does: the configured pipeline with `params`, fitted on all of X."""
    model = _candidate(settings, params)
    with _thread_limit(settings):
        model.fit(X, y)
    return model
