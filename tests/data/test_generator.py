from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from gitops_ml.data.generator import (
    CATEGORICAL_FEATURES,
    COLUMNS,
    CONCEPT_DRIFT,
    CONTRACTS,
    COVARIATE_DECAY,
    COVARIATE_DRIFT,
    PAYMENT_METHODS,
    PLANS,
    REGIONS,
    STABLE,
    Scenario,
    generate_batches,
    generate_month,
    generate_records,
    month_range,
    scenario_by_name,
)
from gitops_ml.data.generator import FEATURES as GENERATOR_FEATURES

FEATURES = list(GENERATOR_FEATURES)
CATEGORICAL = list(CATEGORICAL_FEATURES)


def _x(frame: pd.DataFrame) -> pd.DataFrame:
    x = frame[FEATURES].copy()
    for col in CATEGORICAL:
        x[col] = pd.Categorical(x[col], categories=sorted(set(PLANS + CONTRACTS + PAYMENT_METHODS + REGIONS)))
    return x


def _aucs(train: pd.DataFrame, *tests: pd.DataFrame) -> list[float]:
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    # one thread: OpenMP threads on a busy 2-core machine are much slower, not faster
    with threadpool_limits(1):
        model.fit(_x(train), train["churned"])
        return [float(roc_auc_score(t["churned"], model.predict_proba(_x(t))[:, 1])) for t in tests]


@pytest.fixture(scope="module")
def month() -> pd.DataFrame:
    return generate_month("2026-03", 6000, seed=11)


def test_schema_and_rules(month: pd.DataFrame) -> None:
    assert tuple(month.columns) == COLUMNS
    assert month["customer_id"].str.fullmatch(r"CUST-[0-9]{7}").all()
    assert month["customer_id"].is_unique
    assert (month["snapshot_date"] == "2026-03-01").all()
    signup = pd.to_datetime(month["signup_date"], format="%Y-%m-%d")
    snapshot = pd.to_datetime(month["snapshot_date"], format="%Y-%m-%d")
    assert (signup <= snapshot).all()
    # tenure = whole months between signup and snapshot
    months = (snapshot.dt.year - signup.dt.year) * 12 + snapshot.dt.month - signup.dt.month
    months -= (snapshot.dt.day < signup.dt.day).astype(int)
    assert (months == month["tenure_months"]).all()
    assert month["tenure_months"].between(0, 120).all() and month["tenure_months"].dtype == np.int64
    assert set(month["plan"]) == set(PLANS)
    assert set(month["contract_type"]) == set(CONTRACTS)
    assert set(month["payment_method"].dropna()) == set(PAYMENT_METHODS)
    assert set(month["region"]) == set(REGIONS)
    assert month["monthly_charges"].between(0, 500).all()
    assert month["total_charges"].dropna().between(0, 60_000).all()
    assert month["usage_minutes"].dropna().between(0, 20_000).all()
    assert month["support_calls"].between(0, 50).all()
    assert month["late_payments"].between(0, 24).all()
    assert set(month["churned"]) == {0, 1}
    for col in (
        "customer_id",
        "signup_date",
        "snapshot_date",
        "tenure_months",
        "plan",
        "contract_type",
        "region",
        "monthly_charges",
        "support_calls",
        "late_payments",
        "churned",
    ):
        assert month[col].notna().all(), col


def test_nulls_where_real_systems_have_them(month: pd.DataFrame) -> None:
    assert (month["total_charges"].isna() == (month["tenure_months"] == 0)).all()
    assert 0.01 < month["payment_method"].isna().mean() < 0.03
    assert 0.02 < month["usage_minutes"].isna().mean() < 0.045


def test_churn_rate_and_drivers(month: pd.DataFrame) -> None:
    assert 0.15 <= month["churned"].mean() <= 0.25
    by_contract = month.groupby("contract_type")["churned"].mean()
    assert by_contract["month-to-month"] > by_contract["one-year"] > by_contract["two-year"]
    rate = month.groupby(pd.cut(month["tenure_months"], [-1, 6, 36, 120]), observed=True)["churned"].mean()
    assert rate.iloc[0] > rate.iloc[1] > rate.iloc[2]
    calls = month["support_calls"]
    assert month.loc[calls >= 3, "churned"].mean() > month.loc[calls == 0, "churned"].mean() + 0.1
    late = month["late_payments"]
    assert month.loc[late >= 2, "churned"].mean() > month.loc[late == 0, "churned"].mean() + 0.1
    echeck = month["payment_method"] == "electronic-check"
    assert month.loc[echeck, "churned"].mean() > month.loc[~echeck, "churned"].mean()


