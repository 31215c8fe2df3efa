"""The PR report stays under GitHub's comment limit without ever losing the verdict."""

from __future__ import annotations

import pandas as pd

from gitops_ml.evaluation.gates import GateResult, Verdict
from gitops_ml.quality.deepchecks_suites import SuiteSummary
from gitops_ml.reporting.markdown import GITHUB_COMMENT_LIMIT
from gitops_ml.reporting.pr_report import PrCheckResult, render_pr_report


def failing_result(n_segments: int) -> PrCheckResult:
    gate = GateResult(name="max_regression.roc_auc", passed=False, reason="roc_auc worse by 0.05 (allowed 0.01)",
                      metric="roc_auc", threshold=0.01, observed=-0.05, status="fail")
    segments = pd.DataFrame({
        "column": ["region"] * n_segments, "value": [f"r{i}" for i in range(n_segments)],
        "n": [100] * n_segments, "production": [0.8] * n_segments, "candidate": [0.7] * n_segments,
        "delta": [-0.1] * n_segments, "flagged": [True] * n_segments,
    })
    return PrCheckResult(status="fail", verdict=Verdict(passed=False, status="fail", gates=[gate],
                                                        headline="FAIL: 1 of 1 gates failed"),
                         candidate_version="v-new", production_version="v-old", segments=segments)


def test_verdict_and_failed_gate_come_first():
    report = render_pr_report(failing_result(3))
    lines = report.splitlines()
    assert lines[0] == "# ❌ Model check: FAIL"
    assert "`max_regression.roc_auc`" in "\n".join(lines[:12])


def test_huge_sections_are_truncated_but_the_verdict_stays():
    report = render_pr_report(failing_result(20_000))
    assert len(report) < GITHUB_COMMENT_LIMIT
    assert report.startswith("# ❌ Model check: FAIL")
    assert "`max_regression.roc_auc`: roc_auc worse by 0.05" in report
    assert "section `segments` truncated" in report


def test_huge_error_message_is_cut_to_the_limit():
    report = render_pr_report(PrCheckResult(status="error", error="x" * 200_000))
    assert len(report) < GITHUB_COMMENT_LIMIT
    assert report.startswith("# ⛔")


def test_deepchecks_sampling_is_stated():
    summary = SuiteSummary(suite="data_integrity", sample_sizes={"data": 10_000}, input_sizes={"data": 30_000})
    report = render_pr_report(PrCheckResult(status="pass", deepchecks={"data_integrity": summary}))
    assert "data 10,000 of 30,000 rows" in report
