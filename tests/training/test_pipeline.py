from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from gitops_ml.config import load_settings
from gitops_ml.data.generator import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from gitops_ml.errors import ConfigError, DataError
from gitops_ml.training.pipeline import (
    build_pipeline,
    prepare_features,
    train_model,
)
from tests.fixtures.projects import CHURN

NUMERIC = list(NUMERIC_FEATURES)
CATEGORICAL = list(CATEGORICAL_FEATURES)


# --- prepare_features -------------------------------------------------------------------------


def test_prepare_features_canonical_dtypes_and_order(frame: pd.DataFrame, make_settings) -> None:
    settings = make_settings()
    X = prepare_features(frame, settings)
    assert list(X.columns) == NUMERIC + CATEGORICAL  # config order; id, time and target dropped
    assert all(X[c].dtype == np.float64 for c in NUMERIC)
    assert all(X[c].dtype == object for c in CATEGORICAL)
    # a missing category stays NaN (the imputer's job), not the string "None"/"nan"
    missing = frame["payment_method"].isna()
    assert missing.any()
    assert X.loc[missing, "payment_method"].isna().all()
    assert not X["payment_method"].isin(["None", "nan", "<NA>"]).any()


def test_prepare_features_same_output_for_pandas_extension_dtypes(frame: pd.DataFrame, make_settings) -> None:
    settings = make_settings()
    typed = frame.copy()
    for column in CATEGORICAL:
        typed[column] = typed[column].astype("category" if column == "plan" else "string")
    typed["tenure_months"] = typed["tenure_months"].astype("Int64")
    typed.loc[0, "tenure_months"] = pd.NA
    expected = prepare_features(
        frame.assign(tenure_months=frame["tenure_months"].where(frame.index != 0)), settings
    )
    pd.testing.assert_frame_equal(prepare_features(typed, settings), expected)


def test_prepare_features_missing_column_is_named(frame: pd.DataFrame, make_settings) -> None:
    with pytest.raises(DataError, match=r"region"):
        prepare_features(frame.drop(columns=["region"]), make_settings())


def test_prepare_features_non_numeric_values_are_shown(frame: pd.DataFrame, make_settings) -> None:
    bad = frame.astype({"support_calls": object})
    bad.loc[3, "support_calls"] = "lots"
    with pytest.raises(DataError, match=r"support_calls.*lots"):
        prepare_features(bad, make_settings())


# --- build_pipeline ---------------------------------------------------------------------------


def _encoder(pipeline: Pipeline) -> object:
    ct = pipeline.named_steps["preprocess"]
    assert isinstance(ct, ColumnTransformer)
    return {name: trans for name, trans, _ in ct.transformers}["categorical"].named_steps["encoder"]


def test_build_pipeline_follows_feature_config(make_settings) -> None:
    onehot = build_pipeline(make_settings())
    encoder = _encoder(onehot)
    assert isinstance(encoder, OneHotEncoder) and encoder.handle_unknown == "ignore"
    numeric = {n: t for n, t, _ in onehot.named_steps["preprocess"].transformers}["numeric"]
    assert [name for name, _ in numeric.steps] == ["imputer", "scaler"]

    capped = build_pipeline(make_settings(features={"max_categories": 3}))
    assert _encoder(capped).handle_unknown == "infrequent_if_exist"
    assert _encoder(capped).max_categories == 3

    ordinal = build_pipeline(
        make_settings(features={"categorical_encoding": "ordinal", "scale_numeric": False})
    )
    assert isinstance(_encoder(ordinal), OrdinalEncoder)
    assert _encoder(ordinal).unknown_value == -1
    numeric = {n: t for n, t, _ in ordinal.named_steps["preprocess"].transformers}["numeric"]
    assert [name for name, _ in numeric.steps] == ["imputer"]


@pytest.mark.parametrize(
    ("class_path", "needle"),
    [
        ("sklearn.nope.Thing", "cannot import"),
        ("sklearn.ensemble.NoSuchForest", "not a scikit-learn estimator"),
        ("sklearn.pipeline.make_pipeline", "not a scikit-learn estimator"),
        ("sklearn.ensemble.HistGradientBoostingRegressor", "not a classifier"),
    ],
)
def test_bad_class_path_is_a_config_error(class_path: str, needle: str, make_settings) -> None:
    settings = make_settings(estimator={"class_path": class_path, "params": {}})
    with pytest.raises(ConfigError, match=rf"estimator\.class_path.*{needle}"):
        build_pipeline(settings)


def test_estimator_needing_constructor_arguments_is_a_config_error(make_settings) -> None:
    # OneVsRestClassifier(estimator) has a required argument: a config error, not a TypeError
    settings = make_settings(estimator={"class_path": "sklearn.multiclass.OneVsRestClassifier", "params": {}})
    with pytest.raises(ConfigError, match=r"estimator\.class_path.*OneVsRestClassifier.*cannot be built"):
        build_pipeline(settings)


def test_regression_needs_a_regressor(make_settings) -> None:
    settings = make_settings(dataset={"task": "regression"}, estimator={"params": {}})
    with pytest.raises(ConfigError, match=r"estimator\.class_path.*not a regressor"):
        build_pipeline(settings)


def test_bad_param_name_is_named(make_settings) -> None:
    settings = make_settings(estimator={"params": {"max_depthh": 3}})
    with pytest.raises(ConfigError, match=r"estimator\.params\.max_depthh"):
        build_pipeline(settings)


def test_bad_param_value_is_named_before_fit(make_settings) -> None:
    settings = make_settings(estimator={"params": {"learning_rate": -1.0}})
    with pytest.raises(ConfigError, match=r"estimator\.params\.learning_rate"):
        build_pipeline(settings)


