"""Decision costs: config checked against the task, expected cost per 1,000 decisions, its gate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gitops_ml.config import BootstrapConfig, CostsConfig, EvaluationConfig, GatesConfig
from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.bootstrap import resampled_metrics
from gitops_ml.evaluation.compare import compare_models
from gitops_ml.evaluation.costs import check_costs, cost_problems, describe_costs
from gitops_ml.evaluation.gates import evaluate_gates
from gitops_ml.evaluation.metrics import Predictions, applicable_metrics, compute_metrics, metric_notes
from tests.evaluation.synthetic import binary_pair, multiclass_preds, regression_preds

BINARY = CostsConfig(false_positive=5, false_negative=50)
CFG = BootstrapConfig(n_resamples=300, seed=0)


def _verdict(comparison, gates: GatesConfig):
    return evaluate_gates(comparison, gates, primary_metric="roc_auc", contract_passed=True)


def test_costs_load_from_evaluation_config_and_refuse_unknown_keys():
    cfg = EvaluationConfig(costs={"false_positive": 5, "false_negative": 50, "unit": "EUR"})
    assert cfg.costs.false_negative == 50 and cfg.costs.unit == "EUR"
    with pytest.raises(ValueError, match="false_postive"):
        EvaluationConfig(costs={"false_postive": 5})


def test_costs_for_the_wrong_task_all_zero_or_naming_unknown_classes_are_config_errors():
    assert cost_problems("binary", BINARY) == []
    assert cost_problems("regression", BINARY) == [
        "evaluation.costs.false_negative: not a cost of a regression task (use under_prediction, over_prediction)",
        "evaluation.costs.false_positive: not a cost of a regression task (use under_prediction, over_prediction)",
        "evaluation.costs: no regression costs given (use under_prediction, over_prediction)",
    ]
    zero = CostsConfig(false_positive=0, false_negative=0)
    assert cost_problems("binary", zero) == [
        "evaluation.costs: every cost is zero, so every model would cost nothing; give the costs of errors"
    ]
    matrix = CostsConfig(matrix={"setosa": {"virginica": 10, "tulip": 3}, "rose": {"setosa": 1}})
    problems = cost_problems("multiclass", matrix, ["setosa", "versicolor", "virginica"])
    assert problems == [
        "evaluation.costs.matrix.setosa.tulip: not a class of the target (setosa, versicolor, virginica)",
        "evaluation.costs.matrix.rose: not a class of the target (setosa, versicolor, virginica)",
    ]
    with pytest.raises(ConfigError, match=r"(?=.*matrix\.setosa\.tulip)(?=.*matrix\.rose)"):  # all at once
        check_costs("multiclass", matrix, ["setosa", "versicolor", "virginica"])
    check_costs("binary", None)  # no costs: nothing to check


def test_binary_expected_cost_per_thousand_decisions():
    y = np.array([1, 1, 0, 0, 0, 1, 0, 0])
    yp = np.array([1, 0, 1, 0, 0, 0, 0, 0])  # 1 TP, 2 FN, 1 FP, 4 TN
    preds = Predictions(y, yp, np.linspace(0.1, 0.9, 8), "binary", positive_label=1).with_costs(BINARY)
    assert compute_metrics(preds, ["expected_cost"])["expected_cost"] == pytest.approx(
        1000 * (2 * 50 + 5) / 8
    )
    gains = BINARY.model_copy(update={"true_positive": -20})  # a negative cost is a gain
    assert compute_metrics(preds.with_costs(gains), ["expected_cost"])["expected_cost"] == pytest.approx(
        1000 * (2 * 50 + 5 - 20) / 8
    )


def test_multiclass_matrix_with_string_labels_and_regression_asymmetric_loss():
    mc = multiclass_preds(n=300, seed=3, classes=("low", "mid", "high"))
    matrix = CostsConfig(matrix={"high": {"low": 100, "mid": 10}, "low": {"high": 1}})
    priced = mc.with_costs(matrix)
    expected = (
        np.mean(
            [
                {("high", "low"): 100, ("high", "mid"): 10, ("low", "high"): 1}.get((t, p), 0)
                for t, p in zip(mc.y_true, mc.y_pred, strict=True)
            ]
        )
        * 1000
    )
    assert compute_metrics(priced, ["expected_cost"])["expected_cost"] == pytest.approx(expected)
    reg = regression_preds(n=200, seed=1).with_costs(CostsConfig(under_prediction=3, over_prediction=1))
    err = reg.y_pred - reg.y_true
    assert compute_metrics(reg, ["expected_cost"])["expected_cost"] == pytest.approx(
        1000 * np.mean(np.where(err > 0, err, -3 * err))
    )
    with pytest.raises(ConfigError, match="matrix.tulip"):
        mc.with_costs(CostsConfig(matrix={"tulip": {"low": 1}}))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_vectorised_expected_cost_equals_the_point_estimate_on_resampled_rows(task):
    costs = {
        "binary": BINARY,
        "multiclass": CostsConfig(matrix={"a": {"b": 4, "c": 9}, "c": {"a": 2}}),
        "regression": CostsConfig(under_prediction=2, over_prediction=0.5),
    }[task]
    preds = {
        "binary": binary_pair(n=300, seed=2)[0],
        "multiclass": multiclass_preds(n=300),
        "regression": regression_preds(n=300),
    }[task].with_costs(costs)
    idx = np.random.default_rng(4).integers(0, 300, size=(5, 300))
    counts = np.stack([np.bincount(row, minlength=300) for row in idx]).astype(float)
    fast = resampled_metrics(preds, counts, ["expected_cost"])["expected_cost"]
    for b in range(5):
        assert fast[b] == pytest.approx(
            compute_metrics(preds.subset(idx[b]), ["expected_cost"])["expected_cost"]
        )


def test_without_costs_expected_cost_is_left_out_or_undefined_with_the_reason():
    cand, _ = binary_pair(n=300)
    assert "expected_cost" not in applicable_metrics(cand, None)
    assert "expected_cost" in applicable_metrics(cand.with_costs(BINARY), None)
    assert math.isnan(compute_metrics(cand, ["expected_cost"])["expected_cost"])
    assert metric_notes(cand, ["expected_cost"]) == {
        "expected_cost": "undefined: evaluation.costs is not set"
    }


def test_expected_cost_comparison_has_a_paired_ci_and_gates_read_it():
    cand, prod = binary_pair(n=3000, seed=4, shift=1.5)  # the candidate is clearly worse
    comparison = compare_models(cand.with_costs(BINARY), prod.with_costs(BINARY), None, CFG)
    m = comparison["expected_cost"]
    assert m.direction == "lower" and m.delta > 0 and m.ci_low <= m.delta <= m.ci_high
    assert m.outcome == "worse"
    verdict = _verdict(comparison, GatesConfig(max_regression={"expected_cost": 5.0}))
    gate = {g.name: g for g in verdict.gates}["max_regression.expected_cost"]
    assert gate.status == "fail"
    assert (
        gate.reason.startswith("expected_cost worse than production by") and "CI of the delta" in gate.reason
    )
    better = compare_models(prod.with_costs(BINARY), cand.with_costs(BINARY), None, CFG)
    improved = _verdict(better, GatesConfig(required_improvement={"expected_cost": 1.0}))
    assert {g.name: g for g in improved.gates}["required_improvement.expected_cost"].status == "pass"
    too_much = _verdict(better, GatesConfig(required_improvement={"expected_cost": 1e6}))
    assert {g.name: g for g in too_much.gates}["required_improvement.expected_cost"].status == "fail"


def test_a_cost_gate_without_costs_says_what_is_missing():
    cand, prod = binary_pair(n=300)
    comparison = compare_models(cand, prod, None, CFG)
    with pytest.raises(ConfigError, match=r"gates\.max_regression\.expected_cost: needs evaluation\.costs"):
        _verdict(comparison, GatesConfig(max_regression={"expected_cost": 1.0}))


def test_costs_are_described_for_the_report():
    assert describe_costs("binary", BINARY.model_copy(update={"unit": "EUR"})) == (
        "false positive 5, false negative 50 (EUR per decision)"
    )
    assert describe_costs("regression", CostsConfig(under_prediction=2)) == (
        "under prediction 2 (cost per decision per unit of error)"
    )