def test_seeded_and_deterministic() -> None:
    a = generate_month("2026-01", 300, seed=1)
    pd.testing.assert_frame_equal(a, generate_month("2026-01", 300, seed=1))
    assert not a.drop(columns="customer_id").equals(
        generate_month("2026-01", 300, seed=2).drop(columns="customer_id")
    )
    other_month = generate_month("2026-02", 300, seed=1)
    assert not a["tenure_months"].equals(other_month["tenure_months"])


def test_batches_have_unique_ids_and_consecutive_months() -> None:
    batches = generate_batches("2025-11", 3, 100, seed=3, id_offset=500)
    assert [b["snapshot_date"].iloc[0] for b in batches] == ["2025-11-01", "2025-12-01", "2026-01-01"]
    ids = pd.concat([b["customer_id"] for b in batches])
    assert ids.is_unique and ids.iloc[0] == "CUST-0000501" and ids.iloc[-1] == "CUST-0000800"
    # a batch is the same whether made alone or in a sequence
    pd.testing.assert_frame_equal(batches[1], generate_month("2025-12", 100, seed=3, id_offset=600))
    assert month_range("2025-12", 2) == ["2025-12", "2026-01"]


def test_learnable_but_imperfect_signal() -> None:
    train_a, train_b, test = generate_batches("2026-01", 3, 2000, seed=2026)
    [auc] = _aucs(pd.concat([train_a, train_b]), test)
    assert 0.75 <= auc <= 0.90, auc


def test_covariate_drift_moves_features_not_the_relation() -> None:
    stable = generate_month("2026-06", 4000, seed=5)
    drifted = generate_month("2026-06", 4000, seed=5, scenario=COVARIATE_DRIFT)
    stable_price = stable.groupby("plan")["monthly_charges"].mean()
    drifted_price = drifted.groupby("plan")["monthly_charges"].mean()
    assert ((drifted_price / stable_price - 1).between(0.15, 0.25)).all()  # price_increase 0.2
    assert drifted["usage_minutes"].median() < 0.85 * stable["usage_minutes"].median()
    assert (drifted["plan"] == "basic").mean() > (stable["plan"] == "basic").mean() + 0.1
    # same draws: unaffected columns are identical (the scenarios are paired)
    pd.testing.assert_series_equal(drifted["tenure_months"], stable["tenure_months"])
    pd.testing.assert_series_equal(drifted["region"], stable["region"])


def test_covariate_decay_brings_new_customers_with_the_same_relation() -> None:
    stable = generate_month("2026-06", 4000, seed=5)
    decayed = generate_month("2026-06", 4000, seed=5, scenario=COVARIATE_DECAY)
    assert (decayed["tenure_months"] < 12).mean() > (stable["tenure_months"] < 12).mean() + 0.3
    assert (decayed["contract_type"] == "month-to-month").mean() > (
        stable["contract_type"] == "month-to-month"
    ).mean()
    # paired draws: the columns the shift does not touch are identical
    pd.testing.assert_series_equal(decayed["region"], stable["region"])
    pd.testing.assert_series_equal(decayed["payment_method"], stable["payment_method"])
    # the point of the preset: a model of the stable population is right less often on the new one
    train = pd.concat(generate_batches("2026-01", 2, 3000, seed=9))
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    with threadpool_limits(1):
        model.fit(_x(train), train["churned"])
        accuracy = [float((model.predict(_x(t)) == t["churned"]).mean()) for t in (stable, decayed)]
    assert accuracy[1] < accuracy[0] - 0.04, accuracy


def test_concept_drift_changes_the_relation_only() -> None:
    train = pd.concat(generate_batches("2026-01", 2, 3000, seed=9))
    stable = generate_month("2026-03", 3000, seed=9, id_offset=6000)
    concept = generate_month("2026-03", 3000, seed=9, scenario=CONCEPT_DRIFT, id_offset=6000)
    pd.testing.assert_frame_equal(stable.drop(columns="churned"), concept.drop(columns="churned"))
    by_region = concept.groupby("region")["churned"].mean()
    assert by_region["south"] > 1.6 * by_region.drop("south").max()
    auc_stable, auc_concept = _aucs(train, stable, concept)
    assert auc_concept < auc_stable - 0.1


