from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from gitops_ml.config import Settings
from gitops_ml.data.split import split_frame
from gitops_ml.errors import ConfigError, DataError
from tests.fixtures.projects import CHURN


def _settings(task: str = "binary", target: str = "churned", **split: Any) -> Settings:
    return Settings.model_validate(
        {
            "dataset": {
                "name": "churn",
                "contract": "c.yaml",
                "manifest": "m.yaml",
                "target": target,
                "id_column": "customer_id",
                "time_column": "snapshot_date",
                "task": task,
            },
            "features": {"numeric": ["tenure_months"], "categorical": ["plan"]},
            "split": {"strategy": "time", **split},
            "estimator": {"class_path": "sklearn.linear_model.LogisticRegression"},
        }
    )


def _frame(months: list[str], per_month: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(months) * per_month
    return pd.DataFrame(
        {
            "customer_id": [f"CUST-{i:07d}" for i in range(n)],
            "snapshot_date": np.repeat([f"{m}-01" for m in months], per_month),
            "tenure_months": rng.integers(0, 121, n),
            "plan": rng.choice(["basic", "standard", "premium"], n),
            "churned": rng.permutation(np.arange(n) % 4 == 0).astype(int),  # 25 % positives
            "spend": rng.normal(size=n),
        }
    )


MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]


def test_time_split_holds_out_the_newest_period() -> None:
    df = _frame(MONTHS).sample(frac=1, random_state=1)  # order of rows must not matter
    result = split_frame(df, _settings())
    assert set(result.holdout["snapshot_date"]) == {"2026-06-01"}
    assert set(result.train["snapshot_date"]) == {f"{m}-01" for m in MONTHS[:-1]}
    assert len(result.train) == 250 and len(result.holdout) == 50
    assert "2026-01..2026-05" in result.description and "holdout 2026-06" in result.description
    assert list(result.train.index) == list(range(250))  # fresh index
    assert set(result.train["customer_id"]).isdisjoint(result.holdout["customer_id"])


def test_time_split_several_periods_and_coarser_granularity() -> None:
    df = _frame(MONTHS)
    two = split_frame(df, _settings(holdout_periods=2))
    assert set(two.holdout["snapshot_date"]) == {"2026-05-01", "2026-06-01"}
    quarterly = split_frame(df, _settings(period="Q"))
    assert set(quarterly.holdout["snapshot_date"]) == {"2026-04-01", "2026-05-01", "2026-06-01"}
    assert "2026Q2" in quarterly.description


def test_time_split_accepts_datetime_column() -> None:
    df = _frame(MONTHS[:3])
    df["snapshot_date"] = pd.to_datetime(df["snapshot_date"])
    assert len(split_frame(df, _settings()).holdout) == 50


def test_time_split_needs_two_periods() -> None:
    with pytest.raises(DataError, match=r"at least 2 distinct periods.*2026-01"):
        split_frame(_frame(["2026-01"]), _settings())
    # two months fall in one quarter
    with pytest.raises(DataError, match="at least 2 distinct periods"):
        split_frame(_frame(["2026-01", "2026-02"]), _settings(period="Q"))


def test_time_split_holding_out_everything_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"split\.holdout_periods: 3 leaves no training data"):
        split_frame(_frame(MONTHS[:3]), _settings(holdout_periods=3))


def test_time_split_bad_time_values_are_shown() -> None:
    df = _frame(MONTHS[:3])
    df.loc[4, "snapshot_date"] = "someday"
    df.loc[7, "snapshot_date"] = None
    with pytest.raises(DataError, match=r"snapshot_date.*2 missing or unparseable.*someday"):
        split_frame(df, _settings())


def test_binary_holdout_with_single_class_is_refused() -> None:
    df = _frame(MONTHS[:3])
    df.loc[df["snapshot_date"] == "2026-03-01", "churned"] = 0
    with pytest.raises(DataError, match=r"holdout set has a single class of 'churned'"):
        split_frame(df, _settings())


def test_stratified_split_keeps_class_balance_and_is_seeded() -> None:
    df = _frame(MONTHS)
    settings = _settings(strategy="stratified", test_size=0.2, seed=3)
    first = split_frame(df, settings)
    assert len(first.holdout) == 60 and len(first.train) == 240
    assert first.holdout["churned"].mean() == pytest.approx(0.25)
    assert first.train["churned"].mean() == pytest.approx(0.25)
    second = split_frame(df, settings)
    pd.testing.assert_frame_equal(first.holdout, second.holdout)
    other = split_frame(df, _settings(strategy="stratified", test_size=0.2, seed=4))
    assert set(other.holdout["customer_id"]) != set(first.holdout["customer_id"])
    # rows keep their source order
    assert first.holdout["customer_id"].is_monotonic_increasing
    assert "stratified" in first.description and "seed=3" in first.description


def test_stratified_needs_classification() -> None:
    with pytest.raises(ConfigError, match=r"split\.strategy: 'stratified' needs a classification task"):
        split_frame(_frame(MONTHS), _settings(task="regression", target="spend", strategy="stratified"))


def test_stratified_needs_two_rows_per_class() -> None:
    df = _frame(MONTHS[:2])
    df["churned"] = 0
    df.loc[0, "churned"] = 1
    with pytest.raises(DataError, match=r">= 2 rows per class.*1: 1"):
        split_frame(df, _settings(strategy="stratified"))


def test_random_split_for_regression() -> None:
    df = _frame(MONTHS)
    settings = _settings(task="regression", target="spend", strategy="random", test_size=0.25, seed=1)
    result = split_frame(df, settings)
    assert len(result.holdout) == 75 and len(result.train) == 225
    pd.testing.assert_frame_equal(result.train, split_frame(df, settings).train)


def test_random_split_too_small_is_a_data_error() -> None:
    df = _frame(MONTHS[:1], per_month=1)
    with pytest.raises(DataError, match="cannot split 1 rows with test_size=0.1"):
        split_frame(df, _settings(task="regression", target="spend", strategy="random", test_size=0.1))


def test_missing_target_and_empty_frame() -> None:
    with pytest.raises(DataError, match="target column 'churned'"):
        split_frame(_frame(MONTHS).drop(columns="churned"), _settings())
    with pytest.raises(DataError, match="no rows"):
        split_frame(_frame(MONTHS).iloc[:0], _settings())


def test_train_periods_keeps_only_the_newest_periods_before_the_holdout():
    import pandas as _pd

    from gitops_ml.config import load_settings as _load
    from gitops_ml.data.split import split_frame as _split

    settings = _load(CHURN / "config")
    settings = settings.model_copy(update={"split": settings.split.model_copy(update={"train_periods": 2})})
    months = ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]
    frame = _pd.DataFrame({"snapshot_date": [m for m in months for _ in range(4)], "churned": [0, 1] * 8})
    result = _split(frame, settings)
    assert sorted(result.train["snapshot_date"].unique()) == ["2026-02-01", "2026-03-01"]
    assert list(result.holdout["snapshot_date"].unique()) == ["2026-04-01"]
    assert "train 2026-02..2026-03" in result.description
