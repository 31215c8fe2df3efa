"""Optional hyperparameter search (grid or seeded random) over the configured pipeline, in-process.

`estimator.search.parallel: dask` is served by the PR check's `hyperparameter-search` flow
(flows/search.py: one Prefect task per trial on prefect-dask), which reproduces this search
trial by trial (training/trials.py); the folds and the candidate list are seeded, so the
winner is the same either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ParameterGrid,
    RandomizedSearchCV,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline

from gitops_ml.config import Settings
from gitops_ml.errors import ConfigError

DEFAULT_SCORING = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "neg_root_mean_squared_error"}
RESULT_COLUMNS = ["rank_test_score", "mean_test_score", "std_test_score", "mean_fit_time"]


def default_scoring(task: str) -> str:
    return DEFAULT_SCORING[task]


def resolve_param_grid(
    pipeline: Pipeline, param_grid: dict[str, list[Any]], model_step: str = "model"
) -> dict[str, str]:
    """Map config keys to pipeline param names: bare names are estimator params (`max_depth`
    -> `model__max_depth`); names with `__` address any step (`preprocess__numeric__imputer__strategy`).
    Returns {config key: pipeline key}; ConfigError naming the key when it matches nothing."""
    valid = pipeline.get_params(deep=True)
    mapping: dict[str, str] = {}
    for key, values in param_grid.items():
        full = key if "__" in key else f"{model_step}__{key}"
        if full not in valid:
            raise ConfigError(f"estimator.search.param_grid.{key}: not a parameter of the pipeline ({full})")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"estimator.search.param_grid.{key}: expected a non-empty list of values")
        mapping[key] = full
    return mapping


def check_param_values(pipeline: Pipeline, grid: dict[str, list[Any]], mapping: dict[str, str]) -> None:
    # Fail on a bad candidate value now, with the key named, not as one of many CV fit errors.
    for key, values in grid.items():
        for value in values:
            candidate = clone(pipeline).set_params(**{mapping[key]: value})
            for _, step in candidate.steps:
                validate = getattr(step, "_validate_params", None)
                try:
                    if validate is not None:
                        validate()
                except (ValueError, TypeError) as exc:
                    raise ConfigError(
                        f"estimator.search.param_grid.{key}: value {value!r} is invalid: {exc}"
                    ) from exc


def run_search(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    settings: Settings,
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[Pipeline, dict[str, Any], pd.DataFrame]:
    """Search `estimator.search.param_grid`; return (refitted best pipeline, best params keyed
    as in config, one row per candidate sorted by rank)."""
    cfg = settings.estimator.search
    if cfg is None:
        raise ConfigError("estimator.search: not configured")
    say = progress or (lambda _message: None)
    mapping = resolve_param_grid(pipeline, cfg.param_grid)
    check_param_values(pipeline, cfg.param_grid, mapping)
    grid = {mapping[key]: values for key, values in cfg.param_grid.items()}
    scoring = cfg.scoring or default_scoring(settings.dataset.task)
    try:
        get_scorer(scoring)
    except ValueError as exc:
        raise ConfigError(f"estimator.search.scoring: unknown scorer '{scoring}'") from exc

    splitter_cls = StratifiedKFold if is_classifier(pipeline) else KFold
    cv = splitter_cls(n_splits=cfg.cv, shuffle=True, random_state=cfg.seed)
    common = {"scoring": scoring, "cv": cv, "refit": True, "n_jobs": None, "error_score": "raise"}
    n_candidates = len(ParameterGrid(grid))
    if cfg.method == "grid":
        search: GridSearchCV | RandomizedSearchCV = GridSearchCV(pipeline, grid, **common)
    else:
        n_candidates = min(cfg.n_iter, n_candidates)  # sampling more than the grid only warns
        search = RandomizedSearchCV(pipeline, grid, n_iter=n_candidates, random_state=cfg.seed, **common)
    say(f"{cfg.method} search: {n_candidates} candidates x {cfg.cv} folds, scoring {scoring}")
    search.fit(X, y)

    reverse = {full: key for key, full in mapping.items()}
    best_params = {reverse[k]: v for k, v in search.best_params_.items()}
    raw = search.cv_results_
    results = pd.DataFrame({col: raw[col] for col in RESULT_COLUMNS})
    for full, key in reverse.items():
        results.insert(len(results.columns), key, list(raw[f"param_{full}"]))
    results = results.sort_values(
        ["rank_test_score", "mean_test_score"], ascending=[True, False], kind="stable"
    )
    say(f"best {scoring} {search.best_score_:.4f} with {best_params}")
    return search.best_estimator_, best_params, results.reset_index(drop=True)
