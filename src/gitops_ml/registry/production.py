"""The one loader of the model a production pointer names, and scoring it on new rows.

Everything that needs "the production model" (the PR check's comparison, the monitor, the serving
app and its hot reload) loads it here: fetch from the model store, sha256 + skops allow-list
check (`artifacts.load_model`), the typed metadata beside it. The serving app wraps the result
with what only serving needs (request validation, the compiled fast path).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from gitops_ml.config import FeaturesConfig, RegistryConfig, Settings
from gitops_ml.errors import ArtifactError
from gitops_ml.evaluation.decision import DecisionRule
from gitops_ml.evaluation.metrics import positive_class
from gitops_ml.registry.artifacts import (
    METADATA_FILE,
    MODEL_FILE,
    ArtifactMetadata,
    load_model,
    read_metadata,
)
from gitops_ml.registry.model_store import fetch_artifact
from gitops_ml.registry.pointer import ProductionPointer, read_pointer


@dataclass(frozen=True)
class LoadedModel:
    """A verified model artifact: the pointer that named it, the pipeline, its metadata."""

    pointer: ProductionPointer
    pipeline: Pipeline
    metadata: ArtifactMetadata | None  # None only for artifacts published without metadata
    path: Path  # the local model file

    @property
    def version(self) -> str:
        return self.pointer.version

    def model_settings(self, settings: Settings) -> Settings:
        """`settings` with the feature lists this model was trained on (they may differ from HEAD's)."""
        lists = self.metadata.feature_lists if self.metadata is not None else None
        if lists is None:
            return settings
        numeric, categorical = lists
        features = FeaturesConfig(
            **{**settings.features.model_dump(), "numeric": list(numeric), "categorical": list(categorical)}
        )
        return settings.model_copy(update={"features": features})

    @property
    def decision(self) -> DecisionRule | None:
        """The model's own decision rule (from its metadata); None = the most probable class."""
        return self.metadata.decision if self.metadata is not None else None

    def positive_index(self, positive_label: object) -> int:
        """Column of predict_proba scored as positive (binary), matched as the evaluation matches it."""
        return positive_class(np.asarray(self.pipeline.classes_), positive_label)


def load_pointed_model(pointer: ProductionPointer, cache_dir: Path) -> LoadedModel:
    """Fetch and verify the artifact `pointer` names; ArtifactError on any problem."""
    path = fetch_artifact(pointer.artifact_uri, Path(cache_dir))
    if path.is_dir():
        path = path / MODEL_FILE
    pipeline = load_model(path, expected_sha256=pointer.sha256)
    folder = path.parent
    if not (folder / METADATA_FILE).exists() and pointer.metadata_uri and "://" not in pointer.metadata_uri:
        folder = Path(pointer.metadata_uri).parent
    metadata = read_metadata(folder) if (folder / METADATA_FILE).exists() else None
    if metadata is not None and metadata.version != pointer.version:
        raise ArtifactError(
            f"{folder / METADATA_FILE}: metadata is for version {metadata.version}, the pointer names {pointer.version}"
        )
    return LoadedModel(pointer=pointer, pipeline=pipeline, metadata=metadata, path=path)


def load_production(registry: RegistryConfig, cache_dir: Path) -> LoadedModel | None:
    """None when no pointer exists yet."""
    pointer = read_pointer(registry.pointer)
    if pointer is None:
        return None
    return load_pointed_model(pointer, cache_dir)


def score_with_production(production: LoadedModel, holdout: pd.DataFrame, settings: Settings):
    from gitops_ml.evaluation.metrics import predict
    from gitops_ml.training.pipeline import prepare_features, training_target

    model_settings = production.model_settings(settings)
    return predict(
        production.pipeline,
        prepare_features(holdout, model_settings),
        training_target(holdout, settings),
        settings.dataset.task,
        settings.dataset.positive_label,
        production.decision,
    )
