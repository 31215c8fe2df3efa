"""The PR report says how each model decides, and says so when a model decides every row one way."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gitops_ml.config import Settings
from gitops_ml.evaluation.decision import DecisionRule
from gitops_ml.evaluation.metrics import Predictions
from gitops_ml.jobs.pr_check import PrCheckRun, _decision_warnings, _decisions
from gitops_ml.reporting.pr_report import PrCheckResult, render_pr_report
from tests.fixtures.models import tiny_settings


def _settings(task: str) -> Settings:
    return tiny_settings(dataset={"task": task, "id_column": None}, features={"numeric": ["x"]})


def test_a_candidate_deciding_everything_one_way_is_reported(tmp_path: Path):
    rule = DecisionRule(
        kind="threshold",
        threshold=0.0,
        positive_label="yes",
        validation_rows=50,
        validation_cost=10.0,
        default_cost=40.0,
        warning="the cost-chosen threshold 0.000 decides every one of the 50 validation rows positive",
    )
    truth = np.array(["yes", "no", "no", "yes"])
    candidate = Predictions(
        truth, np.array(["yes"] * 4), np.array([0.2, 0.1, 0.3, 0.9]), "binary", np.array(["no", "yes"]), "yes"
    )
    run = PrCheckRun(
        out_dir=tmp_path, commit="c", settings=_settings("binary"), decision=rule, candidate=candidate
    )
    warnings = _decision_warnings(run)
    assert warnings[0] == rule.warning
    assert "on the holdout, the candidate decides every one of the 4 rows 'yes'" in warnings[1]
    report = render_pr_report(
        PrCheckResult(
            status="pass", decisions=_decisions(run), decision_warnings=warnings, model_card="model-card.md"
        )
    )
    assert "## Decisions" in report
    assert "- candidate decides: P(yes) >= 0.000, chosen by cost on 50 validation rows" in report
    assert "- ⚠️ on the holdout, the candidate decides every one of the 4 rows 'yes'" in report
    assert "[model-card.md](model-card.md)" in report


def test_balanced_decisions_have_no_warning_and_regression_no_decision_section(tmp_path: Path):
    candidate = Predictions(
        np.array([0, 1, 1]), np.array([0, 1, 0]), np.array([0.1, 0.8, 0.4]), "binary", np.array([0, 1]), 1
    )
    run = PrCheckRun(out_dir=tmp_path, commit="c", settings=_settings("binary"), candidate=candidate)
    assert _decision_warnings(run) == []
    assert _decisions(run) == {"candidate": "the most probable class (no `evaluation.costs`)"}
    regression = PrCheckRun(
        out_dir=tmp_path,
        commit="c",
        settings=_settings("regression").model_copy(),
        candidate=Predictions(np.array([1.0, 2.0]), np.array([1.0, 1.0]), None, "regression"),
    )
    assert _decisions(regression) == {} and _decision_warnings(regression) == []
    assert "## Decisions" not in render_pr_report(PrCheckResult(status="pass"))
