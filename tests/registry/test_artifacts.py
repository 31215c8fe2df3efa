from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from gitops_ml.config import Settings
from gitops_ml.errors import ArtifactError
from gitops_ml.registry import artifacts
from gitops_ml.registry.artifacts import (
    SUPPORTED_ESTIMATORS,
    TRUSTED_TYPES,
    ModelInfo,
    load_model,
    model_version,
    read_metadata,
    save_model,
)
from gitops_ml.training.pipeline import build_pipeline, prepare_features
from tests.fixtures.models import tiny_settings


def _settings(
    class_path: str = "sklearn.ensemble.HistGradientBoostingClassifier",
    task: str = "binary",
    encoding: str = "onehot",
) -> Settings:
    return tiny_settings(
        dataset={"task": task},
        features={"categorical": ["c"], "categorical_encoding": encoding},
        estimator={"class_path": class_path},
    )


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    df.loc[::11, "a"] = np.nan
    df.loc[::7, "c"] = None
    df["y"] = (df["b"] + (df["c"] == "x") > 0.3).astype(int)
    return df


def _fitted(
    settings: Settings | None = None, df: pd.DataFrame | None = None
) -> tuple[Pipeline, pd.DataFrame]:
    settings = settings or _settings()
    df = _frame() if df is None else df
    X = prepare_features(df, settings)
    target = df["y"] if settings.dataset.task != "regression" else df["b"] * 2 + df["a"].fillna(0)
    with threadpool_limits(limits=1):  # tiny fits; OpenMP threads only oversubscribe a busy CI box
        return build_pipeline(settings).fit(X, target), X


