"""The champion/challenger window judgement: the PR check's paired bootstrap and gates on live pairs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gitops_ml.config import BootstrapConfig, GatesConfig
from gitops_ml.evaluation.metrics import Predictions
from gitops_ml.monitoring.challenger import (
    ChallengerWindow,
    decide,
    decision_from_dict,
    judge_window,
    paired_predictions,
    render_challenger_section,
    rows_needed,
)

START = datetime(2026, 6, 1, tzinfo=UTC)
BOOT = BootstrapConfig(n_resamples=300, seed=0)


def _binary(n: int, noise_prod: float, noise_chal: float, seed: int) -> tuple[Predictions, Predictions]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(int)

    def side(noise: float) -> Predictions:
        score = 1 / (1 + np.exp(-(signal + rng.normal(scale=noise, size=n))))
        return paired_predictions(
            "binary", y, (score > 0.5).astype(int), score, None, classes=np.array([0, 1]), positive_label=1
        )

    return side(noise_prod), side(noise_chal)


def _judge(prod: Predictions, chal: Predictions, **kw: object) -> ChallengerWindow:
    args: dict[str, object] = {
        "start": START,
        "end": START + timedelta(days=1),
        "metric": "roc_auc",
        "min_rows": 200,
        "min_improvement": 0.0,
        "power": 0.8,
        "gates": GatesConfig(max_regression={"roc_auc": 0.02}),
        "bootstrap": BOOT,
    }
    args.update(kw)
    return judge_window(prod, chal, **args)  # type: ignore[arg-type]


def test_a_clearly_better_challenger_is_better() -> None:
    prod, chal = _binary(1500, noise_prod=2.0, noise_chal=0.3, seed=1)
    window = _judge(prod, chal)
    assert window.outcome == "better"
    assert window.delta is not None and window.ci_low is not None and window.ci_low > 0
    assert any("contract" in s for s in window.skipped_gates), "contract gate listed as skipped, not passed"


def test_the_same_model_is_inconclusive_and_says_more_rows_would_not_help() -> None:
    prod, _ = _binary(800, noise_prod=1.0, noise_chal=1.0, seed=2)
    window = _judge(prod, prod)
    assert window.outcome == "inconclusive"
    assert window.rows_needed is None and window.note


def test_much_worse_beyond_the_allowed_regression_is_harmful_and_retires_at_once() -> None:
    prod, chal = _binary(1500, noise_prod=0.3, noise_chal=2.5, seed=3)
    window = _judge(prod, chal)
    assert window.outcome == "harmful"
    assert any(g.startswith("max_regression.roc_auc") for g in window.failed_gates)
    decision = decide([window], consecutive=3, challenger_version="c", production_version="p")
    assert decision.action == "retire"


def test_a_decision_reads_back_from_its_json_and_nothing_else_does() -> None:
    """decision.json of a decision bundle: what to_dict wrote, read strictly."""
    import json

    prod, chal = _binary(1500, noise_prod=0.3, noise_chal=2.5, seed=3)
    decision = decide([_judge(prod, chal)], consecutive=3, challenger_version="c", production_version="p")
    data = json.loads(json.dumps(decision.to_dict()))
    assert decision_from_dict(data) == decision
    with pytest.raises(ValueError, match="action: Input should be 'promote', 'retire' or 'keep collecting'"):
        decision_from_dict({**data, "action": "rollback"})
    with pytest.raises(ValueError, match="extra keys or values in another form"):
        decision_from_dict({**data, "run": "curl evil"})
    with pytest.raises(ValueError, match=r"windows\[0\]\.start: Input should be a valid datetime"):
        decision_from_dict({**data, "windows": [{**data["windows"][0], "start": "yesterday"}]})


def test_worse_within_the_allowed_regression_is_worse() -> None:
    prod, chal = _binary(4000, noise_prod=0.6, noise_chal=0.8, seed=4)
    window = _judge(prod, chal, gates=GatesConfig(max_regression={"roc_auc": 0.5}))
    assert window.outcome == "worse", window


def test_too_few_pairs_is_insufficient() -> None:
    prod, chal = _binary(150, noise_prod=2.0, noise_chal=0.3, seed=5)
    window = _judge(prod, chal)
    assert window.outcome == "insufficient" and "150 labelled pairs" in window.note


def test_a_failing_pr_check_gate_blocks_better() -> None:
    prod, chal = _binary(1500, noise_prod=2.0, noise_chal=0.3, seed=1)
    window = _judge(prod, chal, gates=GatesConfig(minimums={"roc_auc": 0.99}))
    assert window.outcome == "inconclusive"
    assert any(g.startswith("minimums.roc_auc") for g in window.failed_gates)


def test_rows_needed_is_the_normal_approximation_of_the_bootstrap_interval() -> None:
    # d = +0.02 with the 95% interval [-0.01, +0.05] at 500 rows: se 0.0153, z 1.96 + 0.84
    needed, why = rows_needed(500, 0.02, -0.01, 0.05, threshold=0.0, confidence=0.95, power=0.8)
    assert needed == pytest.approx(2295, abs=5) and "more than this window's 500" in why
    larger, _ = rows_needed(500, 0.04, 0.01, 0.07, threshold=0.0, confidence=0.95, power=0.8)
    assert larger is not None and larger < needed
    worse, why = rows_needed(500, -0.02, -0.05, 0.01, threshold=0.0, confidence=0.95, power=0.8)
    assert worse == needed and "worse" in why
    assert rows_needed(500, 0.005, -0.02, 0.03, threshold=0.01, confidence=0.95, power=0.8)[0] is None


def test_windows_of_the_rows_needed_decide_about_as_often_as_the_power_says() -> None:
    prod, chal = _binary(20000, noise_prod=1.0, noise_chal=0.6, seed=6)
    big = _judge(prod, chal)
    assert big.delta is not None and big.ci_low is not None and big.ci_high is not None
    needed, _ = rows_needed(
        big.rows, big.delta, big.ci_low, big.ci_high, threshold=0.0, confidence=0.95, power=0.8
    )
    assert needed is not None and 100 < needed < 20000
    outcomes = [_judge(*_binary(needed, 1.0, 0.6, seed=100 + i), min_rows=10).outcome for i in range(10)]
    assert 5 <= outcomes.count("better") <= 10, outcomes  # power 0.8 by construction


def test_decide_needs_n_better_windows_in_a_row() -> None:
    def w(outcome: str) -> ChallengerWindow:
        return ChallengerWindow(START, START, 500, outcome, "roc_auc")  # type: ignore[arg-type]

    kw = {"consecutive": 3, "challenger_version": "c", "production_version": "p"}
    assert decide([w("better")] * 2, **kw).action == "keep collecting"  # type: ignore[arg-type]
    assert decide([w("better"), w("insufficient"), w("better")], **kw).action == "keep collecting"  # type: ignore[arg-type]
    assert decide([w("inconclusive"), *[w("better")] * 3], **kw).action == "promote"  # type: ignore[arg-type]
    assert decide([w("worse")] * 3, **kw).action == "retire"  # type: ignore[arg-type]
    section = render_challenger_section(decide([w("better")] * 3, **kw))  # type: ignore[arg-type]
    assert "**promote**" in section and section.count("| better |") == 3


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_multiclass_with_string_labels_and_regression_are_judged(task: str) -> None:
    rng = np.random.default_rng(8)
    n = 1200
    if task == "regression":
        y = rng.normal(size=n)
        prod = paired_predictions(
            task, y, y + rng.normal(scale=1.0, size=n), None, None, classes=None, positive_label=None
        )
        chal = paired_predictions(
            task, y, y + rng.normal(scale=0.3, size=n), None, None, classes=None, positive_label=None
        )
        metric = "rmse"
    else:
        classes = np.array(["bronze", "gold", "silver"])
        truth = rng.choice(classes, size=n)
        good = np.where(rng.random(n) < 0.9, truth, rng.choice(classes, size=n))
        bad = np.where(rng.random(n) < 0.5, truth, rng.choice(classes, size=n))
        probs = [{str(c): (0.8 if c == g else 0.1) for c in classes} for g in good]
        prod = paired_predictions(task, truth, bad, None, None, classes=classes, positive_label=None)
        chal = paired_predictions(task, truth, good, None, probs, classes=classes, positive_label=None)
        assert chal.y_score is not None and chal.y_score.shape == (n, 3), (
            "probabilities became the score matrix"
        )
        metric = "accuracy"
    window = _judge(prod, chal, metric=metric, gates=GatesConfig())
    assert window.outcome == "better", window
