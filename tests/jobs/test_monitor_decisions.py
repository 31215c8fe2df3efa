"""The monitor judges a binary model's logged P(positive) with the model's own stored threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from gitops_ml.config import Settings
from gitops_ml.evaluation.decision import DecisionRule
from gitops_ml.jobs.monitor import _decisions, answered_by_production
from gitops_ml.registry.artifacts import ArtifactMetadata
from gitops_ml.registry.pointer import ProductionPointer
from gitops_ml.registry.production import LoadedModel
from tests.fixtures.models import tiny_settings


def _settings(task: str = "binary", positive: object = "yes") -> Settings:
    return tiny_settings(
        dataset={"task": task, "positive_label": positive, "id_column": None},
        features={"numeric": ["x"]},
        split={"strategy": "stratified"},
    )


def _model(labels: list[str], rule: DecisionRule | None) -> LoadedModel:
    x = np.arange(40, dtype=float).reshape(-1, 1)
    y = np.array([labels[int(i >= 20)] for i in range(40)])
    pipeline = Pipeline([("model", LogisticRegression().fit(x, y))])
    meta = ArtifactMetadata(
        git_commit=None,
        config_hash="c",
        data_hash="d",
        task="binary",
        target="y",
        features=("x",),
        version="v1",
        sha256="0" * 64,
        created_at="2026-01-01T00:00:00+00:00",
        decision=rule,
    )
    pointer = ProductionPointer(version="v1", artifact_uri="x", sha256="0" * 64)
    return LoadedModel(pointer=pointer, pipeline=pipeline, metadata=meta, path=Path("model.skops"))


def test_binary_window_is_decided_with_the_stored_threshold_not_the_logged_label():
    rule = DecisionRule(kind="threshold", threshold=0.25, positive_label="yes")
    window = pd.DataFrame({"prediction": ["no", "no", "no", "yes"], "score": [0.1, 0.3, 0.49, 0.9]})
    decided = _decisions(_settings(), _model(["no", "yes"], rule), window, window["score"].to_numpy())
    assert decided.tolist() == ["no", "yes", "yes", "yes"]
    # no stored rule: the most probable class (what serving decided before thresholds existed)
    plain = _decisions(_settings(), _model(["no", "yes"], None), window, window["score"].to_numpy())
    assert plain.tolist() == ["no", "no", "no", "yes"]


def test_other_tasks_keep_the_served_predictions():
    window = pd.DataFrame({"prediction": ["a", "b"], "score": [0.9, 0.8]})
    served = _decisions(
        _settings("multiclass", None), _model(["a", "b"], None), window, window["score"].to_numpy()
    )
    assert served.tolist() == ["a", "b"]


def test_canary_rows_answered_by_the_challenger_are_not_judged_as_production():
    window = pd.DataFrame(
        {
            "served_role": ["production", "challenger", "production"],
            "model_version": ["v1", "v2", "v1"],
            "score": [0.1, 0.99, 0.7],
        },
        index=[10, 11, 12],
    )
    kept = answered_by_production(window)
    assert kept["model_version"].tolist() == ["v1", "v1"] and kept["score"].tolist() == [0.1, 0.7]
    assert kept.index.tolist() == [0, 1]  # row-aligned with arrays built from it
    older = window.drop(columns="served_role")  # a frame from before roles existed is kept whole
    assert answered_by_production(older).equals(older)
