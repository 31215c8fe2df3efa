"""deepchecks suites built from config: every outcome explicit, never a silent pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from gitops_ml.config import CheckSpec, DeepchecksConfig, SuiteConfig, load_settings
from gitops_ml.errors import ConfigError
from gitops_ml.quality.deepchecks_suites import (
    STATUSES,
    SuiteSummary,
    _label_for,
    deepchecks_session,
    run_data_integrity,
    run_model_evaluation,
    run_train_test_validation,
    validate_deepchecks_config,
)
from tests.fixtures.projects import CHURN


@pytest.fixture(scope="module", autouse=True)
def _one_runner_process() -> Any:
    """One deepchecks process for the module, as a PR check has (each start imports deepchecks)."""
    with deepchecks_session():
        yield


def dc_config(sample_size: int = 10_000, **suites: list[dict[str, Any]]) -> DeepchecksConfig:
    return DeepchecksConfig(
        sample_size=sample_size,
        **{name: SuiteConfig(checks=[CheckSpec(**c) for c in checks]) for name, checks in suites.items()},
    )


def integrity(df: pd.DataFrame, cfg: DeepchecksConfig, columns: dict[str, Any], **kw: Any) -> SuiteSummary:
    return run_data_integrity(df, cfg=cfg, **{**columns, **kw})


def by_name(summary: SuiteSummary) -> dict[str, Any]:
    return {c.check: c for c in summary.checks}


def test_integrity_counts_on_clean_data(train_df: pd.DataFrame, columns: dict[str, Any]) -> None:
    cfg = dc_config(
        data_integrity=[
            {"check": "MixedNulls"},
            {
                "check": "DataDuplicates",
                "conditions": {"add_condition_ratio_less_or_equal": {"max_ratio": 0.0}},
            },
            {"check": "ConflictingLabels"},
            {"check": "OutlierSampleDetection"},  # no default condition
        ]
    )
    summary = integrity(train_df, cfg, columns)
    statuses = {c.check: c.status for c in summary.checks}
    assert statuses == {
        "MixedNulls": "passed",
        "DataDuplicates": "passed",
        "ConflictingLabels": "passed",
        "OutlierSampleDetection": "info",  # ran, but nothing to pass or fail
    }
    assert summary.counts == {"failed": 0, "error": 0, "not_run": 0, "warned": 0, "passed": 3, "info": 1}
    assert set(summary.counts) == set(STATUSES)
    assert summary.sample_sizes == {"data": len(train_df)}
    assert summary.blocking_failures == ()
    assert summary.html_path is None
    # empty `conditions` = deepchecks' default condition for the check
    assert [c.name for c in by_name(summary)["MixedNulls"].conditions] == [
        "Number of different null types is less or equal to 1"
    ]


def test_injected_duplicates_block_the_gates(train_df: pd.DataFrame, columns: dict[str, Any]) -> None:
    duplicated = pd.concat([train_df, train_df.head(30)], ignore_index=True)
    strict = {"add_condition_ratio_less_or_equal": {"max_ratio": 0.0}}
    cfg = dc_config(
        data_integrity=[
            {"check": "DataDuplicates", "conditions": strict, "blocking": True},
            {"check": "MixedNulls", "blocking": True},
        ]
    )
    summary = integrity(duplicated, cfg, columns)
    dup = by_name(summary)["DataDuplicates"]
    # deepchecks' only failing category for this condition is WARN; blocking makes it count
    assert dup.status == "warned"
    assert dup.conditions[0].status == "warned"
    assert "duplicate" in dup.conditions[0].details.lower()
    assert [c.check for c in summary.blocking_failures] == ["DataDuplicates"]
    assert summary.counts["warned"] == 1


@pytest.mark.parametrize("blocking", [True, False])
def test_failed_condition(train_df: pd.DataFrame, columns: dict[str, Any], blocking: bool) -> None:
    # tenure_months drives the label, so its PPS is far above 0.01
    strict = {"add_condition_feature_pps_less_than": {"threshold": 0.01}}
    cfg = dc_config(
        data_integrity=[{"check": "FeatureLabelCorrelation", "conditions": strict, "blocking": blocking}]
    )
    summary = integrity(train_df, cfg, columns)
    outcome = summary.checks[0]
    assert outcome.status == "failed"
    assert "tenure_months" in outcome.conditions[0].details
    assert summary.counts["failed"] == 1
    assert summary.blocking_failures == ((outcome,) if blocking else ())


@pytest.mark.parametrize(
    ("spec", "with_label", "expected", "message"),
    [
        ({"check": "ConflictingLabels"}, False, "not_run", "label"),
        ({"check": "FeatureDrift"}, True, "not_run", "train and test"),
        ({"check": "RocReport"}, True, "not_run", "model"),
        (
            {"check": "DataDuplicates", "params": {"columns": ["no_such_column"]}},
            True,
            "error",
            "no_such_column",
        ),
        ({"check": "DataDuplicates", "params": {"colums": ["plan"]}}, True, "error", "colums"),
    ],
    ids=["no-label", "train-test-check-on-one-dataset", "no-model", "bad-column", "misspelt-param"],
)
def test_check_that_cannot_run_is_never_passed(
    train_df: pd.DataFrame,
    columns: dict[str, Any],
    spec: dict[str, Any],
    with_label: bool,
    expected: str,
    message: str,
) -> None:
    cfg = dc_config(data_integrity=[{**spec, "blocking": True}, {"check": "MixedNulls"}])
    summary = integrity(train_df, cfg, columns, **({} if with_label else {"label": None}))
    outcome = summary.checks[0]
    assert outcome.status == expected
    assert message in (outcome.error or "")
    assert outcome.conditions == ()
    # fail closed: a blocking check that could not be evaluated blocks
    assert summary.blocking_failures == (outcome,)
    # the other check still ran
    assert summary.checks[1].status == "passed"


def test_unknown_check_name_is_a_config_error(train_df: pd.DataFrame, columns: dict[str, Any]) -> None:
    cfg = dc_config(data_integrity=[{"check": "MixedNulls"}, {"check": "DataDuplicate"}])
    with pytest.raises(ConfigError) as err:
        integrity(train_df, cfg, columns)
    text = str(err.value)
    assert "DataDuplicate" in text
    assert "evaluation.deepchecks.data_integrity.checks[1]" in text
    assert "DataDuplicates" in text  # the suggestion


def test_unknown_condition_is_a_config_error(train_df: pd.DataFrame, columns: dict[str, Any]) -> None:
    cfg = dc_config(data_integrity=[{"check": "DataDuplicates", "conditions": {"add_condition_nope": {}}}])
    with pytest.raises(ConfigError, match=r"data_integrity\.checks\[0\]\.conditions.*add_condition_nope"):
        integrity(train_df, cfg, columns)


def test_validate_accepts_the_shipped_churn_config() -> None:
    validate_deepchecks_config(load_settings(CHURN / "config").evaluation.deepchecks)


def test_validate_reports_every_problem_without_running() -> None:
    cfg = dc_config(
        data_integrity=[
            {"check": "NoSuchCheck"},
            {"check": "RocReport"},  # needs a model
            {"check": "DataDuplicates", "params": {"colums": ["plan"]}},
            {"check": "MultiModelPerformanceReport"},
        ],
        train_test_validation=[
            {
                "check": "FeatureDrift",
                "conditions": {"add_condition_drift_score_less_than": {"max_score": 1}},
            },
        ],
        model_evaluation=[
            {"check": "RocReport", "conditions": {"add_condition_auc_greater_than": {"min_auc": 0.7}}},
            {"check": "BoostingOverfit"},
        ],
    )
    with pytest.raises(ConfigError) as err:
        validate_deepchecks_config(cfg)
    text = str(err.value)
    assert "data_integrity.checks[0].check: unknown deepchecks check 'NoSuchCheck'" in text
    assert "data_integrity.checks[1]: RocReport needs a model" in text
    assert "data_integrity.checks[2].params: DataDuplicates: unknown parameter(s) ['colums']" in text
    assert "data_integrity.checks[3]: MultiModelPerformanceReport cannot run in a suite" in text
    assert "train_test_validation.checks[0].conditions.add_condition_drift_score_less_than" in text
    assert "model_evaluation.checks[0]" not in text
    assert "model_evaluation.checks[1]: BoostingOverfit needs the live model object (refits" in text


def test_train_test_validation_with_new_category(
    train_df: pd.DataFrame, test_df: pd.DataFrame, columns: dict[str, Any]
) -> None:
    test = test_df.copy()
    test.loc[test.index[:20], "plan"] = "enterprise"
    cfg = dc_config(
        train_test_validation=[
            {"check": "NewCategoryTrainTest", "blocking": True},
            {"check": "NewLabelTrainTest"},
            {"check": "DatasetsSizeComparison"},
        ]
    )
    summary = run_train_test_validation(train_df, test, cfg=cfg, **columns)
    statuses = {c.check: c.status for c in summary.checks}
    assert statuses == {
        "NewCategoryTrainTest": "failed",
        "NewLabelTrainTest": "passed",
        "DatasetsSizeComparison": "passed",
    }
    assert summary.sample_sizes == {"train": len(train_df), "test": len(test)}
    assert [c.check for c in summary.blocking_failures] == ["NewCategoryTrainTest"]


def test_model_evaluation_with_pipeline_on_raw_string_columns(
    train_df: pd.DataFrame, test_df: pd.DataFrame, fitted_model: Any, columns: dict[str, Any]
) -> None:
    cfg = dc_config(
        model_evaluation=[
            {"check": "RocReport", "conditions": {"add_condition_auc_greater_than": {"min_auc": 0.6}}},
            {"check": "ConfusionMatrixReport"},
            {"check": "BoostingOverfit", "blocking": True},  # needs the live model: never a pass
            {"check": "MultiModelPerformanceReport"},  # compares models: cannot run in a Suite
        ]
    )
    summary = run_model_evaluation(train_df, test_df, fitted_model, cfg=cfg, **columns)
    checks = by_name(summary)
    roc = checks["RocReport"]
    assert roc.status == "passed"
    # single-dataset checks run on train and on test; both conditions are reported
    assert [c.name.split("]")[0] for c in roc.conditions] == ["[train", "[test"]
    assert checks["ConfusionMatrixReport"].status == "info"
    boosting = checks["BoostingOverfit"]
    assert boosting.status == "error"
    assert "needs the live model object" in (boosting.error or "")
    assert summary.blocking_failures == (boosting,)
    assert checks["MultiModelPerformanceReport"].status == "error"
    assert summary.counts == {"failed": 0, "error": 2, "not_run": 0, "warned": 0, "passed": 1, "info": 1}


def test_feature_importance_checks_get_importances_from_the_core(
    train_df: pd.DataFrame, test_df: pd.DataFrame, fitted_model: Any, columns: dict[str, Any]
) -> None:
    """UnusedFeatures needs feature importances; without the model in its environment the core supplies them."""
    cfg = dc_config(model_evaluation=[{"check": "UnusedFeatures"}, {"check": "RocReport"}])
    summary = run_model_evaluation(train_df, test_df, fitted_model, cfg=cfg, **columns)
    statuses = {c.check: c.status for c in summary.checks}
    assert statuses == {"UnusedFeatures": "passed", "RocReport": "passed"}
    assert [c.check for c in summary.checks] == ["UnusedFeatures", "RocReport"]  # config order kept


class _CannotPredict:
    """A fitted-looking classifier whose predictions fail, like a pipeline given the wrong columns."""

    classes_ = np.array([0, 1])

    def fit(self, X: Any, y: Any) -> _CannotPredict:
        return self

    def predict(self, X: Any) -> Any:
        raise ValueError("columns are missing: ['usage_minutes']")

    def predict_proba(self, X: Any) -> Any:
        return self.predict(X)


def test_model_that_cannot_predict_errors_every_check(
    train_df: pd.DataFrame, test_df: pd.DataFrame, columns: dict[str, Any]
) -> None:
    cfg = dc_config(
        model_evaluation=[{"check": "RocReport", "blocking": True}, {"check": "ConfusionMatrixReport"}]
    )
    summary = run_model_evaluation(train_df, test_df, _CannotPredict(), cfg=cfg, **columns)
    assert {c.status for c in summary.checks} == {"error"}
    assert all("could not predict" in (c.error or "") and "usage_minutes" in c.error for c in summary.checks)
    assert [str(c) for c in summary.blocking_failures] == ["RocReport (error)"]


def test_sampling_is_seeded_and_capped(frame_factory: Any, columns: dict[str, Any]) -> None:
    big = frame_factory(600, seed=3)
    cfg = dc_config(sample_size=150, data_integrity=[{"check": "DataDuplicates"}])
    first = integrity(big, cfg, columns)
    assert first.sample_sizes == {"data": 150}
    assert first.input_sizes == {"data": 600}
    assert integrity(big, cfg, columns).to_dict()["checks"] == first.to_dict()["checks"]


def test_disabled_or_empty_suite_runs_nothing(train_df: pd.DataFrame, columns: dict[str, Any]) -> None:
    off = DeepchecksConfig(enabled=False, data_integrity=SuiteConfig(checks=[CheckSpec(check="NoSuchCheck")]))
    summary = integrity(train_df, off, columns)
    assert summary.skipped and summary.checks == ()
    empty = integrity(train_df, dc_config(data_integrity=[]), columns)
    assert not empty.skipped and empty.checks == ()


def test_summary_to_dict_is_json(train_df: pd.DataFrame, columns: dict[str, Any]) -> None:
    cfg = dc_config(
        data_integrity=[{"check": "MixedNulls", "blocking": True}, {"check": "ConflictingLabels"}]
    )
    data = json.loads(json.dumps(integrity(train_df, cfg, columns, label=None).to_dict()))
    assert data["suite"] == "data_integrity"
    assert data["counts"]["not_run"] == 1
    assert data["checks"][0]["conditions"][0]["status"] == "passed"
    assert data["blocking_failures"] == []


def test_binary_label_becomes_int() -> None:
    y, kind = _label_for(pd.Series([0.0, 1.0, 1.0]), None)
    assert y.dtype == "int64" and kind == "binary"
    y, kind = _label_for(pd.Series([True, False]), "binary")
    assert y.tolist() == [1, 0]
    y, kind = _label_for(pd.Series([0.0, None, 1.0]), "binary")
    assert y.dtype == "float64" and kind == "binary"
    y, kind = _label_for(pd.Series([0.5, 1.5, 2.5]), "regression")
    assert y.tolist() == [0.5, 1.5, 2.5] and kind == "regression"


def test_html_report_written_atomically(
    tmp_path: Path, train_df: pd.DataFrame, columns: dict[str, Any]
) -> None:
    target = tmp_path / "reports" / "integrity.html"
    target.parent.mkdir()
    target.write_text("old report")  # deepchecks would write "integrity (1).html" beside it
    cfg = dc_config(data_integrity=[{"check": "MixedNulls"}])
    summary = integrity(train_df, cfg, columns, html_path=target)
    assert summary.html_path == target
    html = target.read_text(encoding="utf-8")
    assert len(html) > 10_000 and "Mixed Nulls" in html
    assert sorted(p.name for p in target.parent.iterdir()) == ["integrity.html"]


def test_string_multiclass_labels_are_encoded_for_deepchecks(
    frame_factory: Any, model_factory: Any, columns: dict[str, Any]
) -> None:
    """deepchecks' TrainTestPerformance / SimpleModelComparison fail on string classes (pos_label=1)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    def with_plan_label(seed: int) -> pd.DataFrame:
        frame = frame_factory(300, seed=seed)
        return frame.assign(
            tier=np.where(
                frame["tenure_months"] < 40, "new", np.where(frame["support_calls"] > 2, "at-risk", "loyal")
            )
        )

    train, test = with_plan_label(1), with_plan_label(2)
    cols = {**columns, "label": "tier"}
    model = model_factory(HistGradientBoostingClassifier(max_iter=20, random_state=0))
    model.fit(train[cols["features"]], train["tier"])
    cfg = dc_config(
        model_evaluation=[
            {"check": "TrainTestPerformance"},
            {"check": "SimpleModelComparison"},
            {"check": "ConfusionMatrixReport"},
        ]
    )
    summary = run_model_evaluation(train, test, model, cfg=cfg, task="multiclass", **cols)
    for outcome in summary.checks:
        assert outcome.status not in ("error", "not_run"), (outcome.check, outcome.error)
    # deepchecks saw codes; the summary keeps the legend so the report can name the classes
    assert summary.label_codes == ("at-risk", "loyal", "new")


def test_regression_checks_run(frame_factory: Any, model_factory: Any, columns: dict[str, Any]) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    train, test = frame_factory(300, seed=1), frame_factory(200, seed=2)
    cols = {
        **columns,
        "label": "monthly_charges",
        "features": [f for f in columns["features"] if f != "monthly_charges"],
    }
    model = make_pipeline(
        ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), cols["cat_features"])], remainder="passthrough"
        ),
        HistGradientBoostingRegressor(max_iter=20, random_state=0),
    ).fit(train[cols["features"]], train["monthly_charges"])
    cfg = dc_config(
        model_evaluation=[
            {"check": "RegressionErrorDistribution"},
            {"check": "TrainTestPerformance"},
            {"check": "SimpleModelComparison"},
        ]
    )
    summary = run_model_evaluation(train, test, model, cfg=cfg, task="regression", **cols)
    for outcome in summary.checks:
        assert outcome.status not in ("error", "not_run"), (outcome.check, outcome.error)
    assert len(by_name(summary)["RegressionErrorDistribution"].conditions) == 4  # 2 conditions x train, test
