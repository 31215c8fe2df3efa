from __future__ import annotations

import numpy as np
import pytest

from gitops_ml.config import BootstrapConfig, GatesConfig
from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.compare import compare_models
from gitops_ml.evaluation.gates import evaluate_gates, validate_gate_metrics
from gitops_ml.evaluation.metrics import Predictions
from gitops_ml.evaluation.segments import segment_comparison
from tests.evaluation.synthetic import binary_pair, equal_models_on_small_segments, regression_preds

CFG = BootstrapConfig(n_resamples=200, seed=0)
GATES = GatesConfig(
    minimums={"roc_auc": 0.6},
    maximums={"brier": 0.3},
    max_regression={"roc_auc": 0.01, "log_loss": 0.02},
    max_segment_regression=0.05,
)


def _verdict(comparison, gates=GATES, **kwargs):
    kwargs.setdefault("contract_passed", True)
    kwargs.setdefault("contract_failures", [])
    kwargs.setdefault("blocking_deepchecks", [])
    kwargs.setdefault("blocking_configured", 1)  # one blocking check configured, and it ran and held
    return evaluate_gates(comparison, gates, primary_metric="roc_auc", **kwargs)


def _by_name(verdict):
    return {g.name: g for g in verdict.gates}


def test_identical_models_pass_max_regression():
    cand, _ = binary_pair(n=1000)
    verdict = _verdict(compare_models(cand, cand, None, CFG))
    gates = _by_name(verdict)
    assert verdict.passed and verdict.status == "pass"
    assert (
        gates["max_regression.roc_auc"].status == "pass" and gates["max_regression.roc_auc"].observed == 0.0
    )
    assert verdict.headline.startswith("PASS")


def test_a_worse_candidate_fails_with_the_metric_delta_and_interval_named():
    cand, prod = binary_pair(n=2000, seed=4, shift=1.5)
    verdict = _verdict(compare_models(cand, prod, None, CFG))
    assert not verdict.passed and verdict.status == "fail"
    gate = _by_name(verdict)["max_regression.roc_auc"]
    assert gate.status == "fail" and not gate.passed
    assert gate.metric == "roc_auc" and gate.threshold == 0.01 and gate.observed < -0.01
    assert "roc_auc worse than production by" in gate.reason
    assert "CI of the delta [" in gate.reason and "allowed worsening is 0.01" in gate.reason
    assert "max_regression.roc_auc" in verdict.headline
    assert _by_name(verdict)["max_regression.log_loss"].status == "fail"  # lower-is-better direction


def test_minimum_and_maximum_are_checked_on_the_candidate():
    cand, prod = binary_pair(n=1000)
    strict = GatesConfig(minimums={"roc_auc": 0.99}, maximums={"brier": 0.01})
    verdict = _verdict(compare_models(cand, prod, None, CFG), strict)
    gates = _by_name(verdict)
    assert "below the minimum 0.99" in gates["minimums.roc_auc"].reason
    assert "above the maximum 0.01" in gates["maximums.brier"].reason
    assert len(verdict.failures) == 2


def test_no_production_skips_comparison_gates_but_still_checks_minimums():
    cand, _ = binary_pair(n=1000)
    comparison = compare_models(cand, None, None, CFG)
    gates_cfg = GATES.model_copy(update={"required_improvement": {"pr_auc": 0.0}})
    verdict = _verdict(comparison, gates_cfg, segment_rows=None)
    gates = _by_name(verdict)
    for name in (
        "max_regression.roc_auc",
        "max_regression.log_loss",
        "required_improvement.pr_auc",
        "max_segment_regression",
    ):
        assert gates[name].status == "skipped" and gates[name].reason == "skipped: no production model yet"
    assert gates["minimums.roc_auc"].status == "pass"
    assert verdict.passed and "no production model yet" in verdict.headline
    assert len(verdict.skipped) == 4


