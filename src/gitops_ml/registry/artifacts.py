"""Model artifacts: `model.skops` + `metadata.json`, written atomically, loaded only when safe.

Loading a model file runs code paths chosen by whoever wrote the file, so a load checks, in
this order: the file's sha256 against the expected one (the pointer or metadata), then that
every type the file needs is either trusted by skops by default or in TRUSTED_TYPES below.
Nothing else is trusted, in particular not the output of `get_untrusted_types` itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticSerializationError
from sklearn.pipeline import Pipeline

from gitops_ml.config import Task
from gitops_ml.errors import ArtifactError
from gitops_ml.evaluation.decision import DecisionRule
from gitops_ml.jsonable import to_jsonable
from gitops_ml.parsing import error_lines
from gitops_ml.runinfo import MODEL_PACKAGES, library_versions

# The artifact folder's layout, defined here only: every store, loader and writer uses these.
MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
# The monitor's training reference profile (feature + score distributions), published when present.
REFERENCE_FILE = "reference.json"
# The version's model card (jobs/model_card.py), published with it at promotion.
MODEL_CARD_FILE = "model-card.md"
ARTIFACT_FILES = (MODEL_FILE, METADATA_FILE)
OPTIONAL_FILES = (REFERENCE_FILE, MODEL_CARD_FILE)

# Types our pipelines need beyond skops' defaults, found with `skops.io.get_untrusted_types`
# on fitted ColumnTransformer(+imputers, scaler, one-hot/ordinal encoder) pipelines with each
# of SUPPORTED_ESTIMATORS (scikit-learn 1.7.2, skops 0.16). Each entry is a plain data
# container that skops rebuilds from arrays; none can name a function to call.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        # dtype objects kept by SimpleImputer and the encoders (every pipeline)
        "numpy.dtype",
        # the fitted trees of HistGradientBoostingClassifier/Regressor
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        # the fitted trees of RandomForest*, ExtraTrees*, GradientBoosting*, DecisionTree*
        "sklearn.tree._tree.Tree",
    }
)

# Estimators whose pipelines load with TRUSTED_TYPES (tested). Other scikit-learn classes are
# accepted by the training config; if one needs a further type (e.g. KNeighbors* needs
# KDTree and a distance metric), save_model refuses it with the missing types named.
SUPPORTED_ESTIMATORS: tuple[str, ...] = (
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.Ridge",
    "sklearn.linear_model.ElasticNet",
)


class ModelInfo(BaseModel):
    """What the PR check records about a trained candidate; `save_model` adds the rest.

    Typed so every reader (promotion, serving, the monitor) gets the same fields, checked once.
    New optional fields can be added without breaking older artifacts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    git_commit: str | None
    config_hash: str
    data_hash: str
    task: Task
    target: str
    features: tuple[str, ...]
    numeric_features: tuple[str, ...] | None = None
    categorical_features: tuple[str, ...] | None = None
    version: str | None = Field(
        None, description="default: model_version(git_commit, config_hash, data_hash)"
    )
    dataset: str | None = None
    estimator: str | None = None
    best_params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(default_factory=dict, description="holdout metrics; NaN as null")
    holdout_rows: int | None = None
    split: str | None = None
    training_seconds: float | None = None
    sample_record: dict[str, Any] | None = Field(
        None, description="one raw holdout row: the serving app's smoke prediction before a swap"
    )
    decision: DecisionRule | None = Field(
        None, description="how probabilities become decisions; None = the most probable class"
    )

    @field_validator("metrics", mode="before")
    @classmethod
    def _nan_is_null(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: to_jsonable(v) for k, v in value.items()}
        return value


