from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from gitops_ml.errors import ConfigError, DataError
from gitops_ml.evaluation.metrics import Predictions, compute_metrics
from gitops_ml.monitoring.performance import (
    PerformanceResult,
    check_monitor_metric,
    labelled_predictions,
    window_performance,
)

CLASSES = np.array([0, 1])


def _scores(n: int, signal: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    s = np.clip(0.3 + signal * (y - 0.3) + rng.normal(0, 0.2, n), 0.001, 0.999).round(2)  # ties on purpose
    return y, s


def _binary(y: np.ndarray, s: np.ndarray) -> tuple[Predictions, int]:
    """A window as the prediction store gives it: labels (NaN = not yet), served label, P(positive)."""
    served = np.where(s >= 0.5, 1, 0).astype(object)
    return labelled_predictions("binary", y, served, s, classes=CLASSES, positive_label=1)


def _perf(y, s, metric, baseline, **kwargs) -> PerformanceResult:
    preds, rows = _binary(np.asarray(y, dtype=float), np.asarray(s, dtype=float))
    return window_performance(preds, metric, baseline, rows=rows, **kwargs)


SKLEARN = {
    "roc_auc": lambda y, s: skm.roc_auc_score(y, s),
    "pr_auc": lambda y, s: skm.average_precision_score(y, s),
    "accuracy": lambda y, s: skm.accuracy_score(y, s >= 0.5),
    "f1": lambda y, s: skm.f1_score(y, s >= 0.5),
    "recall": lambda y, s: skm.recall_score(y, s >= 0.5),
    "brier": lambda y, s: skm.brier_score_loss(y, s),
    "log_loss": lambda y, s: skm.log_loss(y, s),
}


@pytest.mark.parametrize("metric", sorted(SKLEARN))
def test_point_estimate_matches_sklearn(metric):
    y, s = _scores(2_000, 0.3)
    result = _perf(y, s, metric, None, n_resamples=50)
    assert result.value == pytest.approx(SKLEARN[metric](y, s), rel=1e-9)
    assert result.ci_low <= result.value <= result.ci_high
    assert not result.decayed and "no baseline" in result.reason


def test_the_window_value_is_the_evaluation_engines_value_for_every_task():
    """One engine: the monitor's number for a metric is compute_metrics' number on the same rows."""
    rng = np.random.default_rng(5)
    y = rng.normal(50, 10, 400)
    pred = y + rng.normal(0, 3, 400)
    reg, rows = labelled_predictions("regression", y, pred, pred)
    for metric in ("rmse", "mae", "r2", "mape", "median_ae"):
        got = window_performance(reg, metric, None, rows=rows, n_resamples=50, min_labelled=10)
        assert got.value == compute_metrics(Predictions(y, pred, None, "regression"), [metric])[metric]
    classes = np.array(["bird", "cat", "dog"])
    truth = classes[rng.integers(0, 3, 400)]
    served = np.where(rng.random(400) < 0.7, truth, classes[rng.integers(0, 3, 400)])
    mc, _ = labelled_predictions(
        "multiclass", truth.astype(object), served.astype(object), None, classes=classes
    )
    got = window_performance(mc, "f1_macro", 0.9, n_resamples=50, min_labelled=10)
    assert got.value == pytest.approx(skm.f1_score(truth, served, average="macro"))
    assert got.drop == pytest.approx(0.9 - got.value)


def test_string_labels_and_json_round_tripped_numbers_match_the_models_classes():
    y, s = _scores(600, 0.4, seed=2)
    words = np.array(["no", "yes"])
    labels = words[y.astype(int)].astype(object)
    labels[::10] = None  # not labelled yet
    served = np.where(s >= 0.5, "yes", "no").astype(object)
    preds, rows = labelled_predictions("binary", labels, served, s, classes=words, positive_label="yes")
    assert rows == 600 and len(preds) == 540
    assert preds.positive_label == "yes"
    floats, _ = labelled_predictions("binary", y, np.where(s >= 0.5, 1.0, 0.0), s, classes=CLASSES)
    assert floats.y_true.dtype == CLASSES.dtype  # 1.0 from JSON is the class 1
    assert compute_metrics(floats, ["f1"]) == compute_metrics(_binary(y, s)[0], ["f1"])


def test_unlabelled_rows_count_in_coverage_only():
    y, s = _scores(1_000, 0.3)
    y_partial = y.copy()
    y_partial[600:] = np.nan
    result = _perf(y_partial, s, "roc_auc", 0.8, n_resamples=100, min_labelled=200)
    assert result.labelled == 600 and result.rows == 1_000 and result.label_coverage == pytest.approx(0.6)
    assert result.value == pytest.approx(skm.roc_auc_score(y[:600], s[:600]))


def test_insufficient_labels_is_never_decayed():
    y, s = _scores(1_000, 0.0)  # a useless model, far below the baseline
    y[150:] = np.nan
    result = _perf(y, s, "roc_auc", 0.9, min_labelled=200)
    assert result.status == "insufficient labels" and not result.decayed
    assert "150 labelled rows < min_labelled_rows 200" in result.reason
    one_class = _perf(np.zeros(500), s[:500], "roc_auc", 0.9, min_labelled=200)
    assert one_class.status == "insufficient labels" and not one_class.decayed
    assert "one class only (0 positive, 500 negative)" in one_class.reason
    # accuracy IS defined on one class (the engine's rule): it is assessed, not skipped
    assert _perf(np.zeros(500), s[:500], "accuracy", 0.9, min_labelled=200).status == "ok"


def test_decayed_only_when_the_whole_ci_of_the_drop_is_above_max_drop():
    y, s = _scores(3_000, 0.3)
    value = skm.roc_auc_score(y, s)
    clear = _perf(y, s, "roc_auc", value + 0.15, max_drop=0.05)
    assert clear.decayed and clear.drop == pytest.approx(0.15) and clear.drop_ci_low > 0.05
    # point estimate above max_drop, but the CI reaches below it: not (yet) decayed
    y_small, s_small = y[:250], s[:250]
    small_value = skm.roc_auc_score(y_small, s_small)
    borderline = _perf(y_small, s_small, "roc_auc", small_value + 0.06, max_drop=0.05, min_labelled=200)
    assert borderline.drop > 0.05 and borderline.drop_ci_low < 0.05 and not borderline.decayed
    assert "lower bound" in borderline.reason


def test_losses_are_oriented_so_positive_drop_is_worse():
    y, s = _scores(2_000, 0.3)
    loss = skm.brier_score_loss(y, s)
    worse = _perf(y, s, "brier", baseline=loss - 0.1, max_drop=0.02)
    assert worse.drop == pytest.approx(0.1) and worse.decayed
    assert worse.drop_ci_low <= worse.drop <= worse.drop_ci_high
    better = _perf(y, s, "brier", baseline=loss + 0.1, max_drop=0.02)
    assert better.drop == pytest.approx(-0.1) and not better.decayed


def test_bootstrap_is_seeded_and_round_trips_as_json():
    y, s = _scores(800, 0.3)
    a = _perf(y, s, "roc_auc", 0.8, seed=3)
    assert a == _perf(y, s, "roc_auc", 0.8, seed=3)
    assert a.ci_low != _perf(y, s, "roc_auc", 0.8, seed=4).ci_low
    insufficient = _perf(y[:10], s[:10], "roc_auc", 0.8)
    back = PerformanceResult.from_dict(json.loads(json.dumps(insufficient.to_dict(), allow_nan=False)))
    assert math.isnan(back.value) and back.status == "insufficient labels"


def test_metric_names_are_the_engines_and_checked_against_the_task():
    check_monitor_metric("binary", "pr_auc")
    with pytest.raises(
        ConfigError, match=r"monitoring\.performance_metric: 'average_precision' is not a binary"
    ):
        check_monitor_metric("binary", "average_precision")  # the old monitor-only name: gone
    with pytest.raises(ConfigError, match=r"'auc' is not a binary metric \(valid: roc_auc, pr_auc"):
        _perf([0, 1], [0.1, 0.9], "auc", None)
    with pytest.raises(ConfigError, match=r"'rmse' is not a binary metric"):
        check_monitor_metric("binary", "rmse")
    with pytest.raises(ConfigError, match="log_loss' needs class probabilities"):
        check_monitor_metric("multiclass", "log_loss")


def test_bad_window_data_are_clear_errors():
    with pytest.raises(DataError, match=r"1 labels are not classes of the model \[0, 1\], e.g. 2"):
        labelled_predictions("binary", [0, 1, 2], [0, 1, 1], [0.1, 0.9, 0.5], classes=CLASSES)
    with pytest.raises(DataError, match="3 labels but 2 scores"):
        labelled_predictions("binary", [0, 1, 1], [0, 1, 1], [0.1, 0.9], classes=CLASSES)
    with pytest.raises(DataError, match="1 labelled rows have no score"):
        labelled_predictions("binary", [0, 1], [0, 1], [0.1, float("nan")], classes=CLASSES)
    with pytest.raises(DataError, match="regression labels must be numbers"):
        labelled_predictions("regression", [1.0, "high"], [1.0, 2.0], None)
