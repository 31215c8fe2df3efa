"""`hyperparameter-search` subflow: one Prefect task per trial, on Dask through prefect-dask.

Wiring only; the trials themselves are `gitops_ml.training.trials`. The task runner follows
`estimator.search`: `parallel: dask` runs the trials on a Dask cluster through prefect-dask's
DaskTaskRunner (a temporary LocalCluster of `n_workers` single-threaded worker processes, or
the scheduler at `dask_address`); otherwise they run one after another in the flow's process.
The candidates, folds, scorer and tie-break are scikit-learn's, so the winner is the same
wherever the trials ran.

A remote Dask cluster's workers must have this project installed (they import `flows.search`
and `gitops_ml` to run a trial) and must reach the same Prefect API as the flow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from sklearn.pipeline import Pipeline

from flows.tasks import train_task
from gitops_ml.config import SearchConfig, Settings
from gitops_ml.errors import ConfigError
from gitops_ml.training.pipeline import TrainedModel, build_pipeline, prepare_features, training_target
from gitops_ml.training.trials import (
    Split,
    TrialResult,
    best_trial,
    config_params,
    cv_splits,
    enumerate_trials,
    fit_best,
    results_frame,
    score_trial,
    search_config,
)


@dataclass(frozen=True)
class SearchRun:
    trained: TrainedModel
    trials: list[TrialResult]  # in candidate order
    workers: list[str]  # Dask worker address per trial; "" where it ran in the flow's own process


def uses_dask_trials(settings: Settings) -> bool:
    cfg = settings.estimator.search
    return cfg is not None and cfg.parallel == "dask"


def task_runner_for(cfg: SearchConfig) -> TaskRunner[Any]:
    """DaskTaskRunner for `parallel: dask` (by address, or a LocalCluster); else one trial at a time."""
    if cfg.parallel != "dask":
        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner  # imports distributed: only when asked for

    if cfg.dask_address:
        return DaskTaskRunner(address=cfg.dask_address)
    # One thread per worker: a trial's fit is single-threaded (estimator.threads), and
    # processes sidestep the GIL. No dashboard: its fixed port clashes between concurrent runs.
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": cfg.n_workers, "threads_per_worker": 1, "processes": True,
                        "dashboard_address": None}
    )


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # ValueError: not inside a Dask worker
        return ""


@task(name="score-trial", task_run_name="trial-{index}", cache_policy=NO_CACHE)
def score_trial_task(index: int, settings: Settings, X: pd.DataFrame, y: pd.Series, params: dict[str, Any],
                     splits: list[Split]) -> tuple[TrialResult, str]:
    return score_trial(settings, X, y, params, splits), _worker_address()


@task(name="fit-best", cache_policy=NO_CACHE)
def fit_best_task(settings: Settings, X: pd.DataFrame, y: pd.Series, params: dict[str, Any]) -> Pipeline:
    return fit_best(settings, X, y, params)


def run_trials(settings: Settings, train_df: pd.DataFrame) -> SearchRun:
    """Run the configured search as a `hyperparameter-search` (sub)flow run and refit the winner.

    The flow is built here, not at import, because its task runner comes from config. Its
    inputs are closed over rather than passed as flow parameters: Prefect would try to
    JSON-encode a DataFrame parameter for the API.
    """
    cfg = search_config(settings)

    @flow(name="hyperparameter-search", task_runner=task_runner_for(cfg))
    def hyperparameter_search() -> SearchRun:
        logger = get_run_logger()
        started = time.perf_counter()
        pipeline = build_pipeline(settings)
        candidates = enumerate_trials(settings, pipeline)  # bad config fails here, before any cluster starts
        X = prepare_features(train_df, settings)
        y = training_target(train_df, settings)
        splits = cv_splits(settings, X, y)
        logger.info("%s search: %d candidates x %d folds, parallel %s", cfg.method, len(candidates), cfg.cv,
                    cfg.parallel)
        futures = [score_trial_task.submit(i, settings, X, y, params, splits) for i, params in enumerate(candidates)]
        outcomes = [future.result() for future in futures]
        results = [result for result, _ in outcomes]
        best = best_trial(results)
        best_params = config_params(settings, pipeline, best.params)
        logger.info("best mean score %.4f with %s", best.mean_score, best_params)
        trained = TrainedModel(
            pipeline=fit_best_task(settings, X, y, best.params),
            best_params=best_params,
            search_results=results_frame(settings, pipeline, results),
            fit_seconds=time.perf_counter() - started,
            feature_columns=list(settings.features.all),
        )
        return SearchRun(trained=trained, trials=results, workers=[worker for _, worker in outcomes])

    try:
        return hyperparameter_search()
    except OSError as exc:
        if not cfg.dask_address:
            raise
        # distributed raises OSError when the scheduler does not answer within its connect timeout.
        raise ConfigError(f"estimator.search.dask_address: cannot reach Dask scheduler: {exc}") from exc


def train_step(settings: Settings, train_df: pd.DataFrame) -> TrainedModel:
    """The PR check's training step: trials on Dask for `parallel: dask`, else the in-process train task."""
    if uses_dask_trials(settings):
        return run_trials(settings, train_df).trained
    return train_task(settings, train_df)