class ArtifactMetadata(ModelInfo):
    """`metadata.json` as written by `save_model` and read back by `read_metadata`."""

    version: str
    sha256: str
    class_labels: list[Any] | None = None
    model_file: str = MODEL_FILE
    library_versions: dict[str, str] = Field(default_factory=dict)
    created_at: str

    @property
    def feature_lists(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(numeric, categorical) the model was trained with; None if not recorded."""
        if self.numeric_features is None and self.categorical_features is None:
            return None
        return tuple(self.numeric_features or ()), tuple(self.categorical_features or ())


@dataclass(frozen=True)
class ModelArtifact:
    path: Path  # the artifact folder
    model_path: Path
    metadata_path: Path
    sha256: str
    version: str
    metadata: ArtifactMetadata


def model_version(commit: str | None, config_hash: str, data_hash: str) -> str:
    """Deterministic id of (code, config, data): retraining the same inputs gives the same version.

    Not derived from the file's sha256, because two skops dumps of one fitted model differ
    byte-wise (zip timestamps, object ids).
    """
    payload = "\n".join([commit or "no-commit", config_hash, data_hash])
    return "v-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model(
    pipeline: Pipeline, out_dir: Path, info: ModelInfo, *, overwrite: bool = True
) -> ModelArtifact:
    """Write `out_dir/MODEL_FILE` and `out_dir/METADATA_FILE`; return what was written.

    The folder is assembled in a temp folder beside it and renamed into place, so readers
    see the old artifact or the complete new one, and a failure leaves nothing behind. An
    existing `out_dir` is replaced (a re-run of a PR check) unless `overwrite` is False.
    A pipeline needing types outside TRUSTED_TYPES is refused here, not at deploy time.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ArtifactError(f"{out_dir}: artifact folder already exists")
    try:
        data = sio.dumps(pipeline)
    except Exception as exc:  # skops raises assorted errors for objects it cannot persist
        raise ArtifactError(f"{out_dir}: skops cannot serialise the pipeline: {exc}") from exc
    outside = untrusted_outside_allow_list(data)
    if outside:
        raise ArtifactError(
            f"{out_dir}: the model needs types outside registry.artifacts.TRUSTED_TYPES: {outside}; "
            "it could not be loaded for serving"
        )
    digest = sha256_bytes(data)
    classes = getattr(pipeline, "classes_", None)
    fields = {**info.model_dump(), "best_params": to_jsonable(info.best_params)}
    fields["version"] = info.version or model_version(info.git_commit, info.config_hash, info.data_hash)
    metadata = ArtifactMetadata(
        **fields,
        sha256=digest,
        class_labels=None if classes is None else to_jsonable(np.asarray(classes).tolist()),
        library_versions=library_versions(MODEL_PACKAGES),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    try:
        text = json.dumps(metadata.model_dump(mode="json"), indent=2, sort_keys=True, allow_nan=False) + "\n"
    except (TypeError, ValueError, PydanticSerializationError) as exc:
        raise ArtifactError(f"{out_dir}: metadata is not JSON-serialisable: {exc}") from exc

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        _write_synced(tmp / MODEL_FILE, data)
        _write_synced(tmp / METADATA_FILE, text.encode("utf-8"))
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ModelArtifact(
        path=out_dir,
        model_path=out_dir / MODEL_FILE,
        metadata_path=out_dir / METADATA_FILE,
        sha256=digest,
        version=metadata.version,
        metadata=metadata,
    )


def load_model(path: Path, *, expected_sha256: str | None = None) -> Pipeline:
    """Load a Pipeline from `path` (a model.skops file or its folder) after the safety checks.

    `expected_sha256=None` takes the sha256 recorded in the metadata.json beside the file;
    with neither, the load is refused (every load is checked). The bytes are read once and
    the checked bytes are the ones loaded.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read model file: {exc}") from exc
    expected = expected_sha256 or _recorded_sha256(path)
    actual = sha256_bytes(data)
    if actual != expected.lower():
        raise ArtifactError(f"{path}: sha256 mismatch: expected {expected}, actual {actual}")
    try:
        needed = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise ArtifactError(f"{path}: not a readable skops file: {exc}") from exc
    outside = sorted(set(needed) - TRUSTED_TYPES)
    if outside:
        raise ArtifactError(
            f"{path}: refused: the file needs types outside registry.artifacts.TRUSTED_TYPES: {outside}"
        )
    try:
        model = sio.loads(data, trusted=sorted(set(needed) & TRUSTED_TYPES))
    except Exception as exc:
        raise ArtifactError(f"{path}: skops could not load the model: {exc}") from exc
    if not isinstance(model, Pipeline):
        raise ArtifactError(f"{path}: expected a scikit-learn Pipeline, got {type(model).__name__}")
    return model


def read_metadata(artifact_dir: Path) -> ArtifactMetadata:
    """The typed `METADATA_FILE` of an artifact folder; ArtifactError names the file and field."""
    path = Path(artifact_dir) / METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read artifact metadata: {exc}") from exc
    try:
        return ArtifactMetadata.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(error_lines(exc, data, limit=5))
        raise ArtifactError(f"{path}: invalid artifact metadata: {problems}") from exc


def untrusted_outside_allow_list(data: bytes) -> list[str]:
    """Types a skops payload needs that neither skops nor TRUSTED_TYPES trusts."""
    return sorted(set(sio.get_untrusted_types(data=data)) - TRUSTED_TYPES)


def _recorded_sha256(model_path: Path) -> str:
    meta_path = model_path.parent / METADATA_FILE
    if not meta_path.exists():
        raise ArtifactError(f"{model_path}: no expected sha256 given and no {METADATA_FILE} beside it")
    return read_metadata(model_path.parent).sha256


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _replace_dir(new: Path, target: Path) -> None:
    # POSIX cannot rename over a non-empty folder: move the old one aside, rename the new one
    # in, then drop the old one (put it back if the second rename fails).
    if not target.exists():
        os.rename(new, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rename(target, aside / target.name)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside / target.name, target)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)
