"""The model card: every section from the recorded JSON, deterministic, and inert to injected markup."""

from __future__ import annotations

from typing import Any

from gitops_ml.reporting.model_card import CardInputs, render_model_card


def _metadata(**extra: Any) -> dict[str, Any]:
    return {
        "version": "v-123",
        "task": "binary",
        "target": "churned",
        "dataset": "churn",
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "features": ["tenure_months", "plan"],
        "data_hash": "d" * 64,
        "sha256": "s" * 64,
        "git_commit": "c" * 40,
        "config_hash": "h" * 64,
        "created_at": "2026-01-01T00:00:00+00:00",
        "library_versions": {"sklearn": "1.7.2"},
        "decision": {
            "kind": "threshold",
            "threshold": 0.23,
            "positive_label": 1,
            "validation_rows": 400,
            "validation_cost": 120.5,
            "default_cost": 150.0,
        },
        **extra,
    }


def _summary(**extra: Any) -> dict[str, Any]:
    return {
        "data": {"rows": 2000, "batches": 2, "split": "time split: train 1,600 rows, holdout 400 rows"},
        "comparison": {
            "n_rows": 400,
            "confidence": 0.95,
            "n_resamples": 1000,
            "method": "paired bootstrap",
            "metrics": [
                {"metric": "roc_auc", "direction": "higher", "candidate": 0.81, "candidate_ci": [0.77, 0.85]},
                {
                    "metric": "expected_cost",
                    "direction": "lower",
                    "candidate": 130.0,
                    "candidate_ci": [110, 150],
                },
            ],
        },
        "segments": [
            {"column": "region", "value": "north", "n": 180, "metric": "roc_auc", "candidate": 0.8},
            {
                "column": "region",
                "value": "islands",
                "n": 12,
                "metric": "roc_auc",
                "candidate": None,
                "note": "too few rows",
            },
        ],
        "deepchecks": {
            "train_test_validation": {
                "skipped": False,
                "checks": [
                    {"check": "FeatureDrift", "status": "failed", "error": None},
                    {"check": "LabelDrift", "status": "passed", "error": None},
                    {"check": "NewCategory", "status": "error", "error": "boom"},
                ],
            }
        },
        "decision_warnings": [],
        **extra,
    }


def _inputs(**extra: Any) -> CardInputs:
    fields: dict[str, Any] = {
        "metadata": _metadata(),
        "summary": _summary(),
        "contract_description": {"purpose": "Predict churn.", "limitations": "One row per customer."},
        "contract": "data_contracts/churn.odcs.yaml (version 1.0.0)",
        "owner": "data-science (owner)",
        "positive_label": 1,
        "costs_note": "false positive 1, false negative 9 (EUR per decision)",
        "batches": [
            {
                "name": "b1",
                "rows": 1000,
                "sha256": "a" * 64,
                "time_range": {"start": "2026-01-01", "end": "2026-01-31"},
            },
            {
                "name": "b2",
                "rows": 1000,
                "sha256": "b" * 64,
                "time_range": {"start": "2026-02-01", "end": "2026-02-28"},
            },
        ],
        "min_segment_size": 50,
        **extra,
    }
    return CardInputs(**fields)


def test_binary_card_has_use_data_metrics_segments_threshold_limitations_and_lineage():
    card = render_model_card(_inputs())
    assert card.startswith("# Model card: `v-123`")
    assert "- Purpose: Predict churn." in card and "- Owner: data-science (owner)" in card
    assert "binary classification of `churned` (positive class `1`)" in card
    assert "- Time range: 2026-01-01 to 2026-02-28" in card and "| b1 | 1,000 |" in card
    assert "| roc_auc ↑ | 0.8100 | [0.7700, 0.8500] |" in card
    assert "| region = north | 180 | roc_auc | 0.8000 |" in card
    assert "- Decides: P(1) >= 0.230, chosen by cost on 400 validation rows" in card
    assert "- Costs: false positive 1, false negative 9 (EUR per decision)" in card
    assert "deepchecks train&#91;" not in card
    assert "deepchecks train_test_validation/FeatureDrift: failed" in card
    assert "deepchecks train_test_validation/NewCategory: error: boom" in card
    assert "LabelDrift" not in card
    assert "Segments too small to judge (< 50 holdout rows): region = islands (12)" in card
    assert "From the data contract: One row per customer." in card
    assert "Drift seen in monitoring: no monitoring window was available at promotion" in card
    assert "model sha256     " + "s" * 64 in card
    assert render_model_card(_inputs()) == card  # same inputs, same bytes: the git diff shows only changes


def test_regression_card_has_no_threshold_and_says_what_is_missing():
    meta = _metadata(task="regression", target="charges", decision=None)
    card = render_model_card(
        _inputs(
            metadata=meta,
            summary=_summary(deepchecks={}, segments=[]),
            owner=None,
            contract_description={},
            costs_note=None,
        )
    )
    assert "- Decisions: none (regression: the prediction is the served value)" in card
    assert "- Costs: none configured (`evaluation.costs`)" in card
    assert "- Owner: not stated (contract `team`)" in card
    assert "deepchecks: not run for this version (not run is never a pass)" in card
    assert "## By segment" not in card


def test_multiclass_card_names_the_cost_matrix_rule_and_drift_seen_in_monitoring():
    meta = _metadata(
        task="multiclass", target="plan", decision={"kind": "min_expected_cost", "cost_matrix": {}}
    )
    monitoring = {
        "model_version": "v-100",
        "window": {
            "window_start": "2026-03-01T00:00:00+00:00",
            "window_end": "2026-03-08T00:00:00+00:00",
            "drift": {
                "features": [
                    {"feature": "tenure_months", "drifted": True},
                    {"feature": "plan", "drifted": False},
                ]
            },
        },
    }
    warnings = ["on the holdout, the candidate decides every one of the 400 rows 'premium'"]
    card = render_model_card(
        _inputs(metadata=meta, monitoring=monitoring, summary=_summary(decision_warnings=warnings))
    )
    assert "multiclass classification of `plan` on dataset" in card
    assert "- Decides: the class of minimum expected cost under the cost matrix" in card
    assert "Drift seen in monitoring (window 2026-03-01T00:00:00+00:00 to 2026-03-08T00:00:00+00:00" in card
    assert (
        "`tenure_months`" in card.split("Drift seen in monitoring")[1]
        and "`plan`" not in card.split("Drift seen")[1]
    )
    assert "decides every one of the 400 rows 'premium'" in card


def test_values_from_a_pull_request_cannot_inject_links_html_or_table_cells():
    evil = "see [here](https://evil.example) <img src=x onerror=alert(1)> | x"
    card = render_model_card(
        _inputs(
            contract_description={"purpose": evil},
            metadata=_metadata(features=["a`b|c"]),
            summary=_summary(
                segments=[{"column": "r|x", "value": "<b>", "n": 100, "metric": "roc_auc", "candidate": 1}]
            ),
        )
    )
    assert "[here](" not in card and "<img" not in card and "<b>" not in card
    assert "&#91;here&#93;" in card and "&#60;img" in card
    assert (
        "`a'b\\|c`" in card
    )  # a code span: the backtick cannot close it early, the pipe cannot split a cell
    segment_row = next(line for line in card.splitlines() if line.startswith("| r&#124;x"))
    assert segment_row.count(" | ") == 4  # still five cells