def test_required_improvement_uses_the_lower_confidence_bound():
    worse, better = binary_pair(n=3000, seed=4, shift=1.0)
    need = GatesConfig(required_improvement={"roc_auc": 0.0, "brier": 0.0})
    ok = _by_name(_verdict(compare_models(better, worse, None, CFG), need))
    assert ok["required_improvement.roc_auc"].status == "pass"
    assert ok["required_improvement.brier"].status == "pass"  # lower-is-better: improvement = -delta
    same = _by_name(_verdict(compare_models(better, better, None, CFG), need))
    assert same["required_improvement.roc_auc"].status == "fail"
    assert "improvement not shown" in same["required_improvement.roc_auc"].reason


def test_segment_regression_gate_names_the_segment():
    cand, prod = binary_pair(n=600, seed=2, noise=0.01)
    plan = np.array(["basic"] * 300 + ["pro"] * 300)
    score = cand.y_score.copy()
    score[300:] = np.random.default_rng(0).permutation(score[300:])
    broken = Predictions(cand.y_true, (score >= 0.5).astype(int), score, "binary", positive_label=1)
    import pandas as pd

    rows = segment_comparison(
        broken, prod, pd.DataFrame({"plan": plan}), ["plan"], min_size=50, metric="roc_auc", bootstrap=CFG
    )
    relaxed = GatesConfig(max_segment_regression=0.05)
    gate = _by_name(_verdict(compare_models(broken, prod, None, CFG), relaxed, segment_rows=rows))[
        "max_segment_regression"
    ]
    assert gate.status == "fail" and "plan=pro" in gate.reason and "basic" not in gate.reason


def test_segment_gate_does_not_fail_on_a_segment_worse_only_by_noise():
    candidate, production, frame = equal_models_on_small_segments()
    rows = segment_comparison(
        candidate, production, frame, ["plan"], min_size=50, metric="roc_auc", bootstrap=CFG
    )
    assert (rows["delta"] < -0.05).any()  # the point estimate alone would fail this gate
    gate = _by_name(
        _verdict(
            compare_models(candidate, production, None, CFG),
            GatesConfig(max_segment_regression=0.05),
            segment_rows=rows,
        )
    )["max_segment_regression"]
    assert gate.status == "pass" and "not significantly" in gate.reason


def test_contract_and_deepchecks_gates():
    cand, _ = binary_pair(n=500)
    comparison = compare_models(cand, cand, ["roc_auc"], CFG)
    failing = _verdict(
        comparison,
        GatesConfig(),
        contract_passed=False,
        contract_failures=["churned: invalidValues 3 rows (e.g. 2, 7)"],
        blocking_deepchecks=["FeatureLabelCorrelation: pps < 0.9"],
    )
    gates = _by_name(failing)
    assert gates["contract"].status == "fail" and "invalidValues" in gates["contract"].reason
    assert gates["deepchecks"].status == "fail" and "FeatureLabelCorrelation" in gates["deepchecks"].reason
    lenient = GatesConfig(fail_on_contract_violation=False, fail_on_blocking_deepchecks=False)
    relaxed = _verdict(
        comparison, lenient, contract_passed=False, contract_failures=["x"], blocking_deepchecks=["y"]
    )
    assert relaxed.passed and {g.status for g in relaxed.gates if g.name in ("contract", "deepchecks")} == {
        "skipped"
    }


def test_a_blocking_check_that_did_not_run_never_passes():
    cand, _ = binary_pair(n=500)
    comparison = compare_models(cand, cand, ["roc_auc"], CFG)
    verdict = _verdict(comparison, GatesConfig(), blocking_not_run=["data_integrity/FeatureLabelCorrelation"])
    gate = _by_name(verdict)["deepchecks"]
    assert not verdict.passed and gate.status == "fail"
    assert "did not run" in gate.reason and "FeatureLabelCorrelation" in gate.reason
    # nothing marked blocking: the gate is skipped, never reported as passed
    none = _by_name(_verdict(comparison, GatesConfig(), blocking_configured=0))["deepchecks"]
    assert none.status == "skipped" and "no deepchecks check is marked blocking" in none.reason


