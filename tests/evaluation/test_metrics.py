from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.metrics import (
    METRIC_DIRECTION,
    TASK_METRICS,
    Predictions,
    compute_metrics,
    metric_notes,
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
    assert list(got) == list(TASK_METRICS["binary"])
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
