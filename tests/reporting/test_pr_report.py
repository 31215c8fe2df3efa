"""The PR report stays under GitHub's comment limit without ever losing the verdict."""

from __future__ import annotations

import pandas as pd

from gitops_ml.evaluation.gates import GateResult, Verdict
from gitops_ml.quality.deepchecks_suites import SuiteSummary
from gitops_ml.reporting.markdown import GITHUB_COMMENT_LIMIT
from gitops_ml.reporting.pr_report import PrCheckResult, render_pr_report


def failing_result(n_segments: int) -> PrCheckResult:
    gate = GateResult(
        name="max_regression.roc_auc",
        passed=False,
        reason="roc_auc worse by 0.05 (allowed 0.01)",
        metric="roc_auc",
        threshold=0.01,
        observed=-0.05,
        status="fail",
    )
    segments = pd.DataFrame(
        {
            "column": ["region"] * n_segments,
            "value": [f"r{i}" for i in range(n_segments)],
            "n": [100] * n_segments,
            "production": [0.8] * n_segments,
            "candidate": [0.7] * n_segments,
            "delta": [-0.1] * n_segments,
            "flagged": [True] * n_segments,
        }
    )
    return PrCheckResult(
        status="fail",
        verdict=Verdict(passed=False, status="fail", gates=[gate], headline="FAIL: 1 of 1 gates failed"),
        candidate_version="v-new",
        production_version="v-old",
        segments=segments,
    )


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
    summary = SuiteSummary(
        suite="data_integrity", sample_sizes={"data": 10_000}, input_sizes={"data": 30_000}
    )
    report = render_pr_report(PrCheckResult(status="pass", deepchecks={"data_integrity": summary}))
    assert "data 10,000 of 30,000 rows" in report


def test_deepchecks_problems_name_string_classes_behind_their_codes():
    from gitops_ml.quality.deepchecks_suites import CheckOutcome, ConditionOutcome

    failed = CheckOutcome(
        "ConfusionMatrixReport",
        "failed",
        True,
        (ConditionOutcome("Misclassified cell size", "failed", "class 1 predicted as 0"),),
    )
    summary = SuiteSummary(suite="model_evaluation", checks=(failed,), label_codes=("churned", "stayed"))
    report = render_pr_report(PrCheckResult(status="fail", deepchecks={"model_evaluation": summary}))
    assert "class 1 predicted as 0" in report
    assert "by code: 0 = `churned`, 1 = `stayed`" in report


# --- per-task metric sections and charts (generated predictions, no repo config or data) -------

import re  # noqa: E402

import numpy as np  # noqa: E402

from gitops_ml.config import BootstrapConfig  # noqa: E402
from gitops_ml.evaluation.compare import compare_models  # noqa: E402
from gitops_ml.evaluation.metrics import Predictions, metric_names, per_class_metrics  # noqa: E402
from gitops_ml.evaluation.segments import segment_comparison  # noqa: E402
from tests.evaluation.synthetic import multiclass_preds, regression_preds  # noqa: E402

CFG = BootstrapConfig(n_resamples=100, seed=0)


def _charts(report: str) -> list[tuple[str, list[str], float, float]]:
    """(title, x labels, y min, y max) of every Mermaid chart in the report."""
    out = []
    for body in re.findall(r"```mermaid\nxychart-beta\n(.*?)```", report, flags=re.DOTALL):
        title = re.search(r'title "(.*?)"', body).group(1)
        labels = re.findall(r'"(.*?)"', re.search(r"x-axis \[(.*?)\]", body).group(1))
        lo, hi = map(float, re.search(r'y-axis ".*?" (\S+) --> (\S+)', body).groups())
        out.append((title, labels, lo, hi))
    return out


