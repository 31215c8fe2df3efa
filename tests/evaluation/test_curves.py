"""Curves on an even grid for Mermaid charts: right shape, right values, candidate and production together."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from gitops_ml.config import CostsConfig
from gitops_ml.evaluation.curves import GRID_POINTS, task_curves
from gitops_ml.evaluation.metrics import Predictions
from tests.evaluation.synthetic import binary_pair, multiclass_preds, regression_preds


def _by_name(curves):
    return {c.name: c for c in curves}


def test_binary_curves_follow_sklearn_and_share_the_grid():
    cand, prod = binary_pair(n=1500, seed=3, shift=0.8)
    curves = _by_name(task_curves(cand, prod))
    assert set(curves) == {"roc", "pr", "calibration"}  # no costs: no cost curve
    roc = curves["roc"]
    names = list(roc.series)
    assert (
        names[0].startswith("candidate (AUC ")
        and names[1].startswith("production (AUC ")
        and names[2] == "chance"
    )
    assert all(len(v) == GRID_POINTS <= 50 for v in roc.series.values())
    cand_tpr = np.array(roc.series[names[0]])
    assert cand_tpr[-1] == 1.0 and np.all(np.diff(cand_tpr) >= 0)
    # the area under the sampled curve is close to the exact AUC
    assert np.trapezoid(cand_tpr, np.linspace(0, 1, GRID_POINTS)) == pytest.approx(
        skm.roc_auc_score(cand.y_true, cand.y_score), abs=0.03
    )
    pr = curves["pr"]
    precision = np.array(next(iter(pr.series.values())))
    assert np.all(np.diff(precision) <= 1e-12) and precision[-1] >= cand.y_true.mean() - 1e-9  # interpolated
    cal = curves["calibration"]
    assert len(cal.series["candidate"]) == 10 and all(0 <= v <= 1 for v in cal.series["candidate"])


def test_cost_curve_with_costs_shows_the_cheapest_threshold():
    cand, prod = binary_pair(n=1500, seed=3)
    costs = CostsConfig(false_positive=1, false_negative=20)
    curves = _by_name(task_curves(cand.with_costs(costs), prod.with_costs(costs)))
    cost = curves["cost"]
    (name, values), _ = list(cost.series.items())
    at = float(name.split("lowest at ")[1].rstrip(")"))
    grid = np.linspace(0, 1, GRID_POINTS)
    assert values[int(np.argmin(values))] == min(values) and grid[int(np.argmin(values))] == pytest.approx(at)
    # threshold 0: everything positive, every negative row a false positive (cost 1 each)
    assert values[0] == pytest.approx(1000 * float((cand.y_true == 0).mean()))
    assert at < 0.5  # false negatives cost 20x: the cheapest threshold is low


def test_multiclass_recall_per_class_with_string_labels():
    cand = multiclass_preds(n=600, seed=2, classes=("cat", "dog", "eel"))
    curves = task_curves(cand, cand)
    assert [c.name for c in curves] == ["class_recall"]
    recall = curves[0]
    assert sorted(recall.categories) == ["cat", "dog", "eel"]
    assert recall.kinds == ["bar", "line"] and recall.series["candidate"] == recall.series["production"]
    first = recall.categories[0]
    assert recall.series["candidate"][0] == pytest.approx(
        skm.recall_score(cand.y_true, cand.y_pred, labels=[first], average="macro")
    )


def test_regression_residuals_and_predicted_vs_actual():
    good, bad = regression_preds(n=800, seed=1, noise=1.0), regression_preds(n=800, seed=1, noise=1.0)
    biased = Predictions(bad.y_true, bad.y_pred + 3.0, None, "regression")  # predicts 3 too high
    curves = _by_name(task_curves(good, biased))
    residuals = curves["residuals"]
    assert residuals.series["zero"] == [0.0] * 20
    assert abs(np.mean(residuals.series["candidate"])) < 1.0
    assert np.mean(residuals.series["production"]) == pytest.approx(-3.0, abs=1.0)
    pva = curves["predicted_vs_actual"]
    assert pva.x_min < pva.x_max and len(pva.series["perfect"]) == 20


def test_degenerate_inputs_give_no_curve_rather_than_an_error():
    one_class = Predictions(
        np.zeros(20, dtype=int), np.zeros(20, dtype=int), np.linspace(0, 1, 20), "binary", positive_label=1
    )
    assert task_curves(one_class, None) == []
    constant = Predictions(np.full(10, 5.0), np.full(10, 5.0), None, "regression")
    assert task_curves(constant, None) == []
