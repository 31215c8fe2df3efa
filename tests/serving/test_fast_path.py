"""The compiled fast path returns what the scikit-learn pipeline returns: the same classes and values,
probabilities within 1e-9, on a holdout and on edge rows; anything it does not cover falls back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from gitops_ml.config import Settings
from gitops_ml.record_columns import RecordColumns
from gitops_ml.registry.artifacts import SUPPORTED_ESTIMATORS
from gitops_ml.serving.fast_path import PROBA_TOLERANCE, NotCompilable, compile_pipeline
from gitops_ml.training.pipeline import build_pipeline, prepare_features, training_target
from tests.fixtures.models import tiny_settings

NUMERIC = ["a", "b", "big"]
CATEGORICAL = ["c", "d"]


def _settings(class_path: str, task: str, **features: Any) -> Settings:
    return tiny_settings(
        dataset={"task": task, "positive_label": "yes" if task == "binary" else None},
        features={"numeric": NUMERIC, "categorical": CATEGORICAL, **features},
        estimator={"class_path": class_path},
    )


def _frame(n: int, seed: int, task: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 50, n).astype(float),
            "big": rng.normal(1e6, 1e5, n),
            "c": rng.choice(["x", "y", "z", "rare"], n, p=[0.4, 0.3, 0.28, 0.02]).astype(object),
            "d": rng.choice(["p", "q"], n).astype(object),
        }
    )
    df.loc[::9, "a"] = np.nan
    df.loc[::13, "c"] = None
    signal = df["a"].fillna(0) + (df["c"] == "x") - 0.02 * df["b"]
    if task == "regression":
        df["y"] = signal * 3 + rng.normal(size=n)
    elif task == "binary":
        df["y"] = np.where(signal > 0, "yes", "no")
    else:
        df["y"] = pd.cut(signal, [-np.inf, -0.5, 0.5, np.inf], labels=["lo", "mid", "hi"]).astype(str)
    return df


def _edge_rows(df: pd.DataFrame) -> pd.DataFrame:
    base = df.iloc[0].to_dict()
    rows = [
        dict.fromkeys(NUMERIC + CATEGORICAL),  # everything missing
        {**base, "c": "never-seen", "d": "also-new"},  # unknown categories
        {**base, "c": "rare"},  # an infrequent category when max_categories groups it
        {**base, "a": 1e30, "b": -1e30, "big": 0.0},  # extremes (float32 estimators cap at 3.4e38)
        {**base, "a": -1e-300, "b": 1e-310, "big": -1e30},
        {**base, "c": None, "d": None},
    ]
    return pd.DataFrame(rows, columns=NUMERIC + CATEGORICAL)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """What the serving app hands the model: JSON values, missing as None."""
    out = []
    for row in frame[NUMERIC + CATEGORICAL].to_dict("records"):
        out.append(
            {
                k: (
                    None
                    if v is None or (isinstance(v, float) and np.isnan(v))
                    else (v.item() if isinstance(v, np.generic) else v)
                )
                for k, v in row.items()
            }
        )
    return out


CASES = [
    (path, "regression" if path.endswith(("Regressor", "Ridge", "ElasticNet")) else "binary")
    for path in SUPPORTED_ESTIMATORS
]
CASES += [
    ("sklearn.ensemble.HistGradientBoostingClassifier", "multiclass"),
    ("sklearn.linear_model.LogisticRegression", "multiclass"),
]


@pytest.mark.parametrize(("class_path", "task"), CASES)
@pytest.mark.parametrize(
    "features",
    [
        {"categorical_encoding": "onehot"},
        {"categorical_encoding": "ordinal", "numeric_imputation": "mean", "scale_numeric": False},
        {"categorical_encoding": "onehot", "max_categories": 3, "numeric_imputation": "constant"},
    ],
    ids=["onehot", "ordinal-mean-unscaled", "onehot-infrequent-constant"],
)
def test_fast_path_matches_the_pipeline(class_path: str, task: str, features: dict[str, Any]) -> None:
    settings = _settings(class_path, task, **features)
    train, holdout = _frame(400, 0, task), _frame(150, 1, task)
    with threadpool_limits(limits=1):
        pipeline = build_pipeline(settings)
        params = pipeline[-1].get_params()
        small = {"n_estimators": 10, "max_iter": 30}  # tiny fits: equality, not quality, is tested
        pipeline.set_params(**{f"model__{k}": v for k, v in small.items() if k in params})
        pipeline.fit(prepare_features(train, settings), training_target(train, settings))
        compiled = compile_pipeline(pipeline, NUMERIC, CATEGORICAL)
        for frame in (holdout, _edge_rows(holdout)):
            X = prepare_features(frame, settings)
            records = _records(frame)
            by_column = RecordColumns(tuple(records[0]), tuple([r[k] for r in records] for k in records[0]))
            assert np.array_equal(
                compiled.preprocessor.transform(by_column), compiled.preprocessor.transform(records)
            )
            # Compared call for call: a linear model's BLAS product on one row may differ in the
            # last bit from the same row inside a bigger matrix, in scikit-learn itself too.
            if task == "regression":
                assert np.array_equal(compiled.predict_values(records), pipeline.predict(X))
                for i, record in enumerate(records):
                    assert np.array_equal(compiled.predict_values([record]), pipeline.predict(X.iloc[[i]]))
                continue
            got = compiled.predict_proba(records)
            assert np.max(np.abs(got - pipeline.predict_proba(X))) <= PROBA_TOLERANCE
            assert np.array_equal(pipeline.classes_[got.argmax(axis=1)], pipeline.predict(X))
            for i, record in enumerate(records):
                one = compiled.predict_proba([record])
                assert np.max(np.abs(one - pipeline.predict_proba(X.iloc[[i]]))) <= PROBA_TOLERANCE
                assert pipeline.classes_[one.argmax(axis=1)] == pipeline.predict(X.iloc[[i]])


def test_an_uncovered_step_is_not_compiled() -> None:
    settings = _settings("sklearn.linear_model.LogisticRegression", "binary")
    train = _frame(200, 0, "binary")
    pipeline = build_pipeline(settings)
    pipeline.steps.insert(1, ("custom", FunctionTransformer()))
    pipeline.fit(prepare_features(train, settings), training_target(train, settings))
    with pytest.raises(NotCompilable, match="two-step"):
        compile_pipeline(pipeline, NUMERIC, CATEGORICAL)
    numeric_pipeline = pipeline.named_steps["preprocess"].named_transformers_["numeric"]
    assert isinstance(numeric_pipeline, Pipeline)
    two_step = Pipeline([pipeline.steps[0], pipeline.steps[-1]])
    numeric_pipeline.steps.append(("log", FunctionTransformer(np.log1p)))
    with pytest.raises(NotCompilable, match="numeric block"):
        compile_pipeline(two_step, NUMERIC, CATEGORICAL)


@pytest.mark.parametrize("classes", [2, 3])
def test_the_tree_walk_sends_missing_values_where_scikit_learn_does(classes: int) -> None:
    # the compiled preprocessing imputes, so this branch serves only models fed NaN directly
    from sklearn.ensemble import HistGradientBoostingClassifier

    from gitops_ml.serving.fast_path import _compile_trees

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    X[rng.random(X.shape) < 0.2] = np.nan  # NaN in training too: splits learn a missing side
    y = (np.nan_to_num(X[:, 0]) + rng.normal(scale=0.3, size=300) > 0).astype(int) + (classes == 3) * (
        np.nan_to_num(X[:, 1]) > 1
    )
    with threadpool_limits(limits=1):
        model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
        trees = _compile_trees(model)
        assert trees is not None
        assert len(trees.phases) > 1  # trees of several depths: the walk moves a shrinking tail
        probe = rng.normal(size=(40, 4))
        probe[rng.random(probe.shape) < 0.3] = np.nan
        for rows in (probe, probe[:1], np.nan_to_num(probe)):
            expected = model._raw_predict(rows)
            got = trees.raw_predict(rows)
            assert np.array_equal(got, expected if expected.shape[1] > 1 else expected[:, :1])


def test_the_tree_walk_of_trees_that_are_one_leaf() -> None:
    """A tree with no split (depth 0) is never moved: its root is its leaf."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from gitops_ml.serving.fast_path import _compile_trees

    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(60, 3)), rng.normal(size=60)
    with threadpool_limits(limits=1):
        model = HistGradientBoostingRegressor(max_iter=5, min_samples_leaf=40).fit(X, y)  # no split possible
        trees = _compile_trees(model)
        assert trees is not None and trees.phases == ()
        assert np.array_equal(trees.raw_predict(X[:7]), model._raw_predict(X[:7]))
