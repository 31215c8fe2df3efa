from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from gitops_ml.errors import ConfigError, DataError
from gitops_ml.monitoring.performance import PerformanceResult, window_performance


def _scores(n: int, signal: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    s = np.clip(0.3 + signal * (y - 0.3) + rng.normal(0, 0.2, n), 0.001, 0.999).round(2)  # ties on purpose
    return y, s


SKLEARN = {
    "roc_auc": lambda y, s: skm.roc_auc_score(y, s),
    "average_precision": lambda y, s: skm.average_precision_score(y, s),
    "accuracy": lambda y, s: skm.accuracy_score(y, s >= 0.5),
    "f1": lambda y, s: skm.f1_score(y, s >= 0.5),
    "brier": lambda y, s: skm.brier_score_loss(y, s),
    "log_loss": lambda y, s: skm.log_loss(y, s),
    "rmse": lambda y, s: skm.mean_squared_error(y, s) ** 0.5,
    "r2": lambda y, s: skm.r2_score(y, s),
}


@pytest.mark.parametrize("metric", sorted(SKLEARN))
def test_point_estimate_matches_sklearn(metric):
    y, s = _scores(2_000, 0.3)
    result = window_performance(y, s, metric, None, n_resamples=50)
    assert result.value == pytest.approx(SKLEARN[metric](y, s), rel=1e-9)
    assert result.ci_low <= result.value <= result.ci_high
    assert not result.decayed and "no baseline" in result.reason


def test_unlabelled_rows_count_in_coverage_only():
    y, s = _scores(1_000, 0.3)
    y_partial = y.copy()
    y_partial[600:] = np.nan
    result = window_performance(y_partial, s, "roc_auc", 0.8, n_resamples=100, min_labelled=200)
    assert result.labelled == 600 and result.rows == 1_000 and result.label_coverage == pytest.approx(0.6)
    assert result.value == pytest.approx(skm.roc_auc_score(y[:600], s[:600]))


def test_insufficient_labels_is_never_decayed():
    y, s = _scores(1_000, 0.0)  # a useless model, far below the baseline
    y[150:] = np.nan
    result = window_performance(y, s, "roc_auc", 0.9, min_labelled=200)
    assert result.status == "insufficient labels" and not result.decayed
    assert "150 labelled rows < min_labelled_rows 200" in result.reason
    one_class = window_performance(np.zeros(500), s[:500], "roc_auc", 0.9, min_labelled=200)
    assert one_class.status == "insufficient labels" and "class 0" in one_class.reason


def test_decayed_only_when_the_whole_ci_of_the_drop_is_above_max_drop():
    y, s = _scores(3_000, 0.3)
    value = skm.roc_auc_score(y, s)
    clear = window_performance(y, s, "roc_auc", value + 0.15, max_drop=0.05)
    assert clear.decayed and clear.drop == pytest.approx(0.15) and clear.drop_ci_low > 0.05
    # point estimate above max_drop, but the CI reaches below it: not (yet) decayed
    y_small, s_small = y[:250], s[:250]
    small_value = skm.roc_auc_score(y_small, s_small)
    borderline = window_performance(y_small, s_small, "roc_auc", small_value + 0.06, max_drop=0.05, min_labelled=200)
    assert borderline.drop > 0.05 and borderline.drop_ci_low < 0.05 and not borderline.decayed
    assert "lower bound" in borderline.reason


def test_losses_are_oriented_so_positive_drop_is_worse():
    y, s = _scores(2_000, 0.3)
    loss = skm.brier_score_loss(y, s)
    worse = window_performance(y, s, "brier", baseline_value=loss - 0.1, max_drop=0.02)
    assert worse.drop == pytest.approx(0.1) and worse.decayed
    assert worse.drop_ci_low <= worse.drop <= worse.drop_ci_high
    better = window_performance(y, s, "brier", baseline_value=loss + 0.1, max_drop=0.02)
    assert better.drop == pytest.approx(-0.1) and not better.decayed


def test_bootstrap_is_seeded_and_round_trips_as_json():
    y, s = _scores(800, 0.3)
    a = window_performance(y, s, "roc_auc", 0.8, seed=3)
    assert a == window_performance(y, s, "roc_auc", 0.8, seed=3)
    assert a.ci_low != window_performance(y, s, "roc_auc", 0.8, seed=4).ci_low
    insufficient = window_performance(y[:10], s[:10], "roc_auc", 0.8)
    back = PerformanceResult.from_dict(json.loads(json.dumps(insufficient.to_dict(), allow_nan=False)))
    assert math.isnan(back.value) and back.status == "insufficient labels"


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown metric 'auroc'"):
        window_performance([0, 1], [0.1, 0.9], "auroc", None)
    with pytest.raises(DataError, match="needs 0/1 labels, got e.g. \\[2.0\\]"):
        window_performance([0, 1, 2], [0.1, 0.9, 0.5], "roc_auc", None, min_labelled=1)
    with pytest.raises(DataError, match="3 labels but 2 scores"):
        window_performance([0, 1, 1], [0.1, 0.9], "roc_auc", None)


def test_baseline_is_found_under_any_alias_of_the_metric():
    from gitops_ml.monitoring.performance import baseline_value

    recorded = {"roc_auc": 0.81, "pr_auc": 0.6, "brier": 0.12}
    assert baseline_value(recorded, "average_precision") == 0.6
    assert baseline_value(recorded, "pr_auc") == 0.6
    assert baseline_value(recorded, "auc") == 0.81
    assert baseline_value(recorded, "log_loss") is None
