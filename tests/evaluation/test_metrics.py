from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.metrics import (
    METRIC_DIRECTION,
    METRICS,
    TASK_METRICS,
    Predictions,
    applicable_metrics,
    compute_metrics,
    metric_names,
    metric_notes,
    metric_spec,
    per_class_metrics,
    predict,
    resolve_metrics,
)
from tests.evaluation.synthetic import binary_pair, multiclass_preds, regression_preds


def test_every_metric_has_a_direction():
    for names in TASK_METRICS.values():
        for name in names:
            assert METRIC_DIRECTION[name] in ("higher", "lower")


def test_binary_metrics_match_sklearn():
    cand, _ = binary_pair(n=800, seed=1)
    y, s, yp = cand.y_true, cand.y_score, cand.y_pred
    got = compute_metrics(cand)
    assert list(got) == [m for m in TASK_METRICS["binary"] if m != "expected_cost"]  # no costs given
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, s))
    assert got["f1"] == pytest.approx(skm.f1_score(y, yp))
    assert got["precision"] == pytest.approx(skm.precision_score(y, yp))
    assert got["recall"] == pytest.approx(skm.recall_score(y, yp))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, yp))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, s))
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, s))


def test_binary_positive_label_that_sorts_first():
    # "churn" < "stay": the positive class is the smaller label, so sklearn defaults would be wrong
    y = np.array(["churn", "stay", "stay", "churn", "stay", "stay"])
    p_churn = np.array([0.9, 0.2, 0.4, 0.6, 0.1, 0.7])
    preds = Predictions(
        y, np.where(p_churn >= 0.5, "churn", "stay"), p_churn, "binary", positive_label="churn"
    )
    got = compute_metrics(preds, ["roc_auc", "log_loss", "recall"])
    truth = (y == "churn").astype(int)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, p_churn))
    assert got["log_loss"] == pytest.approx(skm.log_loss(truth, p_churn))
    assert got["recall"] == 1.0


def test_multiclass_metrics_match_sklearn():
    preds = multiclass_preds()
    got = compute_metrics(preds)
    assert got["f1_macro"] == pytest.approx(skm.f1_score(preds.y_true, preds.y_pred, average="macro"))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(preds.y_true, preds.y_pred))
    assert got["log_loss"] == pytest.approx(skm.log_loss(preds.y_true, preds.y_score, labels=preds.classes))


def test_regression_metrics_match_sklearn():
    preds = regression_preds()
    got = compute_metrics(preds)
    assert got["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(preds.y_true, preds.y_pred)))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(preds.y_true, preds.y_pred))
    assert got["r2"] == pytest.approx(skm.r2_score(preds.y_true, preds.y_pred))


def test_one_class_gives_nan_auc_with_a_reason_not_an_exception():
    y = np.zeros(10, dtype=int)
    s = np.linspace(0.1, 0.9, 10)
    preds = Predictions(y, (s >= 0.5).astype(int), s, "binary", positive_label=1)
    got = compute_metrics(preds)
    assert math.isnan(got["roc_auc"]) and math.isnan(got["pr_auc"])
    assert not math.isnan(got["log_loss"]) and not math.isnan(got["accuracy"])
    notes = metric_notes(preds)
    assert "one class" in notes["roc_auc"]
    assert "no positive" in notes["pr_auc"]
    assert math.isnan(got["recall"]) and "no positive" in notes["recall"]
    assert "log_loss" not in notes


def test_unknown_metric_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError, match=r"evaluation\.metrics.*rmse.*binary"):
        resolve_metrics("binary", ["roc_auc", "rmse"])


