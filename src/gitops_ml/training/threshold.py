"""The decision rule of a newly trained classifier (`evaluation.decision`), chosen on training rows.

Binary with `evaluation.costs`: a validation split is carved from the training rows (the newest
`threshold_validation_size` of them when there is a time column, else a stratified sample), a
copy of the pipeline is fitted on the rest, and the threshold of lowest cost on the validation
rows is kept for the model fitted on all training rows (scikit-learn's TunedThresholdClassifierCV
with a single split and refit, without wrapping the pipeline: the artifact stays a plain Pipeline
the serving fast path compiles). The holdout is never seen.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from gitops_ml.config import Settings
from gitops_ml.errors import DataError
from gitops_ml.evaluation.decision import DecisionRule, choose_threshold, rule_for
from gitops_ml.evaluation.metrics import positive_class
from gitops_ml.training.pipeline import prepare_features, training_target


def fit_decision_rule(pipeline: Pipeline, train_df: pd.DataFrame, settings: Settings) -> DecisionRule | None:
    """The rule to store with `pipeline` (fitted on `train_df`); None = the most probable class."""
    task, costs = settings.dataset.task, settings.evaluation.costs
    if task != "binary" or costs is None:
        return rule_for(task, costs)
    fit_rows, validation = carve_validation(train_df, settings)
    threads = settings.estimator.threads  # the same cap as the training fit (see train_model)
    with threadpool_limits(limits=threads) if threads is not None else contextlib.nullcontext():
        model = clone(pipeline).fit(prepare_features(fit_rows, settings), training_target(fit_rows, settings))
    classes = np.asarray(model.classes_)
    column = positive_class(classes, settings.dataset.positive_label)
    p = model.predict_proba(prepare_features(validation, settings))[:, column]
    truth = np.asarray(training_target(validation, settings)) == classes[column]
    return choose_threshold(truth, p, classes[column], costs)


def carve_validation(train_df: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to fit on, validation rows), both with both classes; DataError when that is impossible."""
    size = settings.evaluation.threshold_validation_size
    target, column = settings.dataset.target, settings.dataset.time_column
    y = training_target(train_df, settings)
    n_validation = round(len(train_df) * size)
    if column and column in train_df.columns:
        order = np.argsort(pd.to_datetime(train_df[column], errors="coerce").to_numpy(), kind="stable")
        newest = train_df.iloc[order]
        fit_rows, validation = (
            newest.iloc[: len(newest) - n_validation],
            newest.iloc[len(newest) - n_validation :],
        )
        if _both(fit_rows[target]) and _both(validation[target]):
            return fit_rows, validation
    counts = y.value_counts()
    if n_validation < 2 or len(train_df) - n_validation < 2 or counts.min() < 2:
        raise DataError(
            f"evaluation.threshold_validation_size: cannot carve a validation split with both classes of "
            f"'{target}' from {len(train_df):,} training rows (class counts {counts.to_dict()}); "
            "the cost-chosen threshold needs more rows of each class"
        )
    fit_rows, validation = train_test_split(
        train_df, test_size=n_validation, random_state=settings.split.seed, stratify=y
    )
    return fit_rows, validation


def _both(labels: pd.Series) -> bool:
    return labels.nunique() >= 2