def test_unseeded_estimator_gets_the_project_seed(make_settings) -> None:
    settings = make_settings(
        split={"seed": 7}, estimator={"class_path": "sklearn.ensemble.RandomForestClassifier", "params": {}}
    )
    assert build_pipeline(settings).named_steps["model"].random_state == 7


# --- train_model ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("class_path", "params"),
    [
        ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 30}),
        ("sklearn.linear_model.LogisticRegression", {"max_iter": 1000}),
        ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 20, "max_depth": 5}),
    ],
)
def test_binary_estimators_from_config(
    frame: pd.DataFrame, class_path: str, params: dict, make_settings
) -> None:
    train, test = frame.iloc[:450], frame.iloc[450:]
    settings = make_settings(estimator={"class_path": class_path, "params": params})
    model = train_model(train, settings)
    proba = model.pipeline.predict_proba(prepare_features(test, settings))
    assert proba.shape == (len(test), 2)
    assert list(model.pipeline.classes_) == [0, 1]
    assert model.feature_columns == NUMERIC + CATEGORICAL
    assert model.best_params == {} and model.search_results is None
    assert model.fit_seconds > 0
    # the label is learnable from the synthetic frame; a broken pipeline would sit near 0.5
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(test["churned"], proba[:, 1]) > 0.7


@pytest.mark.parametrize(
    "class_path",
    ["sklearn.ensemble.HistGradientBoostingClassifier", "sklearn.linear_model.LogisticRegression"],
)
def test_multiclass(frame: pd.DataFrame, class_path: str, make_settings) -> None:
    df = frame.assign(
        risk=pd.cut(
            frame["support_calls"] + frame["late_payments"], [-1, 1, 4, 100], labels=["low", "mid", "high"]
        ).astype(str)
    )
    settings = make_settings(
        dataset={"task": "multiclass", "target": "risk"},
        features={"numeric": ["tenure_months", "monthly_charges", "support_calls", "late_payments"]},
        estimator={"class_path": class_path, "params": {"max_iter": 200}},
    )
    model = train_model(df, settings)
    assert sorted(model.pipeline.classes_) == ["high", "low", "mid"]
    assert model.pipeline.predict_proba(prepare_features(df.head(5), settings)).shape == (5, 3)


@pytest.mark.parametrize(
    ("class_path", "params"),
    [
        ("sklearn.ensemble.HistGradientBoostingRegressor", {"max_iter": 50}),
        ("sklearn.linear_model.Ridge", {}),
    ],
)
def test_regression(frame: pd.DataFrame, class_path: str, params: dict, make_settings) -> None:
    settings = make_settings(
        dataset={"task": "regression", "target": "total_charges"},
        features={"numeric": ["tenure_months", "monthly_charges", "support_calls"]},
        split={"strategy": "random"},
        estimator={"class_path": class_path, "params": params},
    )
    df = frame.dropna(subset=["total_charges"])
    model = train_model(df, settings)
    predictions = model.pipeline.predict(prepare_features(df, settings))
    assert predictions.shape == (len(df),)
    assert np.corrcoef(predictions, df["total_charges"])[0, 1] > 0.8


@pytest.mark.parametrize(
    "class_path",
    ["sklearn.ensemble.HistGradientBoostingClassifier", "sklearn.ensemble.RandomForestClassifier"],
)
def test_same_inputs_give_identical_predictions(frame: pd.DataFrame, class_path: str, make_settings) -> None:
    # RandomForest has no random_state in config here: the project seed must make it repeatable
    settings = make_settings(estimator={"class_path": class_path, "params": {}})
    X = prepare_features(frame, settings)
    first = train_model(frame, settings).pipeline.predict_proba(X)
    second = train_model(frame, settings).pipeline.predict_proba(X)
    assert np.array_equal(first, second)


def test_unseen_category_and_missing_values_at_predict_time(frame: pd.DataFrame, make_settings) -> None:
    for encoding in ("onehot", "ordinal"):
        settings = make_settings(features={"categorical_encoding": encoding})
        model = train_model(frame, settings)
        odd = frame.head(3).copy()
        odd["region"] = ["mars", None, "north"]
        odd["monthly_charges"] = [np.nan, 10.0, 20.0]
        proba = model.pipeline.predict_proba(prepare_features(odd, settings))
        assert np.isfinite(proba).all()


def test_progress_messages(frame: pd.DataFrame, make_settings) -> None:
    messages: list[str] = []
    train_model(frame, make_settings(), progress=messages.append)
    assert messages and "HistGradientBoostingClassifier" in messages[0]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda df: df.assign(churned=df["churned"].astype(float).where(df.index != 5)), "missing values"),
        (lambda df: df.assign(churned=0), "single class"),
        (lambda df: df.assign(churned=df.index % 3), "3 classes"),
    ],
)
def test_bad_target_is_a_data_error(frame: pd.DataFrame, change, needle: str, make_settings) -> None:
    with pytest.raises(DataError, match=needle):
        train_model(change(frame), make_settings())


def test_example_config_trains(frame: pd.DataFrame, churn_frame) -> None:
    settings = load_settings(CHURN / "config")
    model = train_model(churn_frame(n=300, seed=1), settings)
    assert model.pipeline.predict_proba(prepare_features(frame.head(4), settings)).shape == (4, 2)


def test_threads_cap_applies_during_the_fit(frame: pd.DataFrame, make_settings) -> None:
    from threadpoolctl import threadpool_info

    seen: list[set[int]] = []

    def record(_message: str) -> None:
        seen.append({p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"})

    # the autouse fixture caps at 1, so ask for 2 to see the argument take effect
    train_model(frame, make_settings(), progress=record, threads=2)
    assert seen == [{2}]