def test_onset_and_ramp() -> None:
    scenario = COVARIATE_DRIFT.with_onset("2026-04", ramp_months=2)
    stable = generate_batches("2026-01", 6, 300, seed=4)
    drifted = generate_batches("2026-01", 6, 300, seed=4, scenario=scenario)
    for before in range(3):
        pd.testing.assert_frame_equal(stable[before], drifted[before])
    ratios = []
    for i in range(3, 6):  # per customer, where the plan mix shift left the plan alone
        same_plan = stable[i]["plan"] == drifted[i]["plan"]
        ratios.append((drifted[i]["monthly_charges"] / stable[i]["monthly_charges"])[same_plan].median())
    assert ratios == [
        pytest.approx(1.1, abs=0.002),
        pytest.approx(1.2, abs=0.002),
        pytest.approx(1.2, abs=0.002),
    ]
    days = np.array(["2026-03-31", "2026-04-01", "2026-05-01", "2026-07-01"], dtype="datetime64[D]")
    assert scenario.ramp(days).tolist() == [0.0, 0.5, pytest.approx(1.0, abs=0.01), 1.0]
    assert STABLE.ramp(days).tolist() == [1.0] * 4  # no onset: from the start (intensity is 0 anyway)


def test_scenario_presets_and_validation() -> None:
    assert scenario_by_name("stable") is STABLE
    assert scenario_by_name("covariate-drift") is COVARIATE_DRIFT
    assert scenario_by_name("CONCEPT_DRIFT") is CONCEPT_DRIFT
    with pytest.raises(ValueError, match="unknown scenario 'weird'.*stable"):
        scenario_by_name("weird")
    with pytest.raises(ValueError, match="onset_month"):
        Scenario(onset_month="2026-13")
    with pytest.raises(ValueError, match="covariate_shift"):
        Scenario(covariate_shift=-1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        STABLE.covariate_shift = 1.0  # type: ignore[misc]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        generate_month("2026-1", 10, seed=0)
    with pytest.raises(ValueError, match="do not fit"):
        generate_month("2026-01", 10, seed=0, id_offset=9_999_995)
    with pytest.raises(ValueError, match="after start_time"):
        generate_records(10, seed=0, start_time="2026-02-01", end_time="2026-01-01")


def test_records_spread_over_time_with_drift_from_onset() -> None:
    kwargs = {"seed": 8, "start_time": "2026-07-20", "end_time": "2026-08-17", "id_offset": 1_000_000}
    stable = generate_records(2000, scenario=STABLE, include_event_time=True, **kwargs)
    drifted = generate_records(2000, scenario=COVARIATE_DRIFT.with_onset("2026-08-03"), **kwargs)
    assert list(stable.columns) == [*COLUMNS, "event_time"]
    assert list(drifted.columns) == list(COLUMNS)
    assert stable["event_time"].is_monotonic_increasing
    assert stable["event_time"].min() >= "2026-07-20T00:00:00" and stable["event_time"].max() < "2026-08-17"
    assert stable["event_time"].str[:10].nunique() == 28  # every day of the range
    # snapshots stay on the first of the month (a contract rule): the month of each row's time
    assert (stable["snapshot_date"] == stable["event_time"].str[:7] + "-01").all()
    assert set(stable["snapshot_date"]) == {"2026-07-01", "2026-08-01"}
    assert stable["customer_id"].iloc[0] == "CUST-1000001" and stable["customer_id"].is_unique
    # drift starts on the onset day, mid-month
    before = stable["event_time"] < "2026-08-03"
    pd.testing.assert_frame_equal(stable.loc[before, list(COLUMNS)], drifted.loc[before])
    after = ~before & (stable["plan"] == drifted["plan"])
    ratio = drifted.loc[after, "monthly_charges"] / stable.loc[after, "monthly_charges"]
    assert ratio.median() == pytest.approx(1.2, abs=0.002)
    again = generate_records(2000, scenario=COVARIATE_DRIFT.with_onset("2026-08-03"), **kwargs)
    pd.testing.assert_frame_equal(drifted, again)
    aware = generate_records(
        10,
        seed=8,
        start_time=pd.Timestamp("2026-07-20 02:00", tz="Europe/Paris"),
        end_time="2026-07-21",
        include_event_time=True,
    )
    assert aware["event_time"].iloc[0] >= "2026-07-20T00:00:00"  # 02:00 Paris = 00:00 UTC