def test_blocking_outcome_reads_config_and_what_ran():
    from types import SimpleNamespace

    from gitops_ml.config import DeepchecksConfig
    from gitops_ml.evaluation.gates import blocking_deepchecks_outcome

    cfg = DeepchecksConfig.model_validate(
        {
            "data_integrity": {
                "checks": [{"check": "MixedNulls", "blocking": True}, {"check": "StringMismatch"}]
            },
            "train_test_validation": {"checks": [{"check": "FeatureDrift", "blocking": True}]},
            "model_evaluation": {"checks": [{"check": "RocReport", "blocking": True}]},
        }
    )

    def outcome(check, status, blocks):
        return SimpleNamespace(check=check, status=status, blocks=blocks)

    ran = {
        "data_integrity": SimpleNamespace(
            checks=[outcome("MixedNulls", "failed", True), outcome("StringMismatch", "failed", False)]
        ),
        "train_test_validation": SimpleNamespace(checks=[outcome("FeatureDrift", "not_run", True)]),
    }
    failed, not_run, configured = blocking_deepchecks_outcome(cfg, ran)
    assert failed == ["data_integrity/MixedNulls"]
    assert not_run == ["train_test_validation/FeatureDrift", "model_evaluation/RocReport"]
    assert configured == 3
    assert blocking_deepchecks_outcome(cfg, {}) == (
        [],
        ["data_integrity/MixedNulls", "train_test_validation/FeatureDrift", "model_evaluation/RocReport"],
        3,
    )


def test_a_gate_metric_the_task_lacks_is_a_config_error_naming_the_key():
    reg = regression_preds()
    comparison = compare_models(reg, reg, None, CFG)
    with pytest.raises(ConfigError, match=r"gates\.minimums\.roc_auc"):
        evaluate_gates(
            comparison,
            GatesConfig(minimums={"roc_auc": 0.7}),
            primary_metric="rmse",
            contract_passed=True,
            contract_failures=[],
            blocking_deepchecks=[],
        )
    with pytest.raises(ConfigError, match=r"evaluation\.primary_metric"):
        validate_gate_metrics(GatesConfig(), "regression", "roc_auc")
    cand, _ = binary_pair(n=300)
    only_auc = compare_models(cand, None, ["roc_auc"], CFG)
    with pytest.raises(ConfigError, match=r"gates\.maximums\.brier: not computed"):
        _verdict(only_auc, GatesConfig(maximums={"brier": 0.2}))


def test_regression_gates_respect_lower_is_better():
    good, bad = regression_preds(seed=2, noise=1.0), regression_preds(seed=2, noise=3.0)
    gates_cfg = GatesConfig(maximums={"rmse": 2.0}, max_regression={"rmse": 0.1, "r2": 0.01})
    verdict = evaluate_gates(
        compare_models(bad, good, None, CFG),
        gates_cfg,
        primary_metric="rmse",
        contract_passed=True,
        contract_failures=[],
        blocking_deepchecks=[],
    )
    gates = _by_name(verdict)
    assert {
        gates["maximums.rmse"].status,
        gates["max_regression.rmse"].status,
        gates["max_regression.r2"].status,
    } == {"fail"}
    verdict = evaluate_gates(
        compare_models(good, bad, None, CFG),
        gates_cfg,
        primary_metric="rmse",
        contract_passed=True,
        contract_failures=[],
        blocking_deepchecks=[],
    )
    assert verdict.passed


def test_an_undefined_metric_fails_its_gate_with_the_reason():
    y = np.zeros(100, dtype=int)
    s = np.linspace(0, 1, 100)
    preds = Predictions(y, (s > 0.5).astype(int), s, "binary", positive_label=1)
    gate = _by_name(_verdict(compare_models(preds, None, None, CFG), GatesConfig(minimums={"roc_auc": 0.5})))[
        "minimums.roc_auc"
    ]
    assert gate.status == "fail" and "one class" in gate.reason