def test_multiclass_report_has_every_metric_a_per_class_table_and_one_range_per_axis():
    cand = multiclass_preds(n=500, seed=1, classes=("setosa", "versicolor", "virginica"))
    prod = multiclass_preds(n=500, seed=1, classes=("setosa", "versicolor", "virginica"))
    result = PrCheckResult(
        status="pass",
        comparison=compare_models(cand, prod, None, CFG),
        primary_metric="f1_macro",
        per_class=per_class_metrics(cand),
        per_class_production=per_class_metrics(prod),
    )
    report = render_pr_report(result)
    for name in metric_names("multiclass")[:-1]:  # all but expected_cost (no costs here)
        assert f"| {name} " in report
    table = report.split("## Per class (candidate)")[1].split("##")[0]
    assert "| class | support | precision | recall | F1 | recall (production) | F1 (production) |" in table
    assert all(f"| {c} |" in table for c in ("setosa", "versicolor", "virginica"))
    charts = _charts(report)
    assert all(hi <= 1.0 for title, labels, lo, hi in charts if "log_loss" not in title)
    log_loss = [c for c in charts if c[0].startswith("log_loss")]
    assert len(log_loss) == 1 and log_loss[0][1] == ["production", "candidate"]  # alone on its axis
    assert not any("log_loss" in labels for _, labels, _, _ in charts)


def test_regression_charts_never_draw_r2_above_1_nor_mix_ranges():
    good, bad = regression_preds(seed=3, noise=1.0), regression_preds(seed=3, noise=4.0)
    report = render_pr_report(
        PrCheckResult(status="pass", comparison=compare_models(good, bad, None, CFG), primary_metric="rmse")
    )
    for name in ("rmse", "mae", "r2", "mape", "median_ae"):
        assert f"| {name} " in report
    assert "## Per class" not in report
    charts = {title: (labels, lo, hi) for title, labels, lo, hi in _charts(report)}
    r2 = charts["r2 (higher is better)"]
    assert r2[2] <= 1.0 and r2[0] == ["production", "candidate"]
    errors = charts["Candidate vs production (lower is better)"]
    assert errors[0] == ["rmse", "mae", "median_ae"]  # same units: one axis
    assert "mape (lower is better)" in charts  # a fraction: its own axis
    assert not any("r2" in labels and len(labels) > 2 for labels, _, _ in charts.values())


def test_float_coded_segments_print_as_written_and_small_ones_say_why():
    cand, prod = regression_preds(n=300, seed=4), regression_preds(n=300, seed=5)
    prod = Predictions(cand.y_true, prod.y_pred, None, "regression")
    frame = pd.DataFrame(
        {"rooms": np.r_[np.full(290, 3.0), np.full(10, 7.0)], "zone": ["a"] * 150 + ["b"] * 150}
    )
    seg = segment_comparison(
        cand,
        prod,
        frame,
        ["rooms", "zone"],
        min_size=50,
        metric="rmse",
        bootstrap=BootstrapConfig(n_resamples=100),
    )
    report = render_pr_report(
        PrCheckResult(
            status="pass",
            comparison=compare_models(cand, prod, None, CFG),
            primary_metric="rmse",
            segments=seg,
        )
    )
    section = report.split("## Segments (rmse)")[1].split("\n## ")[0]
    assert "| rooms | 3 | 290 |" in section and "3.0000" not in section
    assert "| rooms | 7 | 10 |" in section and "skipped: n=10 < min_segment_size=50" in section
    assert '"rooms=3"' in report  # the segment chart label too


def test_many_classes_stay_under_the_comment_limit():
    classes = tuple(f"class_{i:03d}" for i in range(120))
    preds = multiclass_preds(n=1200, seed=2, classes=classes)
    result = PrCheckResult(
        status="pass",
        comparison=compare_models(preds, None, ["accuracy", "f1_macro"], CFG),
        primary_metric="f1_macro",
        per_class=per_class_metrics(preds),
    )
    report = render_pr_report(result)
    assert len(report) < GITHUB_COMMENT_LIMIT
    assert "and 70 more classes in summary.json" in report


def test_curves_render_as_mermaid_line_charts_on_a_numeric_axis():
    from gitops_ml.evaluation.curves import task_curves
    from tests.evaluation.synthetic import binary_pair

    cand, prod = binary_pair(n=800, seed=2)
    result = PrCheckResult(
        status="pass", comparison=compare_models(cand, prod, None, CFG), curves=task_curves(cand, prod)
    )
    report = render_pr_report(result)
    section = report.split("## Curves")[1].split("\n## ")[0]
    assert section.count("```mermaid") == 3
    assert 'x-axis "false positive rate" 0 --> 1' in section
    roc = section.split("```mermaid")[1]
    assert roc.count("  line [") == 3  # candidate, production, chance on one chart
    assert "_line 1: candidate (AUC " in section and "line 3: chance" in section
    assert len(report) < GITHUB_COMMENT_LIMIT
