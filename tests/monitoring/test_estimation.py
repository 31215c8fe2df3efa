"""Early warning before labels: estimation from probabilities, the calibration check, the policy hook."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from gitops_ml.config import EarlyWarningConfig, MonitoringConfig
from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.metrics import Predictions
from gitops_ml.monitoring.drift import ReferenceProfile, build_reference
from gitops_ml.monitoring.estimation import (
    CalibrationSample,
    EstimateResult,
    _draw_metric,
    calibration_sample,
    estimate_window,
    estimation_metric,
    served_outcomes,
)
from gitops_ml.monitoring.policy import decide, make_record
from gitops_ml.monitoring.report import render_monitor_report

CLASSES = np.array(["no", "yes"], dtype=object)


def calibrated(n: int, seed: int, low: float = 0.0, high: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(low, high, n)
    return score, rng.random(n) < score


def holdout(score: np.ndarray, truth: np.ndarray) -> Predictions:
    return Predictions(
        np.where(truth, "yes", "no").astype(object),
        np.where(score >= 0.5, "yes", "no").astype(object),
        score,
        "binary",
        classes=CLASSES,
        positive_label="yes",
    )


@pytest.fixture
def sample() -> CalibrationSample:
    found = calibration_sample(holdout(*calibrated(3000, seed=1)))
    assert found is not None
    return found


def test_draws_through_the_kernels_match_scikit_learn_when_the_labels_are_certain():
    rng = np.random.default_rng(0)
    truth = rng.random(400) < 0.3
    decided = rng.random(400) < 0.4
    score = truth.astype(float)  # probability 0 or 1: every draw is exactly these labels
    f1 = _draw_metric("binary", "f1", score, decided, 5, seed=0)
    assert np.allclose(f1, f1_score(truth, decided))
    mixed = np.where(truth, 0.9, 0.2)
    auc = _draw_metric("binary", "roc_auc", np.r_[mixed, 1.0, 0.0], np.r_[decided, True, False], 200, 0)
    assert np.isfinite(auc).all()
    # expected accuracy in closed form: each row is right with p (decided positive) or 1 - p
    p = rng.uniform(0, 1, 2000)
    d = p > 0.5
    acc = _draw_metric("binary", "accuracy", p, d, 400, seed=3)
    expected = float(np.mean(np.where(d, p, 1 - p)))
    assert abs(acc.mean() - expected) < 4 * acc.std() / math.sqrt(acc.size)
    # and one draw scored by scikit-learn lands inside the estimated range
    labels = np.random.default_rng(9).random(2000) < p
    auc_draws = _draw_metric("binary", "roc_auc", p, d, 300, seed=4)
    assert np.quantile(auc_draws, 0.001) <= roc_auc_score(labels, p) <= np.quantile(auc_draws, 0.999)


def test_a_calibrated_model_warns_before_labels_when_traffic_moves_where_it_is_unsure(sample):
    # window: scores near 0.5 (covariate shift into the uncertain region), no labels at all
    score, truth = calibrated(2000, seed=2, low=0.3, high=0.7)
    decided = score >= 0.5
    result = estimate_window("binary", "accuracy", score, decided, sample, baseline=None, draws=300)
    assert result.status == "estimated"
    assert result.calibration is not None and result.calibration.calibrated, result.calibration
    # the baseline is the reference's realized accuracy (~0.75); the window's is ~0.60
    assert result.baseline == pytest.approx(result.calibration.reference_realized)
    assert result.value == pytest.approx(np.mean(np.where(decided, score, 1 - score)), abs=0.01)
    assert result.warning, result.reason
    assert "entirely above max_performance_drop 0.05" in result.reason
    # labels arrive later: estimated and realized on the same rows, side by side
    later = estimate_window(
        "binary",
        "accuracy",
        score,
        decided,
        sample,
        baseline=None,
        labelled_mask=np.ones(score.size, dtype=bool),
        labelled_hit=truth,
    )
    assert later.labelled == 2000
    assert later.labelled_ci_low <= later.realized <= later.labelled_ci_high
    assert later.realized == pytest.approx(float(np.mean(truth == decided)))


def test_a_window_like_the_reference_gives_no_warning(sample):
    score, _ = calibrated(2000, seed=5)
    result = estimate_window("binary", "roc_auc", score, score >= 0.5, sample, baseline=None)
    assert result.status == "estimated" and not result.warning, result.reason
    assert result.ci_low <= result.value <= result.ci_high


def test_an_overconfident_model_is_not_calibrated_and_never_warns():
    true_p, truth = calibrated(3000, seed=1)
    overconfident = 1 / (1 + np.exp(-4 * np.log(true_p / (1 - true_p))))  # sharpened log-odds
    sample = calibration_sample(holdout(overconfident, truth))
    assert sample is not None
    score, _ = calibrated(2000, seed=2, low=0.3, high=0.7)
    result = estimate_window("binary", "accuracy", score, score >= 0.5, sample, baseline=0.9)
    assert result.status == "not valid"
    assert not result.warning
    assert result.calibration is not None and not result.calibration.calibrated
    assert "calibration error" in result.reason and "above the maximum" in result.reason


def test_multiclass_estimates_accuracy_from_the_served_class_probability():
    rng = np.random.default_rng(0)
    classes = np.array(["a", "b", "c"], dtype=object)
    proba = rng.dirichlet([2, 2, 2], 3000)
    truth = np.array([rng.choice(classes, p=row) for row in proba], dtype=object)
    preds = Predictions(truth, classes[proba.argmax(axis=1)], proba, "multiclass", classes=classes)
    sample = calibration_sample(preds)
    assert sample is not None and sample.decided is None
    top = proba.max(axis=1)
    result = estimate_window("multiclass", "accuracy", top, None, sample, baseline=None)
    assert result.status == "estimated", result.reason
    assert result.value == pytest.approx(top.mean(), abs=0.01)
    assert estimation_metric("multiclass", None, "f1_macro") == "accuracy"
    with pytest.raises(ConfigError, match=r"monitoring.early_warning.metric: 'f1_macro' cannot be estimated"):
        estimation_metric("multiclass", "f1_macro", "f1_macro")


def test_regression_says_that_nothing_is_estimated():
    assert estimation_metric("regression", None, "rmse") is None
    result = estimate_window("regression", None, np.ones(10), None, None, baseline=1.0)
    assert result.status == "not estimated" and not result.warning
    assert "regression: nothing is estimated before labels" in result.reason


def test_a_model_without_a_calibration_sample_is_not_estimated():
    result = estimate_window("binary", "roc_auc", np.full(10, 0.5), np.zeros(10, bool), None, baseline=0.8)
    assert result.status == "not estimated"
    assert "no calibration sample" in result.reason and "retrain" in result.reason


def test_costs_cannot_be_estimated_and_say_which_key():
    with pytest.raises(ConfigError, match=r"monitoring.early_warning.metric: 'expected_cost' needs costs"):
        estimation_metric("binary", "expected_cost", "roc_auc")


def test_served_outcomes_match_labels_by_value_and_keep_unlabelled_rows():
    decided, mask, hit = served_outcomes(
        "binary",
        np.array(["yes", "no", "no"], dtype=object),
        np.array(["no", None, "no"], dtype=object),
        CLASSES,
        "yes",
    )
    assert decided is not None
    assert decided.tolist() == [True, False, False]
    assert mask.tolist() == [True, False, True]
    assert hit.tolist() == [False, False]


def test_the_sample_and_the_result_round_trip_through_json(sample):
    import pandas as pd

    frame = pd.DataFrame({"x": np.arange(50.0)})
    profile = build_reference(frame, ["x"], [], calibration=sample)
    again = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again.calibration is not None
    assert np.allclose(again.calibration.score, sample.score, atol=1e-6)
    assert again.calibration.hit.tolist() == sample.hit.tolist()
    old = profile.to_dict()
    del old["calibration"]  # a profile written before early warnings existed
    assert ReferenceProfile.from_dict(old).calibration is None
    score, _ = calibrated(500, seed=2)
    result = estimate_window("binary", "accuracy", score, score >= 0.5, sample, baseline=None)
    assert EstimateResult.from_dict(json.loads(json.dumps(result.to_dict()))) == dataclasses.replace(result)


def _warning_window(make_window, sample):
    score, _ = calibrated(2000, seed=2, low=0.3, high=0.7)
    estimate = estimate_window("binary", "accuracy", score, score >= 0.5, sample, baseline=None)
    assert estimate.warning
    return dataclasses.replace(make_window(0), estimate=estimate)


def test_an_early_warning_is_a_warning_not_a_retrain_trigger_by_default(make_window, sample):
    window = _warning_window(make_window, sample)
    cfg = MonitoringConfig(consecutive_bad_windows=1)
    decision = decide([], window, cfg, window.window_end, None)
    assert (decision.action, decision.bad_window) == ("none", False)
    assert any(r.startswith("early warning (a warning, not a retrain trigger)") for r in decision.reasons)
    record = make_record(window, decision, created_at=window.window_end)
    assert record.early_warning and record.to_dict()["early_warning"] is True
    report = render_monitor_report(window, decision, [record], model_version="v1")
    assert "### Early warning: performance estimated before labels" in report
    assert "**WARNING**" in report
    assert "**calibrated**" in report
    assert "No labels yet in this window" in report

    opted_in = MonitoringConfig(consecutive_bad_windows=1, early_warning=EarlyWarningConfig(retrain=True))
    decision = decide([], window, opted_in, window.window_end, None)
    assert decision.action == "retrain"
    assert any("monitoring.early_warning.retrain is on" in r for r in decision.reasons)