def test_predict_takes_the_positive_class_column(fitted_pipeline, churn_frame):
    frame, y = churn_frame
    preds = predict(fitted_pipeline, frame, y, "binary", positive_label="yes")
    col = list(fitted_pipeline.classes_).index("yes")
    np.testing.assert_allclose(preds.y_score, fitted_pipeline.predict_proba(frame)[:, col])
    assert preds.positive_label == "yes"
    no = predict(fitted_pipeline, frame, y, "binary", positive_label="no")
    np.testing.assert_allclose(no.y_score, 1 - preds.y_score)
    assert compute_metrics(no, ["roc_auc"])["roc_auc"] == pytest.approx(
        compute_metrics(preds, ["roc_auc"])["roc_auc"]
    )


def test_predict_rejects_a_positive_label_the_model_never_saw(fitted_pipeline, churn_frame):
    frame, y = churn_frame
    with pytest.raises(ConfigError, match=r"dataset\.positive_label.*'maybe'"):
        predict(fitted_pipeline, frame, y, "binary", positive_label="maybe")


def test_predictions_validate_shapes():
    with pytest.raises(ValueError, match="binary y_score"):
        Predictions(
            np.array([0, 1]), np.array([0, 1]), np.array([[0.1, 0.9], [0.3, 0.7]]), "binary", positive_label=1
        )
    with pytest.raises(ValueError, match="never saw"):
        Predictions(
            np.array(["a", "z"]),
            np.array(["a", "b"]),
            np.full((2, 2), 0.5),
            "multiclass",
            classes=np.array(["a", "b"]),
        )


# --- the registry and the per-task metric sets -------------------------------------------------


def test_registry_lists_each_task_metric_with_direction_and_validity():
    assert metric_names("binary")[:2] == ["roc_auc", "pr_auc"]
    assert {
        "roc_auc_ovr",
        "balanced_accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "log_loss",
    } <= set(metric_names("multiclass"))
    assert metric_names("regression") == ["rmse", "mae", "r2", "mape", "median_ae", "expected_cost"]
    assert METRICS["binary"]["expected_cost"].valid_when == "`evaluation.costs` is set"
    for task in ("binary", "multiclass", "regression"):
        for name in metric_names(task):
            spec = METRICS[task][name]
            assert spec.direction == METRIC_DIRECTION[name]  # one direction per name across tasks
    assert METRICS["regression"]["mape"].valid_when == "every target value is > 0"
    assert METRICS["binary"]["roc_auc"].needs_probabilities
    assert METRICS["multiclass"]["f1_macro"].valid_when == "always"
    with pytest.raises(ValueError, match="unknown task"):
        metric_names("ranking")


def test_a_wrong_name_for_the_task_is_refused_with_the_valid_names():
    with pytest.raises(
        ConfigError,
        match=r"monitoring\.performance_metric: 'average_precision' is not a binary "
        r"metric \(valid: roc_auc, pr_auc",
    ):
        metric_spec("binary", "average_precision", field="monitoring.performance_metric")
    with pytest.raises(ConfigError, match=r"\['roc_auc', 'auc'\] not available for a regression task"):
        resolve_metrics("regression", ["rmse", "roc_auc", "auc"])


def test_new_multiclass_metrics_match_sklearn_with_string_labels():
    preds = multiclass_preds(classes=("setosa", "versicolor", "virginica"), seed=4)
    y, yp = preds.y_true, preds.y_pred
    got = compute_metrics(preds)
    assert got["roc_auc_ovr"] == pytest.approx(
        skm.roc_auc_score(y, preds.y_score, multi_class="ovr", labels=preds.classes)
    )
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, yp))
    for avg in ("macro", "weighted"):
        assert got[f"precision_{avg}"] == pytest.approx(skm.precision_score(y, yp, average=avg))
        assert got[f"recall_{avg}"] == pytest.approx(skm.recall_score(y, yp, average=avg))
        assert got[f"f1_{avg}"] == pytest.approx(skm.f1_score(y, yp, average=avg))


