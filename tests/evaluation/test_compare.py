from __future__ import annotations

import math

import numpy as np
import pytest

from gitops_ml.config import BootstrapConfig
from gitops_ml.evaluation.bootstrap import bootstrap_distribution, resampled_metrics
from gitops_ml.evaluation.compare import compare_models
from gitops_ml.evaluation.metrics import TASK_METRICS, Predictions, compute_metrics, metric_names
from tests.evaluation.synthetic import binary_pair, multiclass_preds, regression_preds

CFG = BootstrapConfig(n_resamples=200, confidence=0.95, seed=7)


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    return np.stack([np.bincount(row, minlength=n) for row in idx])


@pytest.mark.parametrize(
    "preds",
    [
        binary_pair(n=300, seed=2, decimals=1)[0],
        binary_pair(n=300, seed=3, decimals=3)[1],
        multiclass_preds(n=300),
        multiclass_preds(n=300, seed=5, classes=("low", "mid", "high", "top")),
        regression_preds(n=300),
    ],
    ids=["binary-heavy-ties", "binary-few-ties", "multiclass", "multiclass-unsorted-classes", "regression"],
)
def test_vectorised_resample_metrics_equal_sklearn_on_the_resampled_rows(preds):
    n = len(preds)
    idx = np.random.default_rng(11).integers(0, n, size=(5, n))
    fast = resampled_metrics(preds, _counts(idx, n))
    for b in range(len(idx)):
        slow = compute_metrics(preds.subset(idx[b]))
        for name, value in slow.items():
            if math.isnan(value):  # undefined (expected_cost without costs): undefined in the resample too
                assert math.isnan(fast[name][b]), (name, b)
                continue
            assert fast[name][b] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, b)


def test_vectorised_auc_handles_all_tied_scores_and_one_class_resamples():
    y = np.array([0, 1, 0, 1, 1, 0])
    s = np.array([0.5, 0.5, 0.5, 0.5, 0.9, 0.1])
    preds = Predictions(y, (s > 0.5).astype(int), s, "binary", positive_label=1)
    counts = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [0, 2, 0, 1, 3, 0]], dtype=float)
    fast = resampled_metrics(preds, counts, ["roc_auc", "pr_auc"])
    assert fast["roc_auc"][0] == pytest.approx(compute_metrics(preds, ["roc_auc"])["roc_auc"])
    assert fast["roc_auc"][1] == pytest.approx(0.5)  # one positive, one negative, tied
    assert math.isnan(fast["roc_auc"][2])  # positives only
    assert fast["pr_auc"][2] == pytest.approx(1.0)
    negatives_only = resampled_metrics(
        preds, np.array([[1.0, 0, 1, 0, 0, 1]]), ["recall", "precision", "accuracy"]
    )
    assert math.isnan(negatives_only["recall"][0])  # no positive drawn: undefined, as in compute_metrics
    assert negatives_only["precision"][0] == 0.0 and negatives_only["accuracy"][0] == 1.0


def test_vectorised_median_error_on_odd_and_even_draws():
    preds = Predictions(np.zeros(4), np.array([1.0, 2.0, 3.0, 10.0]), None, "regression")
    counts = np.array([[1, 1, 1, 1], [3, 0, 0, 1], [0, 1, 2, 1]], dtype=float)
    got = resampled_metrics(preds, counts, ["median_ae"])["median_ae"]
    assert got.tolist() == [2.5, 1.0, 3.0]  # np.median of [1,2,3,10], [1,1,1,10], [2,3,3,10]


def test_identical_models_have_zero_delta_and_a_zero_interval(binary_models):
    cand, _ = binary_models
    result = compare_models(cand, cand, None, CFG)
    for m in result:
        assert m.delta == 0.0
        assert (m.ci_low, m.ci_high) == (0.0, 0.0)
        assert m.outcome == "inconclusive"


def test_a_clearly_worse_candidate_is_flagged_worse_on_every_ranking_metric():
    cand, prod = binary_pair(n=3000, seed=4, shift=1.5)
    result = compare_models(cand, prod, ["roc_auc", "pr_auc", "log_loss", "brier"], CFG)
    for m in result:
        assert m.outcome == "worse", m
        assert m.ci_low <= m.delta <= m.ci_high
    assert result["roc_auc"].delta < 0 and result["log_loss"].delta > 0  # directions respected
    better = compare_models(prod, cand, ["roc_auc", "log_loss"], CFG)
    assert better["roc_auc"].outcome == "better" and better["log_loss"].outcome == "better"