META = ModelInfo(
    git_commit="abc123",
    config_hash="c" * 64,
    data_hash="d" * 64,
    features=("a", "b", "c"),
    target="y",
    task="binary",
    metrics={"roc_auc": np.float64(0.91), "brier": float("nan")},
    training_seconds=1.5,
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def double(x):  # a custom function: the kind of thing a skops file must not be allowed to name
    return x * 2


class Custom(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


def test_round_trip_predicts_identically(tmp_path: Path) -> None:
    pipeline, X = _fitted()
    artifact = save_model(pipeline, tmp_path / "v1", META)
    assert artifact.model_path == tmp_path / "v1" / "model.skops"
    loaded = load_model(artifact.model_path, expected_sha256=artifact.sha256)
    assert np.array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
    # the folder form, with the sha256 taken from metadata.json
    assert np.array_equal(load_model(artifact.path).predict_proba(X), pipeline.predict_proba(X))


def test_metadata_content(tmp_path: Path) -> None:
    pipeline, _ = _fitted()
    artifact = save_model(pipeline, tmp_path / "art", META)
    meta = json.loads(artifact.metadata_path.read_text())
    assert meta == artifact.metadata.model_dump(mode="json")
    assert read_metadata(artifact.path) == artifact.metadata
    assert meta["sha256"] == hashlib.sha256(artifact.model_path.read_bytes()).hexdigest() == artifact.sha256
    assert meta["version"] == model_version("abc123", "c" * 64, "d" * 64) == artifact.version
    assert meta["class_labels"] == [0, 1]
    assert meta["features"] == ["a", "b", "c"] and meta["target"] == "y" and meta["task"] == "binary"
    assert (
        meta["git_commit"] == "abc123" and meta["config_hash"] == "c" * 64 and meta["data_hash"] == "d" * 64
    )
    assert meta["metrics"] == {"roc_auc": 0.91, "brier": None}  # numpy scalar unwrapped, NaN -> null
    assert meta["training_seconds"] == 1.5
    assert set(meta["library_versions"]) >= {"python", "scikit-learn", "numpy", "pandas", "skops"}
    assert meta["library_versions"]["scikit-learn"].startswith("1.")
    assert datetime.fromisoformat(meta["created_at"]).tzinfo is not None
    assert "NaN" not in artifact.metadata_path.read_text()  # strict JSON


def test_caller_version_is_kept(tmp_path: Path) -> None:
    pipeline, _ = _fitted()
    assert (
        save_model(pipeline, tmp_path / "a", META.model_copy(update={"version": "v-custom"})).version
        == "v-custom"
    )


def test_one_changed_byte_is_refused(tmp_path: Path) -> None:
    pipeline, _ = _fitted()
    artifact = save_model(pipeline, tmp_path / "art", META)
    data = bytearray(artifact.model_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.model_path.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(ArtifactError, match=rf"expected {artifact.sha256}, actual {actual}"):
        load_model(artifact.model_path, expected_sha256=artifact.sha256)
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_model(artifact.path)  # expected from metadata.json


def test_load_without_any_expected_sha_is_refused(tmp_path: Path) -> None:
    pipeline, _ = _fitted()
    path = tmp_path / "model.skops"
    sio.dump(pipeline, path)
    with pytest.raises(ArtifactError, match="no expected sha256"):
        load_model(path)


@pytest.mark.parametrize(
    ("extra_step", "type_name"),
    [
        (FunctionTransformer(double), f"{__name__}.double"),
        (Custom(), f"{__name__}.Custom"),
    ],
)
def test_type_outside_allow_list_is_refused(tmp_path: Path, extra_step, type_name: str) -> None:
    fitted, X = _fitted()
    pipeline = Pipeline([("odd", extra_step), *fitted.steps]).fit(X, _frame()["y"])
    # save_model refuses it outright...
    with pytest.raises(ArtifactError, match=re.escape(type_name)):
        save_model(pipeline, tmp_path / "art", META)
    assert _leftovers(tmp_path) == []
    # ...and a file written by anything else is refused at load even with the right sha256
    path = tmp_path / "model.skops"
    sio.dump(pipeline, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ArtifactError, match=rf"outside .*TRUSTED_TYPES.*{re.escape(type_name)}"):
        load_model(path, expected_sha256=digest)


def test_non_pipeline_and_non_skops_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    sio.dump(LogisticRegression(), path)
    with pytest.raises(ArtifactError, match="expected a scikit-learn Pipeline"):
        load_model(path, expected_sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ArtifactError, match="not a readable skops file"):
        load_model(path, expected_sha256=hashlib.sha256(b"not a zip at all").hexdigest())
    with pytest.raises(ArtifactError, match="cannot read"):
        load_model(tmp_path / "missing.skops", expected_sha256="0" * 64)


def test_nothing_left_behind_on_bad_metadata(tmp_path: Path) -> None:
    pipeline, _ = _fitted()
    with pytest.raises(ArtifactError, match="not JSON-serialisable"):
        save_model(
            pipeline, tmp_path / "store" / "art", META.model_copy(update={"best_params": {"x": object()}})
        )
    assert _leftovers(tmp_path / "store") == []


def test_malformed_metadata_file_names_the_file_and_field(tmp_path: Path) -> None:
    pipeline, _ = _fitted()
    artifact = save_model(pipeline, tmp_path / "art", META)
    data = json.loads(artifact.metadata_path.read_text())
    del data["data_hash"]
    data["metrics"] = {"roc_auc": "high"}
    artifact.metadata_path.write_text(json.dumps(data))
    with pytest.raises(
        ArtifactError,
        match=r"metadata.json: invalid artifact metadata: data_hash: Field required"
        r".*metrics\.roc_auc",
    ):
        read_metadata(artifact.path)


def test_failed_write_keeps_the_previous_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, _ = _fitted()
    first = save_model(pipeline, tmp_path / "art", META)
    before = first.model_path.read_bytes()

    def broken(path: Path, data: bytes) -> None:
        if path.name == "metadata.json":
            raise OSError("disk full")
        path.write_bytes(data)

    monkeypatch.setattr(artifacts, "_write_synced", broken)
    with pytest.raises(OSError, match="disk full"):
        save_model(pipeline, tmp_path / "art", META)
    assert _leftovers(tmp_path) == ["art"]
    assert first.model_path.read_bytes() == before
    assert load_model(first.path) is not None


def test_overwrite(tmp_path: Path) -> None:
    pipeline, _ = _fitted()
    save_model(pipeline, tmp_path / "art", META)
    second = save_model(pipeline, tmp_path / "art", META.model_copy(update={"metrics": {"roc_auc": 0.5}}))
    assert second.metadata.metrics == {"roc_auc": 0.5}
    assert _leftovers(tmp_path) == ["art"]
    assert sorted(p.name for p in second.path.iterdir()) == ["metadata.json", "model.skops"]
    with pytest.raises(ArtifactError, match="already exists"):
        save_model(pipeline, tmp_path / "art", META, overwrite=False)


def test_model_version_is_deterministic() -> None:
    first = model_version("abc", "c" * 64, "d" * 64)
    assert re.fullmatch(r"v-[0-9a-f]{12}", first)
    assert model_version("abc", "c" * 64, "d" * 64) == first
    assert (
        len(
            {
                first,
                model_version("abd", "c" * 64, "d" * 64),
                model_version("abc", "e" * 64, "d" * 64),
                model_version("abc", "c" * 64, "e" * 64),
                model_version(None, "c" * 64, "d" * 64),
            }
        )
        == 5
    )


def test_retraining_same_inputs_gives_same_version(tmp_path: Path) -> None:
    # the files differ byte-wise (skops zip timestamps / object ids), the version does not
    one = save_model(_fitted()[0], tmp_path / "one", META)
    two = save_model(_fitted()[0], tmp_path / "two", META)
    assert one.version == two.version


@pytest.mark.parametrize("class_path", SUPPORTED_ESTIMATORS)
@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_supported_estimators_load_with_the_allow_list(
    tmp_path: Path, class_path: str, encoding: str
) -> None:
    task = "regression" if class_path.endswith(("Regressor", "Ridge", "ElasticNet")) else "binary"
    pipeline, X = _fitted(_settings(class_path, task, encoding))
    artifact = save_model(pipeline, tmp_path / "art", META.model_copy(update={"task": task}))
    loaded = load_model(artifact.model_path, expected_sha256=artifact.sha256)
    assert np.array_equal(loaded.predict(X), pipeline.predict(X))


def test_every_trusted_type_is_needed() -> None:
    # keeps the allow-list minimal: an entry no supported pipeline needs should be removed
    needed: set[str] = set()
    for class_path in SUPPORTED_ESTIMATORS:
        task = "regression" if class_path.endswith(("Regressor", "Ridge", "ElasticNet")) else "binary"
        needed |= set(sio.get_untrusted_types(data=sio.dumps(_fitted(_settings(class_path, task))[0])))
    assert needed == TRUSTED_TYPES