def test_multiclass_auc_with_a_class_missing_from_y_true_is_nan_with_a_reason():
    preds = multiclass_preds(n=300, seed=2)
    rows = preds.y_true != "c"
    sub = preds.subset(rows)
    got = compute_metrics(sub, ["roc_auc_ovr", "accuracy"])
    assert math.isnan(got["roc_auc_ovr"]) and not math.isnan(got["accuracy"])
    assert metric_notes(sub, ["roc_auc_ovr"]) == {"roc_auc_ovr": "undefined: class(es) c absent from y_true"}


def test_regression_mape_and_median_error_match_sklearn():
    preds = regression_preds()
    got = compute_metrics(preds)
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(preds.y_true, preds.y_pred))
    assert got["median_ae"] == pytest.approx(skm.median_absolute_error(preds.y_true, preds.y_pred))


def test_mape_needs_a_positive_target_and_is_left_out_of_the_defaults_otherwise():
    rng = np.random.default_rng(1)
    y = rng.normal(0, 5, 200)  # centred on zero: MAPE would explode or divide by zero
    preds = Predictions(y, y + rng.normal(0, 1, 200), None, "regression")
    assert "mape" not in applicable_metrics(preds, None)
    assert applicable_metrics(preds, ["mape", "rmse"]) == ["mape", "rmse"]  # asked for: shown as undefined
    got = compute_metrics(preds, ["mape", "rmse"])
    assert math.isnan(got["mape"]) and got["rmse"] > 0
    assert "values <= 0" in metric_notes(preds, ["mape"])["mape"]


def test_recall_without_positive_rows_is_undefined_but_precision_of_a_silent_model_is_zero():
    y = np.array([0, 0, 0, 0, 1, 1])
    silent = Predictions(y, np.zeros(6, dtype=int), np.full(6, 0.2), "binary", positive_label=1)
    assert compute_metrics(silent, ["precision", "recall"]) == {"precision": 0.0, "recall": 0.0}
    no_pos = silent.subset(y == 0)
    got = compute_metrics(no_pos, ["precision", "recall", "balanced_accuracy"])
    assert got["precision"] == 0.0 and math.isnan(got["recall"]) and got["balanced_accuracy"] == 1.0
    assert "no positive rows" in metric_notes(no_pos, ["recall"])["recall"]


def test_per_class_table_has_support_precision_recall_f1_largest_class_first():
    y = np.array(["b", "b", "b", "a", "a", "c"])
    yp = np.array(["b", "b", "a", "a", "c", "c"])
    preds = Predictions(y, yp, None, "multiclass", classes=np.array(["a", "b", "c", "d"]))
    rows = per_class_metrics(preds)
    assert [(r.label, r.support) for r in rows] == [("b", 3), ("a", 2), ("c", 1), ("d", 0)]
    b = rows[0]
    assert (b.precision, b.recall) == (1.0, pytest.approx(2 / 3))
    assert rows[1].f1 == pytest.approx(skm.f1_score(y, yp, labels=["a"], average="macro"))
    assert math.isnan(rows[3].recall) and rows[3].precision == 0.0
    assert rows[0].to_dict()["label"] == "b"


def test_metrics_that_need_probabilities_refuse_predictions_without_them():
    preds = Predictions(
        np.array(["a", "b"]), np.array(["a", "a"]), None, "multiclass", classes=np.array(["a", "b"])
    )
    assert compute_metrics(preds, ["accuracy"]) == {"accuracy": 0.5}
    assert applicable_metrics(preds, None) == [
        m
        for m in metric_names("multiclass")
        if not METRICS["multiclass"][m].needs_probabilities and m != "expected_cost"
    ]
    with pytest.raises(ConfigError, match="log_loss need predicted probabilities"):
        compute_metrics(preds, ["log_loss", "accuracy"])


def test_the_metrics_doc_lists_exactly_the_registry():
    from pathlib import Path

    from gitops_ml.evaluation.metrics import TASKS, metrics_table_markdown

    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    for task in TASKS:
        assert metrics_table_markdown(task) in doc, f"docs/metrics.md is out of date for {task}"