def test_paired_interval_covers_the_true_delta():
    # population of 50k rows; the true delta is the population value; 40 holdouts drawn from it
    cand, prod = binary_pair(n=50_000, seed=5, shift=0.3, noise=0.2, decimals=4)
    truth = compute_metrics(cand, ["roc_auc"])["roc_auc"] - compute_metrics(prod, ["roc_auc"])["roc_auc"]
    rng = np.random.default_rng(0)
    covered = 0
    for i in range(40):
        rows = rng.choice(len(cand), size=1500, replace=False)
        m = compare_models(
            cand.subset(rows), prod.subset(rows), ["roc_auc"], BootstrapConfig(n_resamples=200, seed=i)
        )
        covered += m["roc_auc"].ci_low <= truth <= m["roc_auc"].ci_high
    assert truth < -0.005  # the synthetic candidate really is worse
    assert covered >= 34  # nominal 95%: 38/40; well below would mean a biased or too narrow interval


def test_paired_interval_is_narrower_than_unpaired_when_models_are_correlated(binary_models):
    cand, prod = binary_models
    paired = compare_models(cand, prod, ["roc_auc", "brier"], BootstrapConfig(n_resamples=400, seed=1))
    c = bootstrap_distribution(cand, ["roc_auc", "brier"], 400, seed=1)
    p = bootstrap_distribution(prod, ["roc_auc", "brier"], 400, seed=2)  # independent draws = unpaired
    for name in ("roc_auc", "brier"):
        unpaired = np.quantile(c[name] - p[name], [0.025, 0.975])
        assert paired[name].ci_high - paired[name].ci_low < 0.5 * (unpaired[1] - unpaired[0])


def test_no_production_gives_candidate_value_and_interval_only(binary_models):
    cand, _ = binary_models
    result = compare_models(cand, None, None, CFG)
    assert not result.has_production
    assert list(result.metrics) == [
        m for m in TASK_METRICS["binary"] if m != "expected_cost"
    ]  # no costs given
    auc = result["roc_auc"]
    assert auc.production is None and auc.delta is None and auc.outcome is None
    assert auc.candidate_ci[0] < auc.candidate < auc.candidate_ci[1]


def test_same_seed_same_result_other_seed_other_result(binary_models):
    cand, prod = binary_models
    a = compare_models(cand, prod, None, CFG).to_dict()
    b = compare_models(cand, prod, None, CFG).to_dict()
    c = compare_models(cand, prod, None, BootstrapConfig(n_resamples=200, seed=8)).to_dict()
    assert a == b
    assert a != c


def test_multiclass_and_regression_paths():
    mc = multiclass_preds(seed=1)
    mc_result = compare_models(mc, mc, None, CFG)
    assert list(mc_result.metrics) == [m for m in metric_names("multiclass") if m != "expected_cost"]
    assert mc_result["f1_macro"].delta == 0.0
    good, bad = regression_preds(seed=2, noise=1.0), regression_preds(seed=2, noise=3.0)
    reg = compare_models(good, bad, None, CFG)
    assert reg["rmse"].outcome == "better" and reg["rmse"].delta < 0
    assert reg["r2"].outcome == "better" and reg["r2"].delta > 0
    # the target is positive: MAPE included; no costs given: no expected_cost
    assert list(reg.metrics) == [m for m in metric_names("regression") if m != "expected_cost"]


def test_undefined_resamples_are_counted_in_the_note():
    y = np.array([1] + [0] * 29)
    s = np.linspace(0, 1, 30)
    preds = Predictions(y, (s > 0.5).astype(int), s, "binary", positive_label=1)
    result = compare_models(preds, None, ["roc_auc"], BootstrapConfig(n_resamples=200, seed=0))
    assert "undefined in" in result["roc_auc"].note
    assert not math.isnan(result["roc_auc"].candidate_ci[0])


def test_models_scored_on_different_rows_are_refused(binary_models):
    cand, _ = binary_models
    other, _ = binary_pair(n=2000, seed=99)
    with pytest.raises(ValueError, match="same holdout"):
        compare_models(cand, other, None, CFG)


def test_to_dict_is_json_safe(binary_models):
    import json

    cand, prod = binary_models
    json.dumps(compare_models(cand, prod, None, CFG).to_dict(), allow_nan=False)
