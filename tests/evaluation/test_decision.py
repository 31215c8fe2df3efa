"""`evaluation.decision`: the one function turning probabilities into decisions, and the cost-chosen threshold."""

from __future__ import annotations

import numpy as np
import pytest

from gitops_ml.config import CostsConfig
from gitops_ml.evaluation.costs import PER, row_costs
from gitops_ml.evaluation.decision import (
    DecisionRule,
    choose_threshold,
    decide,
    decide_binary,
    one_way_note,
    rule_for,
)


def _scores(n: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(size=n) < 0.3
    p = np.clip(rng.normal(np.where(truth, 0.6, 0.35), 0.18), 0, 1)
    return truth, p


def test_no_rule_is_the_most_probable_class_with_string_labels():
    proba = np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]])
    assert decide(proba, np.array(["no", "yes"]), None).tolist() == ["no", "yes", "no"]


def test_threshold_rule_decides_the_positive_column_whatever_its_position():
    # the positive class is the FIRST column: the threshold applies to it, not to column 1
    proba = np.array([[0.3, 0.7], [0.1, 0.9], [0.6, 0.4]])
    rule = DecisionRule(kind="threshold", threshold=0.25, positive_label="churn")
    assert decide(proba, np.array(["churn", "stay"]), rule).tolist() == ["churn", "stay", "churn"]
    p_churn = proba[:, 0]
    assert decide_binary(p_churn, ["churn", "stay"], "churn", rule).tolist() == ["churn", "stay", "churn"]


def test_multiclass_minimum_expected_cost_overrides_the_most_probable_class():
    classes = np.array(["basic", "premium", "standard"])
    # true premium decided basic costs 30: a 40% chance of premium outweighs a 50% basic
    rule = rule_for("multiclass", CostsConfig(matrix={"premium": {"basic": 30, "standard": 10}}))
    assert rule is not None and rule.kind == "min_expected_cost"
    proba = np.array([[0.5, 0.4, 0.1], [0.9, 0.05, 0.05]])
    assert decide(proba, classes, None).tolist() == ["basic", "basic"]
    # row 1: basic 12, premium 0, standard 4 -> premium; row 2: basic 1.5, premium 0, standard 0.5
    expected = classes[(proba @ np.array([[0, 0, 0], [30, 0, 10], [0, 0, 0]])).argmin(axis=1)]
    assert decide(proba, classes, rule).tolist() == expected.tolist() == ["premium", "premium"]


def test_only_multiclass_with_a_matrix_has_a_data_free_rule():
    assert rule_for("binary", CostsConfig(false_positive=1, false_negative=5)) is None
    assert rule_for("regression", CostsConfig(under_prediction=2)) is None
    assert rule_for("multiclass", None) is None


def test_probabilities_that_do_not_match_the_classes_are_refused():
    with pytest.raises(ValueError, match="do not match 3 classes"):
        decide(np.ones((2, 2)) / 2, ["a", "b", "c"], None)
    with pytest.raises(ValueError, match="not one of the classes"):
        decide_binary(np.array([0.2]), ["a", "b"], "c", None)


def test_chosen_threshold_is_the_cheapest_on_the_validation_rows():
    truth, p = _scores()
    costs = CostsConfig(false_positive=1.0, false_negative=10.0, true_positive=-2.0)
    rule = choose_threshold(truth, p, 1, costs)
    assert rule.kind == "threshold" and rule.validation_rows == len(p)
    assert rule.threshold is not None and rule.threshold < 0.5  # misses cost 10x: decide positive earlier

    def cost_at(t: float) -> float:
        decided = np.where(p >= t, 1, 0)
        return PER * float(np.mean(row_costs("binary", costs, truth.astype(int), decided, 1)))

    assert rule.validation_cost == pytest.approx(cost_at(rule.threshold))
    assert rule.default_cost == pytest.approx(cost_at(0.5))
    # no threshold on a fine grid does better on these rows
    assert rule.validation_cost <= min(cost_at(t) for t in np.linspace(0, 1, 401)) + 1e-9
    assert rule.warning is None
    assert "chosen by cost on 2,000 validation rows" in rule.describe()


def test_symmetric_costs_keep_a_threshold_near_the_default():
    truth, p = _scores(seed=1)
    rule = choose_threshold(truth, p, 1, CostsConfig(false_positive=1.0, false_negative=1.0))
    cheap_fn = choose_threshold(truth, p, 1, CostsConfig(false_positive=10.0, false_negative=1.0))
    assert rule.threshold is not None and cheap_fn.threshold is not None
    assert cheap_fn.threshold > rule.threshold  # false alarms cost more: decide positive later


def test_costs_that_make_everything_positive_say_so():
    truth, p = _scores()
    # a false alarm costs nothing, while a right "no" costs 1 and a miss 5: every row positive is cheapest
    costs = CostsConfig(false_positive=0.0, true_negative=1.0, false_negative=5.0)
    rule = choose_threshold(truth, p, "yes", costs)
    assert rule.warning is not None
    assert "decides every one of the 2,000 validation rows positive" in rule.warning
    assert "evaluation.costs" in rule.warning
    assert (p >= rule.threshold).all()


def test_one_class_validation_rows_are_refused():
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold(np.zeros(5, bool), np.linspace(0, 1, 5), 1, CostsConfig(false_positive=1))


def test_one_way_note_only_when_every_decision_is_the_same():
    assert one_way_note(np.array(["a", "a", "a"]), "the candidate") == (
        "the candidate decides every one of the 3 rows 'a'"
    )
    assert one_way_note(np.array(["a", "b"]), "x") is None
    assert one_way_note(np.array([], dtype=object), "x") is None


def test_rule_survives_the_metadata_json_round_trip():
    rule = DecisionRule(kind="threshold", threshold=0.2, positive_label=1, validation_rows=10)
    again = DecisionRule.model_validate_json(rule.model_dump_json())
    proba = np.array([[0.75, 0.25], [0.9, 0.1]])
    assert decide(proba, np.array([0, 1]), again).tolist() == [1, 0]
