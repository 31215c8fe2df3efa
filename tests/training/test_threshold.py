"""The decision rule of a trained model, chosen on a validation split of the TRAINING rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gitops_ml.errors import DataError
from gitops_ml.evaluation.decision import decide
from gitops_ml.training.pipeline import prepare_features, train_model
from gitops_ml.training.threshold import carve_validation, fit_decision_rule

COSTS = {"false_positive": 1.0, "false_negative": 8.0}


def test_binary_with_costs_chooses_a_threshold_on_validation_rows_only(frame, make_settings):
    settings = make_settings(evaluation={"costs": COSTS})
    train = frame.iloc[:400]
    holdout = frame.iloc[400:]
    model = train_model(train, settings)
    rule = fit_decision_rule(model.pipeline, train, settings)
    assert rule is not None and rule.kind == "threshold" and rule.threshold is not None
    assert rule.validation_rows == 80  # threshold_validation_size 0.2 of the 400 training rows
    assert rule.threshold < 0.5  # a miss costs 8 false alarms
    assert rule.validation_cost is not None and rule.default_cost is not None
    assert rule.validation_cost <= rule.default_cost
    # serving and the PR check decide through the same function
    proba = model.pipeline.predict_proba(prepare_features(holdout, settings))
    decided = decide(proba, model.pipeline.classes_, rule)
    assert (decided == 1).sum() > (model.pipeline.predict(prepare_features(holdout, settings)) == 1).sum()


def test_time_column_carves_the_newest_training_rows(frame, make_settings):
    settings = make_settings(evaluation={"costs": COSTS, "threshold_validation_size": 0.3})
    fit_rows, validation = carve_validation(frame, settings)
    assert len(validation) == round(len(frame) * 0.3) and len(fit_rows) + len(validation) == len(frame)
    assert (
        pd.to_datetime(validation["snapshot_date"]).min() >= pd.to_datetime(fit_rows["snapshot_date"]).max()
    )
    assert not set(validation["customer_id"]) & set(fit_rows["customer_id"])


def test_without_a_time_column_the_validation_rows_are_stratified(frame, make_settings):
    settings = make_settings(
        dataset={"time_column": None}, split={"strategy": "stratified"}, evaluation={"costs": COSTS}
    )
    _, validation = carve_validation(frame.drop(columns=["snapshot_date"]), settings)
    assert abs(validation["churned"].mean() - frame["churned"].mean()) < 0.02


def test_string_labels_keep_their_positive_class(frame, make_settings):
    labelled = frame.assign(churned=np.where(frame["churned"] == 1, "left", "stayed"))
    settings = make_settings(dataset={"positive_label": "left"}, evaluation={"costs": COSTS})
    model = train_model(labelled, settings)
    rule = fit_decision_rule(model.pipeline, labelled, settings)
    assert rule is not None and rule.positive_label == "left"
    decided = decide(
        model.pipeline.predict_proba(prepare_features(labelled, settings)), model.pipeline.classes_, rule
    )
    assert set(decided.tolist()) <= {"left", "stayed"}


def test_no_costs_no_threshold_and_regression_never_has_one(frame, make_settings):
    binary = make_settings()
    model = train_model(frame, binary)
    assert fit_decision_rule(model.pipeline, frame, binary) is None
    regression = make_settings(
        dataset={"target": "monthly_charges", "task": "regression", "positive_label": None},
        features={"numeric": ["tenure_months", "support_calls"], "categorical": ["plan"]},
        estimator={"class_path": "sklearn.linear_model.Ridge", "params": {}},
        evaluation={"primary_metric": "rmse", "costs": {"under_prediction": 2.0, "over_prediction": 1.0}},
    )
    ridge = train_model(frame, regression)
    assert fit_decision_rule(ridge.pipeline, frame, regression) is None


def test_multiclass_with_a_matrix_decides_by_expected_cost(frame, make_settings):
    settings = make_settings(
        dataset={"target": "plan", "task": "multiclass", "positive_label": None},
        features={"categorical": ["contract_type", "payment_method", "region"]},
        evaluation={"primary_metric": "f1_macro", "costs": {"matrix": {"premium": {"basic": 30}}}},
    )
    model = train_model(frame, settings)
    rule = fit_decision_rule(model.pipeline, frame, settings)
    assert rule is not None and rule.kind == "min_expected_cost"
    assert rule.cost_matrix == {"premium": {"basic": 30.0}}


def test_too_few_rows_of_a_class_is_a_data_error_naming_the_key(frame, make_settings):
    settings = make_settings(dataset={"time_column": None}, evaluation={"costs": COSTS})
    tiny = pd.concat([frame[frame["churned"] == 0].head(20), frame[frame["churned"] == 1].head(1)])
    with pytest.raises(DataError, match="evaluation.threshold_validation_size: cannot carve"):
        carve_validation(tiny.drop(columns=["snapshot_date"]), settings)
