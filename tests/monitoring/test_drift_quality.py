"""Drift quality on the churn generator: stable traffic never triggers a retrain, covariate and concept
drift are caught within two windows of onset (one window = one month of traffic, 70% labelled)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from gitops_ml.config import FeaturesConfig, MonitoringConfig
from gitops_ml.monitoring.drift import build_reference
from gitops_ml.monitoring.performance import labelled_predictions
from gitops_ml.monitoring.policy import assess_window, decide, make_record
from gitops_ml.monitoring.report import render_monitor_report
from tests.fixtures.projects import CHURN

ROWS = 1_500
ONSET = "2026-07"


@pytest.fixture(scope="module")
def monitoring_cfg() -> MonitoringConfig:
    """The committed policy (config/monitoring.yaml), so the test checks what the project ships."""
    return MonitoringConfig.model_validate(yaml.safe_load((CHURN / "config" / "monitoring.yaml").read_text()))


@pytest.fixture(scope="module")
def trained():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from gitops_ml.data.generator import generate_month, month_range

    features = FeaturesConfig.model_validate(yaml.safe_load((CHURN / "config" / "features.yaml").read_text()))
    num, cat = features.numeric, features.categorical
    train = pd.concat(
        [generate_month(m, ROWS, seed=7, id_offset=i * ROWS) for i, m in enumerate(month_range("2026-01", 2))]
    )
    holdout = generate_month("2026-03", ROWS, seed=7, id_offset=10 * ROWS)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                cat,
            ),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(train[num + cat], train["churned"])
    scores = model.predict_proba(holdout[num + cat])[:, 1]
    baseline = roc_auc_score(holdout["churned"], scores)
    reference = build_reference(train, num, cat, prediction_scores=scores)
    return model, num + cat, reference, baseline


def _monitor(trained, cfg, scenario, months):
    """Run the monitor month by month; returns (window results, decisions, history)."""
    from gitops_ml.data.generator import generate_month

    model, columns, reference, baseline = trained
    history, results, decisions = [], [], []
    for i, month in enumerate(months):
        window = generate_month(month, ROWS, seed=11, scenario=scenario, id_offset=100_000 + i * ROWS)
        scores = model.predict_proba(window[columns])[:, 1]
        labels = window["churned"].to_numpy(dtype="float64")
        labels[int(0.7 * ROWS) :] = np.nan  # late labels: 30% not arrived yet
        start = pd.Timestamp(f"{month}-01", tz="UTC")
        end = start + pd.offsets.MonthBegin()
        served = model.predict(window[columns])
        labelled, _ = labelled_predictions(
            "binary", labels, served, scores, classes=model.classes_, positive_label=1
        )
        result = assess_window(
            reference,
            window,
            cfg,
            window_start=start.to_pydatetime(),
            window_end=end.to_pydatetime(),
            y_score=scores,
            labelled=labelled,
            baseline_value=baseline,
            model_version="v1",
            n_resamples=300,
        )
        decision = decide(history, result, cfg, now=end.to_pydatetime(), last_retrain_pr_at=None)
        history.append(make_record(result, decision, created_at=end.to_pydatetime()))
        results.append(result)
        decisions.append(decision)
    return results, decisions, history


def test_twenty_stable_windows_never_retrain(trained, monitoring_cfg):
    from gitops_ml.data.generator import STABLE, month_range

    results, decisions, _ = _monitor(trained, monitoring_cfg, STABLE, month_range("2026-04", 20))
    assert [d.action for d in decisions].count("retrain") == 0
    assert sum(d.bad_window for d in decisions) <= 1
    assert all(r.performance.status == "ok" for r in results)  # labels were there: decay was really assessed


def test_covariate_drift_detected_within_two_windows(trained, monitoring_cfg):
    from gitops_ml.data.generator import COVARIATE_DRIFT, month_range

    months = month_range("2026-04", 6)
    onset = months.index(ONSET)
    results, decisions, history = _monitor(trained, monitoring_cfg, COVARIATE_DRIFT.with_onset(ONSET), months)
    actions = [d.action for d in decisions]
    assert "retrain" not in actions[:onset]
    first = actions.index("retrain")
    assert first <= onset + 1
    assert decisions[onset].bad_window
    assert len(results[onset].drift.drifted_features) > monitoring_cfg.max_drifted_features
    assert not any(r.drift.drifted_features for r in results[:onset])
    text = render_monitor_report(results[first], decisions[first], history[:first], model_version="v1")
    assert text.startswith("## Model monitor: RETRAIN")
    assert "monthly_charges" in text and "xychart-beta" in text


def test_concept_drift_detected_through_performance(trained, monitoring_cfg):
    from gitops_ml.data.generator import CONCEPT_DRIFT, month_range

    months = month_range("2026-04", 6)
    onset = months.index(ONSET)
    results, decisions, _ = _monitor(trained, monitoring_cfg, CONCEPT_DRIFT.with_onset(ONSET), months)
    actions = [d.action for d in decisions]
    assert "retrain" not in actions[:onset]
    assert actions.index("retrain") <= onset + 1
    # features and scores did not move: the evidence is the performance decay alone
    for result in results:
        assert len(result.drift.drifted_features) <= monitoring_cfg.max_drifted_features
        assert not result.drift.prediction_drifted
    assert not any(r.performance.decayed for r in results[:onset])
    assert results[onset].performance.decayed
    assert any("performance decayed" in reason for reason in decisions[onset].reasons)
